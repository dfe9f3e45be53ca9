//! End-to-end tests of the `parpipe` binary in serial mode: outputs against
//! an independent reference implementation, input handling (several files,
//! stdin, gzip), bad input and usage errors, and the report.

mod common;

use common::{expect_code, expect_ok, read_json, read_summary, reference, s};
use std::io::Write;
use std::path::Path;

/// Lines that exercise the docs/logs-workload.md rules, written by hand.
const EDGE_LINES: &[&[u8]] = &[
    b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a.gif?x=1 HTTP/1.0\" 200 2326 \"http://r/\" \"Mozilla/5.0\"",
    b"10.0.0.1 - frank [31/Dec/2023:23:30:00 -0100] \"POST /form HTTP/1.1\" 302 - \"-\" \"Googlebot/2.1\"",
    b"host.example - - [01/Jan/2024:00:10:00 +0100] \"GET /x HTTP/1.1\" 404 0",
    b"10.0.0.2 - - [29/Feb/2023:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
    b"10.0.0.2 - - [29/Feb/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"BingBOT\" trailing junk",
    b"10.0.0.3 - - [31/Apr/2024:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
    b"10.0.0.3 - - [01/Jan/0001:00:30:00 +0100] \"-\" 400 18446744073709551615",
    b"10.0.0.3 - - [01/Jan/2001:00:30:00 +0100] \"GET / HTTP/1.1\" 200 18446744073709551616",
    b"10.0.0.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /q\\\"uote HTTP/1.0\" 500 12 \"-\" \"a \\\"spider\\\" b\"",
    b"10.0.0.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /caf\xc3\xa9 HTTP/1.0\" 200 5 \"-\" \"ua\"x",
    b"10.0.\xff.5 - - [10/Oct/2000:13:55:36 +0000] \"GET /\xfe HTTP/1.0\" 200 5",
    b"10.0.0.6 - - [10/Oct/2000:13:55:36 +0000] \"GET  /double HTTP/1.0\" 200 5",
    b"10.0.0.6 - - [10/Oct/2000:13:55:36 +0000] \"GET /ksc.html\" 200 5",
    b"10.0.0.6 - - [10/Oct/2000:24:00:00 +0000] \"GET / HTTP/1.0\" 200 5",
    b"10.0.0.6 - - [10/oct/2000:12:00:00 +0000] \"GET / HTTP/1.0\" 200 5",
    b"",
    b"\x00\x01binary\xff",
    b"10.0.0.7 - - [10/Oct/2000:13:55:36 +2359] \"OPTIONS * HTTP/1.0\" 099 7",
    b"10.0.0.7 - - [10/Oct/2000:13:55:36 +2400] \"GET / HTTP/1.0\" 200 7",
    b"10.0.0.8\t- - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.0\" 200 7",
    b"::1 - - [10/Oct/2000:13:55:36 +0000] \"\" 400 0 \"-\" \"-\"",
];

fn edge_input() -> Vec<u8> {
    let mut data = Vec::new();
    for (i, line) in EDGE_LINES.iter().enumerate() {
        data.extend_from_slice(line);
        // Mix LF and CRLF endings; the last line has no terminator at all.
        if i + 1 < EDGE_LINES.len() {
            data.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        }
    }
    data
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn run_serial_on(dir: &Path, inputs: &[&Path], extra: &[&str]) -> serde_json::Value {
    let out = dir.join("out");
    let mut args = vec!["run", "--mode", "serial", "--out", s(&out), "-q"];
    for i in inputs {
        args.extend(["--input", s(i)]);
    }
    args.extend(extra);
    expect_ok(&args);
    read_summary(&out.join("summary.json"))
}

#[test]
fn edge_lines_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.log");
    std::fs::write(&file, edge_input()).unwrap();
    let got = run_serial_on(dir.path(), &[&file], &[]);
    reference::assert_same_summary(&got, &reference::summary(&edge_input()), "edge lines");
    // A few facts checked by hand, so that the reference is not the only judge.
    assert_eq!(got["lines"], 21);
    assert_eq!(
        got["rejected_samples"],
        serde_json::json!([4, 6, 8, 14, 15])
    );
    assert_eq!(got["hours"]["0000-12-31T23"], 1);
    assert_eq!(got["hours"]["2024-01-01T00"], 1);
    assert_eq!(got["status"]["099"], 1);
    assert_eq!(got["bots"], 3);
    assert_eq!(got["bytes"], "18446744073709553981");
}

