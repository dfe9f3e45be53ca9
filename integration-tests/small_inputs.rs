//! Small inputs in the parallel modes: with default settings, a few batches
//! run inline (as serial mode does: nothing to overlap, and an engine's
//! start-up would make the run slower than serial); the outputs stay byte
//! for byte serial's, the report keeps the mode asked for and its `plan`
//! says why it ran inline. An engine shape the user chose, or a larger
//! input, still gets the engine.

mod common;

use common::{describe, expect_ok, read_json, run_with_stdin, s};
use std::path::{Path, PathBuf};
use std::process::Command;

const OUTPUTS: [&str; 3] = ["summary.json", "records.jsonl", "rejects.txt"];

/// Generated lines plus rejects and an unterminated last line, as a file.
fn make_input(dir: &Path, lines: u64) -> PathBuf {
    let path = dir.join("input.log");
    let out = Command::new(common::bin())
        .args(["generate", "--records", &lines.to_string(), "--seed", "11"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut data = out.stdout;
    data.extend_from_slice(b"garbage line\n\xff\xfe not utf8\n\nlast line without newline");
    std::fs::write(&path, data).unwrap();
    path
}

/// Runs `parpipe run` with `args` into `out` (records emitted), returning
/// its report and its stderr (the table).
fn run(out: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["run", "--emit-records", "--out", s(out)];
    all.extend_from_slice(args);
    let done = run_with_stdin(&all, None);
    assert!(done.status.success(), "{}", describe(&all, &done));
    let report = read_json(&out.join("report.json"));
    (report, String::from_utf8_lossy(&done.stderr).into_owned())
}

fn assert_same_outputs(expected: &Path, got: &Path) {
    for f in OUTPUTS {
        let a = std::fs::read(expected.join(f)).unwrap();
        let b =
            std::fs::read(got.join(f)).unwrap_or_else(|e| panic!("{}: {e}", got.join(f).display()));
        assert!(a == b, "{f} differs between {expected:?} and {got:?}");
    }
}

#[test]
fn small_inputs_run_inline_in_the_mode_asked_for_with_serials_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_input(dir.path(), 5_000);
    let inputs: [(&str, Vec<&str>); 2] = [
        ("generated", vec!["--records", "5000"]),
        ("file", vec!["--input", s(&file)]),
    ];
    for (kind, input) in &inputs {
        let serial = dir.path().join(format!("{kind}-serial"));
        let mut args = vec!["--mode", "serial", "-q"];
        args.extend(input);
        let (report, _) = run(&serial, &args);
        assert_eq!(report["plan"]["engine"], "inline", "{report}");
        assert_eq!(report["plan"]["mode"], "serial", "{report}");
        for mode in ["pipeline", "multiprocess"] {
            let out = dir.path().join(format!("{kind}-{mode}"));
            let mut args = vec!["--mode", mode];
            args.extend(input);
            let (report, table) = run(&out, &args);
            assert_same_outputs(&serial, &out);
            assert_eq!(report["mode"], mode, "{report}");
            let plan = &report["plan"];
            assert_eq!(plan["engine"], "inline", "{kind} {mode}: {plan}");
            assert_eq!(plan["mode"], mode, "{plan}");
            let why = plan["why"].as_str().expect("a reason");
            assert!(
                why.contains("records (1 batch of 8192"),
                "{kind} {mode}: {why}"
            );
            assert!(
                table.contains("plan: engine inline; transport threads"),
                "{table}"
            );
            assert!(table.contains(&format!("plan: why: {why}")), "{table}");
            assert!(table.contains(&format!("{mode} mode: ")), "{table}");
            assert_eq!(report["workers"].as_array().map(Vec::len), Some(0));
            assert!(!table.contains("listening on"), "no listener: {table}");
        }
    }
}

#[test]
fn a_chosen_engine_shape_or_a_larger_input_still_runs_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_input(dir.path(), 3_000);
    let serial = dir.path().join("serial");
    expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--input",
        s(&file),
        "--out",
        s(&serial),
        "--emit-records",
        "-q",
    ]);
    let cases: [(&str, &[&str]); 4] = [
        ("workers", &["--mode", "multiprocess", "--workers", "2"]),
        ("replicas", &["--mode", "pipeline", "--replicas", "parse=2"]),
        // 3004 lines in batches of 100: 31 batches, over both limits.
        (
            "mp-batches",
            &["--mode", "multiprocess", "--batch-size", "100"],
        ),
        ("pl-batches", &["--mode", "pipeline", "--batch-size", "100"]),
    ];
    for (name, args) in cases {
        let out = dir.path().join(name);
        let mut all = vec!["-q", "--input", s(&file)];
        all.extend_from_slice(args);
        let (report, _) = run(&out, &all);
        assert_same_outputs(&serial, &out);
        assert_ne!(report["plan"]["engine"], "inline", "{name}: {report}");
        if args[1] == "multiprocess" {
            let rows = report["workers"].as_array().unwrap();
            assert!(!rows.is_empty(), "{name}: {report}");
        }
    }
    // Within the pipeline limit (16 batches) with a larger batch size: inline again.
    let out = dir.path().join("pl-inline");
    let (report, _) = run(
        &out,
        &[
            "-q",
            "--input",
            s(&file),
            "--mode",
            "pipeline",
            "--batch-size",
            "400",
        ],
    );
    assert_same_outputs(&serial, &out);
    assert_eq!(report["plan"]["engine"], "inline", "{report}");
    let why = report["plan"]["why"].as_str().unwrap();
    assert!(why.contains("(8 batches of 400"), "{why}");
}

