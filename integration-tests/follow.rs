//! Live inputs. `parpipe run --follow`: the real binary reads a file that
//! this test process writes while it runs — bursts that end mid-line, a
//! rotation by rename, a truncation in place — and, on SIGINT, ends
//! normally with the `summary.json` that serial mode gives on everything
//! written. Standard input held open: its lines flow (a partial batch
//! leaves after the batch delay) in every mode before it ends. Snapshots
//! (`--snapshot-every`) are whole JSON whenever they are read. A file that
//! grows by a line at a time, never pausing long, still flows (a partial
//! batch leaves after the batch delay).

mod common;

use common::{bin, read_json, s};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Lines of the built-in generator, as a byte string.
fn generated(records: u64, seed: u64, dir: &Path) -> Vec<u8> {
    let path = dir.join(format!("gen-{records}-{seed}.log"));
    common::expect_ok(&[
        "generate",
        "--records",
        &records.to_string(),
        "--seed",
        &seed.to_string(),
        "--output",
        s(&path),
    ]);
    std::fs::read(path).unwrap()
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Appends `bytes` in bursts of uneven sizes, most of them ending mid-line.
fn append_in_bursts(path: &Path, bytes: &[u8]) {
    let mut pos = 0;
    let mut k = 1usize;
    while pos < bytes.len() {
        k = (k * 7919 + 13) % 9000 + 1;
        let end = (pos + k).min(bytes.len());
        append(path, &bytes[pos..end]);
        pos = end;
    }
}

struct Follow {
    child: Child,
    out: PathBuf,
}

impl Drop for Follow {
    /// A follow run never ends by itself: a failed test must not leave it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Passes the child's stderr on to the test's, line by line.
fn forward_stderr(child: &mut Child) {
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("parpipe: {line}");
        }
    });
}

