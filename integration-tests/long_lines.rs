//! Long lines: lines of MiBs (longer than any read block) give serial
//! mode's summary in every mode; in multiprocess mode a line longer than a
//! frame can carry fails the run at once naming the input, the line and
//! `--max-frame`; a `--max-frame` too small for the frames every run sends
//! is a usage error (exit 2) before any worker starts. (Peak memory for a
//! long line is measured by `docs/long-lines.sh` on a release build.)

mod common;

use common::{describe, run_with_stdin, s};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `lines` generated lines with long lines among them: one of `long`
/// bytes after line 100, one of `long / 2` ending in CRLF after line 200,
/// and one of `long + 1` without a final LF at the very end.
fn with_long_lines(dir: &Path, lines: u64, long: usize) -> PathBuf {
    let out = Command::new(common::bin())
        .args(["generate", "--records", &lines.to_string(), "--seed", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = out.stdout;
    let cut = |n: usize| memchr_nth(&text, n).map_or(text.len(), |p| p + 1);
    let (a, b) = (cut(100), cut(200));
    let path = dir.join("long.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    f.write_all(&text[..a]).unwrap();
    f.write_all(&vec![b'x'; long]).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(&text[a..b]).unwrap();
    f.write_all(&vec![b'y'; long / 2]).unwrap();
    f.write_all(b"\r\n").unwrap();
    f.write_all(&text[b..]).unwrap();
    f.write_all(&vec![b'z'; long + 1]).unwrap();
    f.flush().unwrap();
    path
}

/// The offset of the `n`-th LF (1-based).
fn memchr_nth(text: &[u8], n: usize) -> Option<usize> {
    text.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i)
}

fn run(args: &[&str]) -> std::process::Output {
    run_with_stdin(args, None)
}

#[test]
fn lines_longer_than_a_block_give_serials_summary_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Several times the 256 KiB read block.
    let input = with_long_lines(dir.path(), 20_000, 3 << 20);
    let summary = |name: &str, flags: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["run", "-q", "--input", s(&input), "--out", s(&out)];
        args.extend_from_slice(flags);
        let done = run(&args);
        assert!(done.status.success(), "{}", describe(&args, &done));
        std::fs::read_to_string(out.join("summary.json")).unwrap()
    };
    let serial = summary("serial", &["--mode", "serial"]);
    let v: serde_json::Value = serde_json::from_str(&serial).unwrap();
    assert_eq!(v["lines"].as_u64(), Some(20_003), "{serial}");
    for (name, flags) in [
        // The stage actors (without --replicas a plain file gets lanes).
        (
            "pipeline",
            &["--mode", "pipeline", "--replicas", "parse=1"][..],
        ),
        ("lanes", &["--mode", "pipeline", "--replicas", "auto"]),
        (
            "multiprocess",
            &["--mode", "multiprocess", "--workers", "2"],
        ),
        // Records emitted: chunks cut by lines, counted by the coordinator.
        (
            "counted",
            &["--mode", "multiprocess", "--workers", "2", "--emit-records"],
        ),
    ] {
        assert_eq!(summary(name, flags), serial, "{name} differs from serial");
    }
    // Standard input: the chunks go as text.
    let out = dir.path().join("stdin");
    let args = ["run", "-q", "--mode", "multiprocess", "--workers", "2"];
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--input", "-", "--out", s(&out)])
        .collect();
    let done = run_with_stdin(&args, Some(&std::fs::read(&input).unwrap()));
    assert!(done.status.success(), "{}", describe(&args, &done));
    assert_eq!(
        std::fs::read_to_string(out.join("summary.json")).unwrap(),
        serial
    );
}

#[test]
fn a_line_longer_than_a_frame_names_the_input_the_line_and_max_frame() {
    let dir = tempfile::tempdir().unwrap();
    // 100 MB, more than the default frame (64 MiB) carries.
    let input = with_long_lines(dir.path(), 1_000, 100_000_000);
    let out = dir.path().join("out");
    let cases: [(&str, &[&str]); 3] = [
        // Cut by bytes, each worker reading its own ranges.
        ("ranges", &["--input", s(&input)]),
        // Cut by lines, counted by the coordinator.
        ("counted", &["--input", s(&input), "--emit-records"]),
        // Shipped as text.
        ("stdin", &["--input", "-"]),
    ];
    let data = std::fs::read(&input).unwrap();
    for (name, flags) in cases {
        let mut args = vec!["run", "-q", "--mode", "multiprocess", "--workers", "2"];
        args.extend_from_slice(flags);
        args.extend(["--out", s(&out)]);
        let stdin = (name == "stdin").then_some(&data[..]);
        let done = run_with_stdin(&args, stdin);
        let what = describe(&args, &done);
        assert_eq!(done.status.code(), Some(1), "{name}: {what}");
        let err = String::from_utf8_lossy(&done.stderr);
        let input_name = if name == "stdin" {
            "'<stdin>'"
        } else {
            "long.log'"
        };
        assert!(err.contains(input_name), "{name}: {what}");
        assert!(err.contains("line 101:"), "{name}: {what}");
        assert!(err.contains("--max-frame 67108864"), "{name}: {what}");
        assert!(
            !out.join("summary.json").exists(),
            "{name}: a result was left"
        );
    }
}

#[test]
fn a_max_frame_too_small_for_the_job_is_a_usage_error_before_any_worker_starts() {
    let dir = tempfile::tempdir().unwrap();
    let input = with_long_lines(dir.path(), 100, 10);
    // The job's parameters name the output directory: a long one makes
    // the job's frame larger than the smallest limit.
    let mut out = dir.path().to_path_buf();
    for i in 0..8 {
        out.push(format!("{i}{}", "d".repeat(150)));
    }
    let args = [
        "run",
        "--mode",
        "multiprocess",
        "--workers",
        "2",
        "--max-frame",
        "1024",
        "--input",
        s(&input),
        "--out",
        s(&out),
    ];
    let done = run(&args);
    let what = describe(&args, &done);
    assert_eq!(done.status.code(), Some(2), "{what}");
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("--max-frame 1024 is too small"), "{what}");
    assert!(
        !err.contains("listening on"),
        "workers were started: {what}"
    );
}
