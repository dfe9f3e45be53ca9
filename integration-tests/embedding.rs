//! The embedding example (`examples/embedded_wordcount.rs`) run for real:
//! an outside program with its own pipeline, whose multiprocess workers are
//! the example binary itself, must print the same counts as in serial mode.

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