#[test]
fn a_small_matrix_run_keeps_its_workers() {
    // Matrix tasks are heavy: multiprocess mode gains from 16 tasks on, so
    // only `logs` runs small inputs inline.
    let dir = tempfile::tempdir().unwrap();
    let serial = dir.path().join("serial");
    let base = [
        "--workload",
        "matrix",
        "--records",
        "40",
        "--matrix-size",
        "64",
    ];
    let mut args = vec!["--mode", "serial"];
    args.extend(base);
    run(&serial, &args);
    let out = dir.path().join("mp");
    let mut args = vec!["--mode", "multiprocess"];
    args.extend(base);
    let (report, table) = run(&out, &args);
    assert_eq!(report["plan"]["engine"], "worker_processes", "{report}");
    assert!(table.contains("plan: engine worker processes"), "{table}");
    assert!(
        !report["workers"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        std::fs::read(serial.join("summary.json")).unwrap(),
        std::fs::read(out.join("summary.json")).unwrap()
    );
}

/// The small-input limits are flags: 0 gives the engine even a tiny input,
/// a larger one runs a larger input inline; both with serial's outputs.
#[test]
fn the_small_input_limits_are_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_input(dir.path(), 5_000);
    let serial = dir.path().join("serial");
    run(&serial, &["-q", "--mode", "serial", "--input", s(&file)]);
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "never",
            &["--mode", "pipeline", "--inline-batches-pipeline", "0"],
            "stage_actors",
        ),
        (
            "readers-never",
            &["--mode", "multiprocess", "--inline-batches-readers", "0"],
            "worker_processes",
        ),
        (
            "wider",
            &[
                "--mode",
                "multiprocess",
                "--batch-size",
                "100",
                "--inline-batches-readers",
                "64",
            ],
            "inline",
        ),
    ];
    for (name, args, engine) in cases {
        let out = dir.path().join(name);
        let mut all = vec!["-q", "--input", s(&file)];
        all.extend_from_slice(args);
        let (report, _) = run(&out, &all);
        assert_same_outputs(&serial, &out);
        assert_eq!(report["plan"]["engine"], engine, "{name}: {report}");
    }
}
