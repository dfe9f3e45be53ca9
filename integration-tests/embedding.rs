//! The embedding example (`examples/embedded_wordcount.rs`) run for real:
//! an outside program with its own pipeline, whose multiprocess workers are
//! the example binary itself, must print the same counts as in serial mode,
//! and a batch that fails because of its data (`--fail-at`) must fail the
//! run in every mode, naming the stage, the batch and where it starts.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `cargo test` builds the examples next to the test binaries' directory.
fn example_binary() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let exe = deps.parent()?.join("examples").join(format!(
        "embedded_wordcount{}",
        std::env::consts::EXE_SUFFIX
    ));
    exe.exists().then_some(exe)
}

fn run(exe: &PathBuf, args: &[&str]) -> Output {
    let out = Command::new(exe)
        .args(args)
        .output()
        .expect("cannot start the example");
    assert!(
        out.status.success(),
        "command: {} {}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        exe.display(),
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn embedded_pipeline_gives_the_same_counts_in_every_mode() {
    let Some(exe) = example_binary() else {
        eprintln!("SKIPPED: the example binary was not built (run through `cargo test`)");
        return;
    };
    let serial = run(&exe, &["30000", "2", "serial"]);
    let counts = String::from_utf8_lossy(&serial.stdout).to_string();
    assert!(counts.lines().count() >= 10, "counts: {counts}");
    for mode in ["pipeline", "multiprocess"] {
        let out = run(&exe, &["30000", "2", mode]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            counts,
            "{mode} counts differ"
        );
    }
    let multi = run(&exe, &["30000", "3", "multiprocess"]);
    let report = String::from_utf8_lossy(&multi.stderr);
    let worker_rows = report.lines().filter(|l| l.starts_with("worker ")).count();
    assert_eq!(
        worker_rows, 3,
        "expected a row per worker process:\n{report}"
    );
}

#[test]
fn a_batch_failing_on_its_data_fails_the_run_in_every_mode() {
    let Some(exe) = example_binary() else {
        eprintln!("SKIPPED: the example binary was not built (run through `cargo test`)");
        return;
    };
    // Batches of 10 000 sentences: sentence 12 345 is in batch 1, lines 10 001-20 000.
    for mode in ["serial", "pipeline", "multiprocess"] {
        let args = ["30000", "2", mode, "--fail-at", "12345"];
        let out = Command::new(&exe)
            .args(args)
            .output()
            .expect("cannot start the example");
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!("{mode}: status {:?}\n{err}", out.status.code());
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(out.stdout.is_empty(), "{mode}: the sink ran: {what}");
        assert!(err.contains("sentence 12345 is poisoned"), "{what}");
        assert!(
            err.contains("stage 'tokenize' failed on batch 1 (first line 10001)"),
            "{what}"
        );
        if mode == "multiprocess" {
            assert!(
                err.contains("chunk 1 (lines 10001-20000) failed on worker"),
                "{what}"
            );
        }
    }
}
