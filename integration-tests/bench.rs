//! End-to-end tests of `parpipe bench` on tiny inputs: one repetition of
//! serial mode plus both baselines and the bound, the bound beside the
//! parallel modes, and the grid search. Checks the outputs exist and hold
//! what they should; asserts nothing about speed.

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
        "bound s",
        "bound ×",
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
    assert_eq!(columns, ["serial", "plain", "rayon", "bound"], "{json}");
    assert!(json["bound_ways"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(
        json["ratios"],
        serde_json::json!([]),
        "no parallel mode ran"
    );
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

#[test]
fn bench_reports_parallel_modes_as_fractions_of_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let output = expect_ok(&[
        "bench",
        "--sizes",
        "3001",
        "--repeat",
        "2",
        "--modes",
        "serial,pipeline",
        "--bound-ways",
        "3",
        "--out",
        s(&out),
    ]);
    let table = String::from_utf8_lossy(&output.stdout);
    for column in [
        "pipeline ×",
        "bound ×",
        "pipeline / bound",
        "3 serial processes",
    ] {
        assert!(table.contains(column), "missing '{column}' in:\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["bound_ways"], 3);
    let bound: Vec<&serde_json::Value> = json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["column"] == "bound")
        .collect();
    assert_eq!(bound.len(), 2, "{json}");
    for b in &bound {
        // The three parts together cover every line once.
        assert_eq!(b["records"], 3001, "{json}");
    }
    let parts: Vec<usize> = (1..=3)
        .map(|i| {
            let p = out.join(format!("inputs/logs-3001-bound/part-{i}-of-3.log"));
            // Generated logs hold bytes that are not UTF-8 on purpose.
            let bytes = std::fs::read(p).unwrap();
            bytes.iter().filter(|&&b| b == b'\n').count()
        })
        .collect();
    assert_eq!(parts, [1001, 1000, 1000]);
    let ratios = json["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 1, "{json}");
    assert_eq!(ratios[0]["column"], "pipeline");
    assert!(ratios[0]["over_serial"].as_f64().unwrap() > 0.0);
    assert!(ratios[0]["of_bound"].as_f64().unwrap() > 0.0);
}

#[test]
fn grid_search_compares_the_automatic_choice_with_the_best_fixed_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid");
    let output = expect_ok(&[
        "bench",
        "--grid",
        "--sizes",
        "1500",
        "--repeat",
        "1",
        "--modes",
        "pipeline,multiprocess",
        "--out",
        s(&out),
    ]);
    let table = String::from_utf8_lossy(&output.stdout);
    for text in [
        "best fixed",
        "automatic / best",
        "`--replicas auto` (automatic)",
        "`(no knobs)` (automatic)",
    ] {
        assert!(table.contains(text), "missing '{text}' in:\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("grid.json")).unwrap()).unwrap();
    let samples = json["samples"].as_array().unwrap();
    let count = |column: &str| samples.iter().filter(|s| s["column"] == column).count();
    assert_eq!(count("serial"), 1);
    assert_eq!(count("bound"), 1);
    assert!(count("pipeline") > 2 && count("multiprocess") > 2, "{json}");
    for s in samples {
        assert!(s["wall_seconds"].as_f64().unwrap() > 0.0, "{s}");
    }
    let choices = json["choices"].as_array().unwrap();
    let modes: Vec<&str> = choices
        .iter()
        .map(|c| c["column"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["pipeline", "multiprocess"], "{json}");
    assert_eq!(choices[0]["automatic"], "--replicas auto");
    assert_eq!(choices[1]["automatic"], "(no knobs)");
    for c in choices {
        assert!(c["automatic_over_best"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["best"].as_str().unwrap().contains("--batch-size"), "{c}");
    }
}

#[test]
fn bench_rejects_bad_bound_ways_and_a_grid_without_parallel_modes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    expect_code(&["bench", "--bound-ways", "0", "--out", s(&out)], None, 2);
    expect_code(
        &["bench", "--bound-ways", "9999", "--out", s(&out)],
        None,
        2,
    );
    expect_code(
        &["bench", "--grid", "--modes", "serial", "--out", s(&out)],
        None,
        2,
    );
}