#[test]
fn emitted_records_and_rejects_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.log");
    std::fs::write(&file, edge_input()).unwrap();
    let out = dir.path().join("out");
    expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--input",
        s(&file),
        "--out",
        s(&out),
        "--emit-records",
        "-q",
    ]);
    let records = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let first = records.lines().next().unwrap();
    assert_eq!(
        first,
        r#"{"line":1,"client":"10.0.0.1","time":"2000-10-10T20:55:36Z","method":"GET","path":"/a.gif","status":200,"bytes":2326,"bot":false}"#
    );
    assert!(records.contains(r#"{"line":7,"client":"10.0.0.3","time":"0000-12-31T23:30:00Z","method":"-","path":"-","status":400,"bytes":18446744073709551615,"bot":false}"#), "{records}");
    assert!(records.contains(r#""path":"/q\\\"uote""#), "{records}");
    assert!(
        records.contains("\"client\":\"10.0.\u{fffd}.5\""),
        "{records}"
    );
    let parsed = read_summary(&out.join("summary.json"))["parsed"]
        .as_u64()
        .unwrap();
    assert_eq!(records.lines().count() as u64, parsed);
    let rejects = std::fs::read(out.join("rejects.txt")).unwrap();
    let mut expected = Vec::new();
    for (i, line) in EDGE_LINES.iter().enumerate() {
        if reference::parse(&regex_for_test(), line).is_none() {
            expected.extend_from_slice(format!("{}\t", i + 1).as_bytes());
            expected.extend_from_slice(line);
            expected.push(b'\n');
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&rejects),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(rejects, expected);
}

fn regex_for_test() -> regex::bytes::Regex {
    // Same expression as the reference module uses.
    regex::bytes::Regex::new(r#"(?-u)^(\S+) (\S+) (\S+) \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?: .*)?$"#).unwrap()
}

#[test]
fn generated_input_matches_the_reference_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    expect_ok(&[
        "generate",
        "--records",
        "20000",
        "--seed",
        "7",
        "--output",
        s(&file),
    ]);
    let data = std::fs::read(&file).unwrap();
    assert_eq!(reference::lines(&data).len(), 20000);
    let expected = reference::summary(&data);
    let got = run_serial_on(dir.path(), &[&file], &[]);
    reference::assert_same_summary(&got, &expected, "generated file");
    // The generator used directly as the source gives the same summary.
    let out = dir.path().join("gen-out");
    expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--records",
        "20000",
        "--seed",
        "7",
        "--out",
        s(&out),
        "-q",
    ]);
    reference::assert_same_summary(&read_summary(&out.join("summary.json")), &expected, "run");
    let rejected = expected["rejected"].as_u64().unwrap();
    assert!(
        rejected > 0 && rejected < 20000 / 10,
        "generated rejects: {rejected}"
    );
}

#[test]
fn batch_size_does_not_change_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for size in ["1", "7", "100000"] {
        let out = dir.path().join(format!("out-{size}"));
        expect_ok(&[
            "run",
            "--mode",
            "serial",
            "--records",
            "3000",
            "--batch-size",
            size,
            "--out",
            s(&out),
            "-q",
        ]);
        bytes.push(std::fs::read(out.join("summary.json")).unwrap());
    }
    assert_eq!(bytes[0], bytes[1]);
    assert_eq!(bytes[0], bytes[2]);
}

#[test]
fn several_files_stdin_and_gzip_read_as_one_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = edge_input();
    let cut = data.len() / 2;
    // Split at a line boundary so that the concatenation has the same lines.
    let cut = cut + data[cut..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log.gz"));
    std::fs::write(&a, &data[..cut]).unwrap();
    std::fs::write(&b, gzip(&data[cut..])).unwrap();
    let expected = reference::summary(&data);
    let got = run_serial_on(dir.path(), &[&a, &b], &[]);
    reference::assert_same_summary(&got, &expected, "a file and a gzip file");
    let out = dir.path().join("stdin-out");
    let args = [
        "run",
        "--mode",
        "serial",
        "--input",
        s(&a),
        "--input",
        "-",
        "--out",
        s(&out),
        "-q",
    ];
    expect_code(&args, Some(&gzip(&data[cut..])), 0);
    reference::assert_same_summary(&read_summary(&out.join("summary.json")), &expected, "run");
}

#[test]
fn missing_file_directory_and_corrupt_gzip_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("nope.log");
    let err = expect_code(
        &[
            "run",
            "--mode",
            "serial",
            "--input",
            s(&missing),
            "--out",
            s(&out),
        ],
        None,
        1,
    );
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("nope.log") && stderr.contains("No such file"),
        "{stderr}"
    );
    assert!(!out.join("summary.json").exists());

    let err = expect_code(
        &[
            "run",
            "--mode",
            "serial",
            "--input",
            s(dir.path()),
            "--out",
            s(&out),
        ],
        None,
        1,
    );
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("directory"), "{stderr}");

    let gz = dir.path().join("bad.log.gz");
    let mut bytes = gzip(&edge_input().repeat(50));
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&gz, bytes).unwrap();
    let err = expect_code(
        &[
            "run",
            "--mode",
            "serial",
            "--input",
            s(&gz),
            "--out",
            s(&out),
        ],
        None,
        1,
    );
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("bad.log.gz") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!out.join("summary.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        leftovers.iter().all(|&n| n == 0),
        "temporary files left in {}",
        out.display()
    );
}

