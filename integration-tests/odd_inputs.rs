//! Inputs whose size `stat` cannot be trusted, or that have none: a file
//! of `/proc` (0 bytes by `stat`, lines when read), a FIFO, and an empty
//! regular file. The modes that read byte ranges of their inputs (pipeline
//! mode's reading lanes, multiprocess workers) must give serial mode's
//! summary byte for byte on each, as they do on ordinary files; none may
//! hang on a FIFO.

mod common;

use common::{describe, s};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The modes compared with serial. `--workers 2` makes multiprocess mode
/// start its workers even for a small input (else it runs inline, as
/// serial mode does, and proves nothing).
const MODES: [(&str, &[&str]); 3] = [
    // The stage actors (pipeline mode without --replicas over a plain file
    // runs reading lanes, as `auto` does).
    ("pipeline", &["--mode", "pipeline", "--replicas", "parse=1"]),
    ("lanes", &["--mode", "pipeline", "--replicas", "auto"]),
    (
        "multiprocess",
        &["--mode", "multiprocess", "--workers", "2"],
    ),
];

/// How long one run may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(60);

/// A generated log of `lines` lines in `dir`.
fn generated(dir: &Path, lines: u64) -> PathBuf {
    let path = dir.join("gen.log");
    let out = Command::new(common::bin())
        .args(["generate", "--records", &lines.to_string(), "--seed", "5"])
        .args(["--output", s(&path)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&["generate"], &out));
    path
}

/// Runs `parpipe run -q --out OUT ARGS`, with `feed` started first (a
/// FIFO's writer); fails the test if the run is still going after [`HUNG`].
/// Returns the summary's text. A /proc file is no access log: every line
/// is rejected, which is counted, not a failure, here.
fn run(out: &Path, args: &[&str], feed: Option<&dyn Fn()>) -> String {
    let mut all = vec!["run", "-q", "--max-rejected-ratio", "1", "--out", s(out)];
    all.extend_from_slice(args);
    let mut child = Command::new(common::bin())
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(feed) = feed {
        feed();
    }
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HUNG {
            let _ = child.kill();
            let done = child.wait_with_output().unwrap();
            panic!("hung for {HUNG:?}: {}", describe(&all, &done));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", describe(&all, &done));
    std::fs::read_to_string(out.join("summary.json")).unwrap()
}

/// The `lines` count of a summary.
fn lines(summary: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(summary).unwrap();
    v["lines"].as_u64().unwrap()
}

/// Runs `inputs` in serial mode, then in every other mode, and asserts the
/// same summary; returns serial's.
fn assert_modes_agree(dir: &Path, name: &str, inputs: &[&str]) -> String {
    let mut args = Vec::new();
    for i in inputs {
        args.extend(["--input", *i]);
    }
    let serial_args: Vec<&str> = ["--mode", "serial"]
        .iter()
        .copied()
        .chain(args.clone())
        .collect();
    let serial = run(&dir.join(format!("{name}-serial")), &serial_args, None);
    for (mode, flags) in MODES {
        let all: Vec<&str> = flags.iter().copied().chain(args.clone()).collect();
        let got = run(&dir.join(format!("{name}-{mode}")), &all, None);
        assert_eq!(got, serial, "{name}: {mode} differs from serial");
    }
    serial
}

#[test]
fn a_proc_file_that_says_zero_bytes_counts_alike_in_every_mode() {
    let proc_file = Path::new("/proc/self/mountinfo");
    match std::fs::metadata(proc_file) {
        Ok(m) if m.len() == 0 && !std::fs::read(proc_file).unwrap().is_empty() => {}
        _ => {
            println!("SKIPPED: no /proc/self/mountinfo of 0 bytes by stat with lines");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), 30_000);
    let want = std::fs::read(proc_file).unwrap();
    let want = memchr_count(&want);
    let alone = assert_modes_agree(dir.path(), "alone", &[s(proc_file)]);
    assert_eq!(lines(&alone), want);
    // With an ordinary file beside it, the parallel modes would cut both
    // into byte ranges if they trusted the size.
    let both = assert_modes_agree(dir.path(), "both", &[s(proc_file), s(&gen)]);
    assert_eq!(lines(&both), want + 30_000);
}

#[test]
fn an_empty_file_counts_alike_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), 30_000);
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        lines(&assert_modes_agree(dir.path(), "empty", &[s(&empty)])),
        0
    );
    let both = assert_modes_agree(dir.path(), "both", &[s(&empty), s(&gen), s(&empty)]);
    assert_eq!(lines(&both), 30_000);
}

#[test]
fn a_fifo_is_read_alike_in_every_mode_and_nothing_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path(), 30_000);
    let data = std::fs::read(&gen).unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Each run opens the FIFO once, as a reader: a writer thread per run
    // opens it (waiting for that reader) and writes the log.
    let feed = || {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&data).unwrap();
        });
    };
    let mut summaries = Vec::new();
    let all: Vec<(&str, &[&str])> = std::iter::once(("serial", &["--mode", "serial"][..]))
        .chain(MODES)
        .collect();
    for (mode, flags) in all {
        let mut args = flags.to_vec();
        args.extend(["--input", s(&fifo)]);
        let got = run(&dir.path().join(format!("fifo-{mode}")), &args, Some(&feed));
        assert_eq!(lines(&got), 30_000, "{mode}");
        summaries.push((mode, got));
    }
    for (mode, got) in &summaries[1..] {
        assert_eq!(got, &summaries[0].1, "fifo: {mode} differs from serial");
    }
}

fn memchr_count(data: &[u8]) -> u64 {
    let lfs = data.iter().filter(|&&b| b == b'\n').count() as u64;
    lfs + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}