fn start(mode: &str, input: &Path, out: &Path) -> Follow {
    let mut child = Command::new(bin())
        .args([
            "run",
            "-q",
            "--follow",
            "--mode",
            mode,
            "--snapshot-every",
            "0.1",
        ])
        .args(["--input", s(input), "--out", s(out)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    forward_stderr(&mut child);
    Follow {
        child,
        out: out.to_path_buf(),
    }
}

/// A run in `mode` on standard input, which the caller writes and closes.
fn start_on_stdin(mode: &str, out: &Path) -> (Follow, std::process::ChildStdin) {
    let mut child = Command::new(bin())
        .args(["run", "-q", "--mode", mode, "--snapshot-every", "0.1"])
        .args(["--input", "-", "--out", s(out)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    forward_stderr(&mut child);
    let run = Follow {
        child,
        out: out.to_path_buf(),
    };
    (run, stdin)
}

impl Follow {
    /// Waits until a snapshot says `lines` lines were read; every snapshot
    /// read on the way must be whole JSON.
    fn wait_for_lines(&mut self, lines: u64) {
        let started = Instant::now();
        let path = self.out.join("summary.json");
        let mut seen = None;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("a snapshot is not whole JSON ({e}): {text}"));
                if v["lines"].as_u64() == Some(lines) {
                    return;
                }
                seen = v["lines"].as_u64();
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "parpipe ended early"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never read {lines} lines (last snapshot: {seen:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, then the exit code.
    fn interrupt(mut self) -> i32 {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

fn serial_summary(all: &[u8], dir: &Path) -> serde_json::Value {
    let input = dir.join("concat.log");
    std::fs::write(&input, all).unwrap();
    let out = dir.join("serial");
    common::expect_ok(&[
        "run",
        "-q",
        "--mode",
        "serial",
        "--input",
        s(&input),
        "--out",
        s(&out),
    ]);
    read_json(&out.join("summary.json"))
}

#[test]
fn bursts_and_a_rename_rotation_give_serials_summary_in_both_modes() {
    for mode in ["serial", "pipeline"] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let first = generated(3000, 1, dir.path());
        let second = generated(2000, 2, dir.path());
        std::fs::write(&log, b"").unwrap();
        let mut run = start(mode, &log, &dir.path().join("out"));
        append_in_bursts(&log, &first[..first.len() - 10]);
        // Read up to the partial last line before the rotation (had parpipe
        // opened the file only after it, it would never see the old one).
        run.wait_for_lines(2999);
        // logrotate: the old file is renamed away, a new one takes its name.
        // The old one ends mid-line; the stream goes on in the new one.
        std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
        append_in_bursts(&log, &first[first.len() - 10..]);
        append_in_bursts(&log, &second);
        run.wait_for_lines(5000);
        assert_eq!(
            run.interrupt(),
            0,
            "{mode}: SIGINT ends a follow run normally"
        );
        let all = [first, second].concat();
        let got = read_json(&dir.path().join("out/summary.json"));
        assert_eq!(got, serial_summary(&all, dir.path()), "{mode}");
        let report = read_json(&dir.path().join("out/report.json"));
        assert_eq!(report["records"], 5000);
    }
}

#[test]
fn a_truncated_file_is_read_again_from_its_start_counting_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let before = generated(4000, 3, dir.path());
    let after = generated(1000, 4, dir.path());
    std::fs::write(&log, &before).unwrap();
    let mut run = start("pipeline", &log, &dir.path().join("out"));
    run.wait_for_lines(4000);
    // copytruncate: emptied in place, then written again (shorter than before).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append_in_bursts(&log, &after);
    run.wait_for_lines(5000);
    assert_eq!(run.interrupt(), 0);
    let got = read_json(&dir.path().join("out/summary.json"));
    assert_eq!(got, serial_summary(&[before, after].concat(), dir.path()));
}

#[test]
fn follow_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, b"").unwrap();
    for (args, why) in [
        (vec!["--follow"], "exactly one --input"),
        (vec!["--follow", "--input", "-"], "exactly one --input"),
        (
            vec!["--follow", "--input", s(&log), "--mode", "multiprocess"],
            "not multiprocess",
        ),
        (
            vec!["--follow", "--input", s(&log), "--workload", "matrix"],
            "logs workload",
        ),
        (vec!["--snapshot-every", "0"], "--snapshot-every"),
    ] {
        let mut full = vec!["run", "-q"];
        full.extend(args);
        let out = common::expect_code(&full, None, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{full:?}: {err}");
    }
    // A missing file is an error at once, not an endless wait.
    let out = common::expect_code(
        &[
            "run",
            "-q",
            "--follow",
            "--input",
            s(&dir.path().join("nope.log")),
        ],
        None,
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.log"));
}

#[test]
fn standard_input_held_open_flows_in_every_mode_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let all = generated(3_000, 11, dir.path());
    let serial = serial_summary(&all, dir.path());
    // The first part ends mid-line: its whole lines (far fewer than a
    // batch) must come out while the pipe stays open.
    let cut = all.len() / 3 + 17;
    let (first, rest) = all.split_at(cut);
    let whole = first.iter().filter(|&&b| b == b'\n').count() as u64;
    for mode in ["serial", "pipeline", "multiprocess"] {
        let out = dir.path().join(format!("out-{mode}"));
        let (mut run, mut stdin) = start_on_stdin(mode, &out);
        stdin.write_all(first).unwrap();
        stdin.flush().unwrap();
        run.wait_for_lines(whole);
        stdin.write_all(rest).unwrap();
        drop(stdin);
        let status = run.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{mode}");
        assert_eq!(read_json(&out.join("summary.json")), serial, "{mode}");
        println!("{mode}: {whole} lines seen while standard input was open");
    }
}

#[test]
fn a_file_that_never_pauses_long_still_flows_in_both_modes() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let all = generated(3_000, 12, dir.path());
    let serial = serial_summary(&all, dir.path());
    let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
    for mode in ["serial", "pipeline"] {
        let log = dir.path().join(format!("trickle-{mode}.log"));
        std::fs::write(&log, b"").unwrap();
        let mut run = start(mode, &log, &dir.path().join(format!("out-{mode}")));
        // A quiet server: a line every 20 ms, so the file never goes 200 ms
        // without growing, and a batch (8192 lines) would take minutes.
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (stop, written, log) = (stop.clone(), written.clone(), log.clone());
            let lines: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
            std::thread::spawn(move || {
                for line in &lines {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    append(&log, line);
                    written.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        // Its lines must show in a snapshot while it goes on writing.
        let started = Instant::now();
        let seen = loop {
            let snapshot = std::fs::read_to_string(run.out.join("summary.json"))
                .ok()
                .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap());
            let read = snapshot.and_then(|v| v["lines"].as_u64()).unwrap_or(0);
            let so_far = written.load(Ordering::SeqCst);
            if read > 0 {
                assert!(
                    so_far < lines.len(),
                    "{mode}: no line showed before the writer had written all {so_far}"
                );
                break read;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{mode}: nothing read"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let so_far = written.load(Ordering::SeqCst);
        for line in &lines[so_far..] {
            append(&log, line);
        }
        run.wait_for_lines(lines.len() as u64);
        assert_eq!(run.interrupt(), 0, "{mode}");
        let got = read_json(&dir.path().join(format!("out-{mode}/summary.json")));
        assert_eq!(got, serial, "{mode}");
        println!("{mode}: a snapshot had {seen} lines while the writer went on ({so_far} written when it stopped)");
    }
}
