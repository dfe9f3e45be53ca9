//! End-to-end test of `parpipe bench` on a tiny input: one repetition of
//! serial mode plus both baselines. Checks the outputs exist and hold what
//! they should; asserts nothing about speed.

mod common;

use common::{expect_code, expect_ok, s};

#[test]
fn bench_writes_table_json_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let output = expect_ok(&[
        "bench",
        "--sizes",
        "2000",
        "--repeat",
        "1",
        "--modes",
        "serial",
        "--out",
        s(&out),
    ]);
    let table = String::from_utf8_lossy(&output.stdout);
    for column in [
        "serial s",
        "plain s",
        "rayon s",
        "serial / plain",
        "| 2 K |",
    ] {
        assert!(table.contains(column), "missing '{column}' in:\n{table}");
    }
    assert!(out.join("bench.svg").is_file());
    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("serial") && svg.contains("rayon"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
    let samples = json["samples"].as_array().unwrap();
    let columns: Vec<&str> = samples
        .iter()
        .map(|s| s["column"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["serial", "plain", "rayon"], "{json}");
    for sample in samples {
        assert_eq!(sample["records"], 2000);
        assert_eq!(sample["size"], 2000);
        assert!(sample["wall_seconds"].as_f64().unwrap() > 0.0);
        assert!(sample["peak_rss_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn bench_rejects_bad_sizes_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    expect_code(&["bench", "--sizes", "lots", "--out", s(&out)], None, 2);
    expect_code(&["bench", "--modes", "turbo", "--out", s(&out)], None, 2);
    expect_code(&["bench", "--repeat", "0", "--out", s(&out)], None, 2);
}