#[test]
fn binary_file_is_counted_as_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.bin");
    let blob: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &blob).unwrap();
    // Counted, not failed, when the threshold is lifted.
    let got = run_serial_on(dir.path(), &[&file], &["--max-rejected-ratio", "1"]);
    reference::assert_same_summary(&got, &reference::summary(&blob), "blob");
    assert_eq!(got["parsed"], 0);
    assert_eq!(got["lines"], got["rejected"]);
}

#[test]
fn usage_errors_exit_2() {
    expect_code(&["run", "--mode", "nonsense"], None, 2);
    expect_code(&["run", "--batch-size", "0", "--records", "1"], None, 2);
    expect_code(&["frobnicate"], None, 2);
}

#[test]
fn report_has_every_stage_and_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report_path = dir.path().join("r/report.json");
    let args = [
        "run",
        "--mode",
        "serial",
        "--records",
        "5000",
        "--out",
        s(&out),
        "--report",
        s(&report_path),
    ];
    let run = expect_ok(&args);
    let table = String::from_utf8_lossy(&run.stderr);
    assert!(
        table.contains("parse") && table.contains("bottleneck:"),
        "{table}"
    );
    let report = read_json(&report_path);
    let names: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["generate", "parse", "enrich", "metrics", "write"]);
    assert_eq!(report["records"], 5000);
    assert_eq!(report["mode"], "serial");
    assert_eq!(report["stages"][1]["records_in"], 5000);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(report["bottleneck"]["stage"].is_string());
}

/// The real access logs in ../shared, when this checkout has them: each
/// summary must equal the independently computed `expected/` file.
#[test]
fn shared_access_logs_match_expected_summaries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/access-logs");
    let expected_dir = root.join("expected");
    let Ok(entries) = std::fs::read_dir(&expected_dir) else {
        eprintln!(
            "SKIPPED: {} not present on this machine",
            expected_dir.display()
        );
        return;
    };
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".summary.json")
            .to_string();
        let input = [root.join(&name), root.join("edge_cases").join(&name)]
            .into_iter()
            .find(|p| p.exists())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Some are all rejects by design: the threshold is lifted.
        let got = run_serial_on(dir.path(), &[&input], &["--max-rejected-ratio", "1"]);
        // The expected files predate `dropped` (lines a plugged-in stage
        // removed) and the dimensions of docs/logs-workload.md §4a: the
        // built-in pipeline drops none, and every key they have must be
        // as it was.
        let mut expected = read_json(&path);
        if let Some(map) = expected.as_object_mut() {
            map.entry("dropped").or_insert(serde_json::json!(0));
        }
        let original: serde_json::Map<String, serde_json::Value> = expected
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (k.clone(), got[k].clone()))
            .collect();
        assert_eq!(serde_json::Value::Object(original), expected, "{name}");
        // The new keys are there, and agree with the reference.
        let data = std::fs::read(&input).unwrap();
        reference::assert_same_summary(&got, &reference::summary(&data), &name);
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} expected summaries found");
}
