//! End-to-end tests of multiprocess mode with real child processes and real
//! sockets: byte-identity with serial mode for several worker counts and
//! batch sizes, a worker killed with SIGKILL mid-run, a worker frozen with
//! SIGSTOP (dropped after the heartbeat timeout), a worker joining mid-run,
//! a chunk failing on its data (a scripted worker answers `ChunkFailed`), a
//! keep-alive worker serving two coordinators in turn, hostile peers
//! (garbage, truncated frame, oversized length, wrong token, wrong version),
//! and the clear errors (no token beyond loopback, no worker at all). No
//! blind sleeps: the tests wait for lines on the coordinator's (or the
//! worker's) stderr and for process exits, with timeouts.

mod common;

use common::{bin, describe, expect_code, read_json, s};
use parpipe::protocol::{encode_frame, Message, DEFAULT_MAX_FRAME};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OUTPUTS: [&str; 3] = ["summary.json", "records.jsonl", "rejects.txt"];
const TIMEOUT: Duration = Duration::from_secs(60);

/// A generated input with some rejected lines mixed in.
fn make_input(dir: &Path, lines: u64) -> PathBuf {
    let path = dir.join("input.log");
    let out = Command::new(bin())
        .args(["generate", "--records", &lines.to_string(), "--seed", "7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut data = out.stdout;
    data.extend_from_slice(b"garbage line\n\xff\xfe not utf8\n\nlast line without newline");
    std::fs::write(&path, data).unwrap();
    path
}

fn serial_outputs(dir: &Path, input: &Path) -> PathBuf {
    let out = dir.join("serial");
    common::expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--input",
        s(input),
        "--out",
        s(&out),
        "--emit-records",
        "-q",
    ]);
    out
}

fn assert_same_outputs(expected: &Path, got: &Path) {
    for f in OUTPUTS {
        let a = std::fs::read(expected.join(f)).unwrap();
        let b =
            std::fs::read(got.join(f)).unwrap_or_else(|e| panic!("{}: {e}", got.join(f).display()));
        assert!(a == b, "{f} differs between {expected:?} and {got:?}");
    }
}

/// A coordinator started with `--workers 0`, its stderr collected line by line.
struct Coordinator {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
    addr: String,
}

impl Coordinator {
    fn start(args: &[&str], token: Option<&str>) -> Self {
        Self::start_with_workers("0", args, token)
    }

    /// Like [`start`](Self::start), with `workers` local workers.
    fn start_with_workers(workers: &str, args: &[&str], token: Option<&str>) -> Self {
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--mode", "multiprocess", "--workers", workers, "-v"])
            .args(args)
            .env_remove("PARPIPE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("PARPIPE_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("start coordinator");
        let (lines, log) = collect_lines(child.stderr.take().unwrap());
        let mut c = Coordinator {
            child,
            lines,
            log,
            addr: String::new(),
        };
        let line = c.wait_for(|l| l.starts_with("parpipe: listening on "));
        c.addr = line["parpipe: listening on ".len()..].trim().to_string();
        c
    }

    /// Waits for a stderr line matching `pred`.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        wait_for_line(&self.lines, &self.log, pred)
    }

    /// Waits for exit; returns (code, whole stderr).
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("coordinator did not finish:\n{}", self.log.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Let the reader thread drain the pipe.
        while self.lines.recv_timeout(Duration::from_secs(5)).is_ok() {}
        let log = self.log.lock().unwrap().clone();
        (status.code(), log)
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's stderr line by line on a thread of its own: each
/// line goes to the channel (for [`wait_for_line`]) and to the whole log.
fn collect_lines(stderr: ChildStderr) -> (mpsc::Receiver<String>, Arc<Mutex<String>>) {
    let (tx, rx) = mpsc::channel();
    let log = Arc::new(Mutex::new(String::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log2.lock().unwrap().push_str(&(line.clone() + "\n"));
            if tx.send(line).is_err() {
                // Keep collecting the log even when nobody listens.
            }
        }
    });
    (rx, log)
}

/// Waits (at most [`TIMEOUT`]) for a line matching `pred`; panics with the log so far.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    log: &Mutex<String>,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!(
                "timed out waiting for a line; log so far:\n{}",
                log.lock().unwrap()
            ),
        }
    }
}

fn token_file(dir: &Path, token: &str) -> PathBuf {
    let p = dir.join(format!("token-{token}"));
    std::fs::write(&p, format!("{token}\n")).unwrap();
    p
}

fn start_worker(addr: &str, token_file: &Path) -> Child {
    start_worker_with(addr, token_file, &[])
}

/// A worker started by hand with `extra` arguments.
fn start_worker_with(addr: &str, token_file: &Path, extra: &[&str]) -> Child {
    Command::new(bin())
        .args(["worker", "--connect", addr, "--token-file", s(token_file)])
        .args(extra)
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start worker")
}

fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn outputs_are_byte_identical_to_serial_for_1_2_3_workers_and_batch_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 12_000);
    let serial = serial_outputs(dir.path(), &input);
    for workers in ["1", "2", "3"] {
        // "guided": no --batch-size, chunks sized to what remains.
        for batch in ["1000", "4096", "50000", "guided"] {
            let out = dir.path().join(format!("mp-{workers}-{batch}"));
            let mut args = vec![
                "run",
                "--mode",
                "multiprocess",
                "--workers",
                workers,
                "--input",
                s(&input),
                "--out",
                s(&out),
                "--emit-records",
                "-q",
            ];
            if batch != "guided" {
                args.extend(["--batch-size", batch]);
            }
            common::expect_ok(&args);
            assert_same_outputs(&serial, &out);
            let report = read_json(&out.join("report.json"));
            assert_eq!(report["mode"], "multiprocess");
            let rows = report["workers"].as_array().unwrap();
            // A run of a few milliseconds may end before its last local
            // worker has joined: the rows are the workers that joined.
            let started = workers.parse::<usize>().unwrap();
            assert!((1..=started).contains(&rows.len()), "{report}");
            let chunks = sum_of(&report, "chunks");
            let records = sum_of(&report, "records");
            assert_eq!(records, 12_004, "each line merged exactly once");
            if batch == "guided" {
                // A share of what remains each time, at least half a batch
                // (4 096 lines): more than one chunk, no more than a chunk
                // per 4 096 lines.
                assert!(
                    chunks > 1 && chunks <= 12_004u64.div_ceil(4096),
                    "{chunks} chunks: {report}"
                );
            } else {
                let expected = 12_004u64.div_ceil(batch.parse().unwrap());
                assert_eq!(chunks, expected, "each chunk merged exactly once");
            }
        }
    }
}

/// Valid lines, with rejected ones only at `bad` (1-based), and a last
/// line without a line feed.
fn input_with_late_rejects(dir: &Path, lines: u64, bad: &[u64]) -> PathBuf {
    let path = dir.join("late.log");
    let mut data = Vec::new();
    for n in 1..lines {
        if bad.contains(&n) {
            data.extend_from_slice(b"not a log line\n");
        } else {
            let line = format!(
                "10.0.{}.{} - - [10/Oct/2023:13:{:02}:36 +0000] \"GET /p/{} HTTP/1.1\" 200 {} \"-\" \"curl/8\"\n",
                n % 7,
                n % 250,
                n % 60,
                n % 97,
                n % 5000
            );
            data.extend_from_slice(line.as_bytes());
        }
    }
    data.extend_from_slice(
        b"10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"-\"",
    );
    std::fs::write(&path, data).unwrap();
    path
}

/// Without `--emit-records`, local workers get chunks cut by bytes and
/// count their own lines; rejected lines deep into the file keep their
/// numbers once the partials are renumbered at the merge.
#[test]
fn chunks_cut_by_bytes_keep_line_numbers_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [9_001, 9_002, 14_500, 19_999, 20_000, 20_001];
    let input = input_with_late_rejects(dir.path(), 20_003, &bad);
    let serial = dir.path().join("serial");
    common::expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--input",
        s(&input),
        "--out",
        s(&serial),
        "-q",
    ]);
    let expected = std::fs::read(serial.join("summary.json")).unwrap();
    let summary = read_json(&serial.join("summary.json"));
    assert_eq!(
        summary["rejected_samples"],
        serde_json::json!([9001, 9002, 14500, 19999, 20000])
    );
    assert_eq!(summary["lines"], 20_003);
    for workers in ["1", "2", "3"] {
        for batch in ["300", "4096", "guided"] {
            let out = dir.path().join(format!("mp-{workers}-{batch}"));
            let mut args = vec![
                "run",
                "--mode",
                "multiprocess",
                "--workers",
                workers,
                "--input",
                s(&input),
                "--out",
                s(&out),
                "-v",
            ];
            if batch != "guided" {
                args.extend(["--batch-size", batch]);
            }
            let run = common::expect_ok(&args);
            let log = String::from_utf8_lossy(&run.stderr);
            let got = std::fs::read(out.join("summary.json")).unwrap();
            assert!(
                got == expected,
                "summary differs ({workers} workers, batch {batch}):\n{log}"
            );
            let report = read_json(&out.join("report.json"));
            let plan = &report["plan"];
            assert_eq!(plan["engine"], "worker_processes", "{plan}");
            assert_eq!(plan["chunking"], "uncounted_ranges", "{plan}");
            assert_eq!(plan["workers"].to_string(), workers, "{plan}");
            assert_eq!(plan["chunk_sizing"]["guided"], batch == "guided", "{plan}");
            assert_eq!(
                sum_of(&report, "records"),
                20_003,
                "each line merged once: {report}"
            );
            assert_eq!(report["records"], 20_003, "{report}");
        }
    }
}

#[test]
fn matrix_is_byte_identical_across_modes() {
    let dir = tempfile::tempdir().unwrap();
    let serial = dir.path().join("serial");
    let base = [
        "--workload",
        "matrix",
        "--records",
        "30",
        "--matrix-size",
        "48",
    ];
    let mut args = vec!["run", "--mode", "serial", "--out", s(&serial), "-q"];
    args.extend(base);
    common::expect_ok(&args);
    for (workers, batch) in [("2", "1"), ("3", "7")] {
        let out = dir.path().join(format!("mp{workers}"));
        let mut args = vec![
            "run",
            "--mode",
            "multiprocess",
            "--workers",
            workers,
            "--batch-size",
            batch,
            "--out",
            s(&out),
            "-q",
        ];
        args.extend(base);
        common::expect_ok(&args);
        let a = std::fs::read(serial.join("summary.json")).unwrap();
        let b = std::fs::read(out.join("summary.json")).unwrap();
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    }
}

/// A run over generated lines (chunks of 500 lines, records emitted)
/// against which workers are started by hand, checked against serial mode.
struct Scenario {
    _dir: tempfile::TempDir,
    serial: PathBuf,
    out: PathBuf,
    /// The token file hand-started workers read.
    token: PathBuf,
    c: Coordinator,
}

impl Scenario {
    /// Starts a coordinator with `local` local workers over `lines` lines
    /// and `extra` arguments. It reads the token from the file the workers
    /// read when `from_file`, else from the environment.
    fn start(lines: u64, local: &str, extra: &[&str], from_file: bool) -> Self {
        Scenario::start_in_chunks(lines, 500, local, extra, from_file)
    }

    /// The same, in chunks of `batch` lines: many chunks from a small input
    /// (which keeps the disk these tests need small).
    fn start_in_chunks(
        lines: u64,
        batch: u64,
        local: &str,
        extra: &[&str],
        from_file: bool,
    ) -> Self {
        const TOKEN: &str = "scenario-test-token";
        let dir = tempfile::tempdir().unwrap();
        let input = make_input(dir.path(), lines);
        let serial = serial_outputs(dir.path(), &input);
        let token = token_file(dir.path(), TOKEN);
        let out = dir.path().join("mp");
        let batch = batch.to_string();
        let mut args = vec![
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--emit-records",
            "--batch-size",
            &batch,
        ];
        args.extend(extra);
        if from_file {
            args.extend(["--token-file", s(&token)]);
        }
        let env_token = (!from_file).then_some(TOKEN);
        let c = Coordinator::start_with_workers(local, &args, env_token);
        Scenario {
            serial,
            out,
            token,
            c,
            _dir: dir,
        }
    }

    /// Starts a worker by hand (not marked as this run's local worker).
    fn start_worker(&self) -> Child {
        start_worker(&self.c.addr, &self.token)
    }

    /// Waits for the run to end, reaps `workers`, checks it succeeded with
    /// outputs byte-identical to serial mode; returns the report and log.
    fn finish(self, workers: Vec<Child>) -> (serde_json::Value, String) {
        let (code, log) = self.c.finish();
        workers.into_iter().for_each(reap);
        assert_eq!(code, Some(0), "{log}");
        assert_same_outputs(&self.serial, &self.out);
        (read_json(&self.out.join("report.json")), log)
    }
}

#[test]
fn a_worker_killed_with_sigkill_mid_run_changes_nothing() {
    let mut run = Scenario::start(60_000, "0", &[], true);
    let mut victim = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    let survivor = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    // The victim holds its credit of chunks by now: kill it without warning.
    victim.kill().unwrap();
    victim.wait().unwrap();
    let (report, log) = run.finish(vec![survivor]);
    // Its chunks go back to the queue, unless the survivor holds them
    // already (sent again past their deadline while the victim was slow).
    if log.contains("re-queued chunks") {
        assert!(sum_of(&report, "requeued_chunks") >= 1, "{report}");
    } else {
        assert!(log.contains("is overdue: sent to worker"), "{log}");
    }
    let chunks = sum_of(&report, "chunks");
    assert_eq!(chunks, 60_004u64.div_ceil(500), "merged exactly once");
}

/// The processes whose parent is `pid` (from `/proc/*/stat`).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let child: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // `pid (comm) state ppid …`: the name may hold spaces, not a ')'.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == pid).then_some(child)
    })
    .collect()
}

/// `key:` of `/proc/PID/status`.
fn proc_status(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| Some(l.strip_prefix(key)?.strip_prefix(':')?.trim().to_string()))
}

/// True where the C library says whether a process ever had a second
/// thread (glibc's `__libc_single_threaded`): a worker there runs its
/// chunks in a child process.
fn libc_tracks_threads() -> bool {
    // SAFETY: dlsym only looks a name up.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) }.is_null()
}

#[test]
fn a_worker_runs_chunks_in_a_child_and_its_child_killed_mid_run_changes_nothing() {
    if !libc_tracks_threads() {
        eprintln!("SKIPPED: this C library has no __libc_single_threaded; workers use threads");
        return;
    }
    let mut run = Scenario::start(60_000, "0", &[], true);
    // Allowed to read the input: its chunks come as file ranges, which
    // children read themselves (chunks sent as bytes run on threads).
    let top = std::fs::canonicalize(run.out.parent().unwrap()).unwrap();
    let mut victim = start_worker_with(
        &run.c.addr,
        &run.token,
        &["--threads", "2", "--allow-read", s(&top)],
    );
    run.c.wait_for(|l| l.contains("worker joined"));
    // The children are forked with the first chunk, just after the join.
    let deadline = Instant::now() + TIMEOUT;
    let children = loop {
        let children = children_of(victim.id());
        // Named by each child first thing after the fork.
        let named = |c: &u32| proc_status(*c, "Name").as_deref() == Some("parpipe-chunks");
        if children.len() == 2 && children.iter().all(named) {
            break children;
        }
        assert!(
            Instant::now() < deadline,
            "worker {}: children {children:?}",
            victim.id()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    for &child in &children {
        // SAFETY: kill(2) on the worker's child, which the worker has not reaped.
        assert_eq!(
            unsafe { libc::kill(child as libc::pid_t, libc::SIGSTOP) },
            0
        );
    }
    // The worker itself is one thread: its socket loop, nothing else.
    assert_eq!(proc_status(victim.id(), "Threads").as_deref(), Some("1"));
    let child = children[0];
    let survivor = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) },
        0
    );
    // The worker notices, says so and ends its connection; its chunks run
    // on the survivor.
    let status = victim.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the worker fails when its child dies"
    );
    let (report, log) = run.finish(vec![survivor]);
    assert!(
        log.contains("re-queued chunks") || log.contains("is overdue: sent to worker"),
        "{log}"
    );
    assert_eq!(
        sum_of(&report, "chunks"),
        60_004u64.div_ceil(500),
        "merged exactly once"
    );
    assert_eq!(sum_of(&report, "records"), 60_004, "merged exactly once");
}

/// A worker frozen with SIGSTOP; resumed (SIGCONT) and killed when dropped,
/// even when the test fails, so that no process is left behind.
struct Frozen(Child);

impl Frozen {
    fn freeze(child: Child) -> Self {
        signal(&child, libc::SIGSTOP);
        Frozen(child)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.0, libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sum of `key` over the report's worker rows.
fn sum_of(report: &serde_json::Value, key: &str) -> u64 {
    let rows = report["workers"].as_array().expect("a workers array");
    rows.iter().map(|r| r[key].as_u64().expect("a count")).sum()
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the id of a child we own and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

#[test]
fn a_frozen_worker_has_its_chunks_sent_again_and_each_is_merged_once() {
    let mut run = Scenario::start(20_000, "0", &["--heartbeat-timeout", "1"], true);
    // Chunks are dealt to the first worker as it joins: freeze it holding
    // them (its socket stays open, it just never answers again).
    let victim = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    let victim = Frozen::freeze(victim);
    let survivor = run.start_worker();
    // Past the deadline the survivor gets them as well, without waiting
    // for the frozen worker's heartbeats to run out.
    let again = run.c.wait_for(|l| l.contains("is overdue: sent to worker"));
    assert!(again.contains("chunk 0 is overdue"), "{again}");
    let (report, _) = run.finish(vec![survivor]);
    drop(victim);
    assert_eq!(report["workers"].as_array().unwrap().len(), 2, "{report}");
    let chunks = sum_of(&report, "chunks");
    assert_eq!(chunks, 20_004u64.div_ceil(500), "merged exactly once");
    assert_eq!(sum_of(&report, "records"), 20_004, "merged exactly once");
}

/// Checks that each of the report's `workers` workers got chunks.
fn assert_every_worker_worked(report: &serde_json::Value, log: &str, workers: usize) {
    let rows = report["workers"].as_array().unwrap();
    assert_eq!(rows.len(), workers, "{report}");
    for r in rows {
        assert!(r["chunks"].as_u64().unwrap() > 0, "{report}\n{log}");
        assert!(r["records"].as_u64().unwrap() > 0, "{report}\n{log}");
    }
}

#[test]
fn a_worker_joining_mid_run_gets_chunks() {
    // The coordinator reads the token from the environment, the workers from a file.
    let mut run = Scenario::start(60_000, "0", &["--inflight", "1"], false);
    let first = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    let second = run.start_worker();
    run.c.wait_for(|l| l.contains("worker joined"));
    let (report, log) = run.finish(vec![first, second]);
    assert_every_worker_worked(&report, &log, 2);
}

#[test]
fn a_worker_with_two_threads_beside_two_single_thread_workers_changes_nothing() {
    // 300 chunks at one credit per thread leave the later workers time to join.
    let mut run = Scenario::start_in_chunks(60_000, 200, "0", &["--inflight", "1"], true);
    let wide = start_worker_with(&run.c.addr, &run.token, &["--threads", "2"]);
    let joined = run.c.wait_for(|l| l.contains("worker joined"));
    assert!(joined.contains("threads=2"), "{joined}");
    let mut workers = vec![wide];
    for _ in 0..2 {
        workers.push(start_worker_with(
            &run.c.addr,
            &run.token,
            &["--threads", "1"],
        ));
        let joined = run.c.wait_for(|l| l.contains("worker joined"));
        assert!(joined.contains("threads=1"), "{joined}");
    }
    let (report, log) = run.finish(workers);
    assert_every_worker_worked(&report, &log, 3);
    assert_eq!(sum_of(&report, "chunks"), 60_004u64.div_ceil(200));
}

/// A worker started by hand with `extra` arguments, logging at debug
/// level into `log`.
fn start_logging_worker(addr: &str, token_file: &Path, extra: &[&str], log: &Path) -> Child {
    Command::new(bin())
        .args([
            "-vv",
            "worker",
            "--connect",
            addr,
            "--token-file",
            s(token_file),
        ])
        .args(extra)
        .env_remove("PARPIPE_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start worker")
}

#[test]
fn a_worker_allowed_only_a_subfolder_gets_bytes_while_one_allowed_the_input_reads_ranges() {
    let mut run = Scenario::start_in_chunks(60_000, 200, "0", &["--inflight", "1"], true);
    let top = std::fs::canonicalize(run.out.parent().unwrap()).unwrap();
    let sub = top.join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Apart from the run's folder, which `finish` removes.
    let logs = tempfile::tempdir().unwrap();
    let (sub_log, top_log) = (
        logs.path().join("sub-worker.log"),
        logs.path().join("top-worker.log"),
    );
    let narrow = start_logging_worker(
        &run.c.addr,
        &run.token,
        &["--threads", "1", "--allow-read", s(&sub)],
        &sub_log,
    );
    let joined = run.c.wait_for(|l| l.contains("worker joined"));
    assert!(joined.contains(s(&sub)), "its root is announced: {joined}");
    let wide = start_logging_worker(
        &run.c.addr,
        &run.token,
        &["--threads", "1", "--allow-read", s(&top)],
        &top_log,
    );
    run.c.wait_for(|l| l.contains("worker joined"));
    let (report, log) = run.finish(vec![narrow, wide]);
    assert_every_worker_worked(&report, &log, 2);
    let (sub_log, top_log) = (
        std::fs::read_to_string(&sub_log).unwrap(),
        std::fs::read_to_string(&top_log).unwrap(),
    );
    assert!(sub_log.contains("joined coordinator"), "{sub_log}");
    assert!(
        !sub_log.contains("file range"),
        "the worker allowed only sub/ read the input itself:\n{sub_log}"
    );
    assert!(top_log.contains("file range(s)"), "{top_log}");
}

#[test]
fn local_workers_read_file_ranges_while_a_worker_from_elsewhere_gets_bytes() {
    // The worker started by hand lacks the coordinator's local-worker mark:
    // it is sent each chunk's bytes, read by the coordinator. (300 chunks at
    // one in flight leave it ample time to join.)
    let mut run = Scenario::start_in_chunks(60_000, 200, "1", &["--inflight", "1"], false);
    let outsider = run.start_worker();
    run.c.wait_for(|l| l.contains("as file ranges"));
    let (report, log) = run.finish(vec![outsider]);
    assert_every_worker_worked(&report, &log, 2);
}

/// A scripted worker on the real protocol: authenticates with `token`,
/// answers the first chunk it gets with `ChunkFailed` (as a worker whose
/// stage rejected the chunk's data does), and returns that chunk's
/// `(seq, first_line, records)` once the coordinator hangs up.
fn failing_worker(addr: &str, token: &str) -> (u64, u64, u64) {
    failing_worker_reading(addr, token, Vec::new())
}

/// [`failing_worker`], announcing `roots` it reads chunks from (so that it
/// is sent `ChunkInFiles` for inputs under them).
fn failing_worker_reading(addr: &str, token: &str, roots: Vec<String>) -> (u64, u64, u64) {
    use parpipe::protocol::{client_handshake, read_frame, write_frame, FrameCodec};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME));
        client_handshake(
            &mut framed,
            token.as_bytes(),
            &parpipe::protocol::PeerHello {
                worker_id: 4242,
                cores: 1,
                threads: 1,
                allowed_roots: roots,
            },
        )
        .await
        .unwrap();
        let mut failed = None;
        let work = async {
            // Job, heartbeats, chunks…, then Shutdown or the end of the stream.
            while let Ok(Some(msg)) = read_frame(&mut framed).await {
                match msg {
                    Message::Chunk {
                        seq,
                        first_line,
                        records,
                        ..
                    }
                    | Message::ChunkInFiles {
                        seq,
                        first_line,
                        records,
                        ..
                    } if failed.is_none() => {
                        failed = Some((seq, first_line, records));
                        let error = format!("stage 'parse' rejected line {first_line}");
                        let answer = Message::ChunkFailed {
                            seq,
                            error,
                            failure: None,
                        };
                        write_frame(&mut framed, answer).await.unwrap();
                    }
                    Message::Shutdown => break,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .expect("the coordinator never hung up");
        failed.expect("no chunk was received")
    })
}

#[test]
fn a_chunk_failing_on_its_data_fails_the_run_naming_the_chunk_and_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 5_000);
    let out = dir.path().join("mp");
    let c = Coordinator::start(
        &[
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--emit-records",
            "--batch-size",
            "1000",
        ],
        Some("failing-test-token"),
    );
    let (seq, first_line, records) = failing_worker(&c.addr, "failing-test-token");
    let (code, log) = c.finish();
    assert_eq!(code, Some(1), "{log}");
    let last_line = first_line + records - 1;
    let expected = format!("chunk {seq} (lines {first_line}-{last_line}) failed on worker");
    assert!(log.contains(&expected), "expected '{expected}' in:\n{log}");
    assert!(
        log.contains(&format!("stage 'parse' rejected line {first_line}")),
        "{log}"
    );
    assert_eq!((seq, first_line, records), (0, 1, 1000));
    for f in OUTPUTS {
        assert!(!out.join(f).exists(), "{f} was written:\n{log}");
    }
}

#[test]
fn a_chunk_cut_by_bytes_failing_names_where_its_lines_start() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 5_000);
    let out = dir.path().join("mp");
    let c = Coordinator::start(
        &[
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--batch-size",
            "1000",
        ],
        Some("failing-test-token"),
    );
    let root = dir.path().canonicalize().unwrap().display().to_string();
    let (seq, first_line, records) =
        failing_worker_reading(&c.addr, "failing-test-token", vec![root]);
    let (code, log) = c.finish();
    assert_eq!(code, Some(1), "{log}");
    // Uncounted: the worker numbers from 1; chunk 0 starts the input.
    assert_eq!((seq, first_line, records), (0, 1, 0));
    let expected = "chunk 0 (lines from 1) failed on worker";
    assert!(log.contains(expected), "expected '{expected}' in:\n{log}");
    assert!(!out.join("summary.json").exists(), "{log}");
}

/// A child killed and reaped when dropped, even when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_keep_alive_worker_serves_one_job_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 5_000);
    let serial = serial_outputs(dir.path(), &input);
    let token = token_file(dir.path(), "keep-alive-test-token");
    // A worker connects to one address: the two coordinators take turns on
    // a fixed port, found free by binding port 0 and releasing it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let coordinator = |out: &Path| {
        Coordinator::start(
            &[
                "--listen",
                &listen,
                "--input",
                s(&input),
                "--out",
                s(out),
                "--emit-records",
                "--batch-size",
                "1000",
                "--token-file",
                s(&token),
            ],
            None,
        )
    };
    let first_out = dir.path().join("first");
    let mut first = coordinator(&first_out);
    assert_eq!(first.addr, listen);
    // -vv: the worker logs each failed reconnection attempt. Its connect
    // timeout is short, and must not end it between jobs.
    let connect_timeout = Duration::from_millis(300);
    let mut worker = Command::new(bin())
        .args(["-vv", "worker", "--keep-alive", "--connect", &listen])
        .args(["--token-file", s(&token)])
        .args([
            "--connect-timeout",
            &connect_timeout.as_secs_f64().to_string(),
        ])
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start worker");
    let (lines, log) = collect_lines(worker.stderr.take().unwrap());
    let mut worker = Reaped(worker);
    let job_done = |l: &str| l.contains("job done; waiting for the next one");

    first.wait_for(|l| l.contains("worker joined"));
    let (code, first_log) = first.finish();
    assert_eq!(code, Some(0), "{first_log}");
    wait_for_line(&lines, &log, job_done);
    // No coordinator now: the worker keeps retrying, well past its connect timeout.
    let idle = Instant::now();
    while idle.elapsed() < 2 * connect_timeout {
        wait_for_line(&lines, &log, |l| l.contains("retrying"));
    }
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "the keep-alive worker exited between jobs:\n{}",
        log.lock().unwrap()
    );

    // The same worker joins the next coordinator on its own.
    let second_out = dir.path().join("second");
    let mut second = coordinator(&second_out);
    second.wait_for(|l| l.contains("worker joined"));
    let (code, second_log) = second.finish();
    assert_eq!(code, Some(0), "{second_log}");
    wait_for_line(&lines, &log, job_done);
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "{}",
        log.lock().unwrap()
    );
    // Reconnecting between jobs (to a coordinator still winding down,
    // which closes at once, or to none) is the normal course: no warning.
    let worker_log = log.lock().unwrap().clone();
    assert!(!worker_log.contains("WARN"), "{worker_log}");
    assert_same_outputs(&serial, &first_out);
    assert_same_outputs(&first_out, &second_out);
    for out in [&first_out, &second_out] {
        let report = read_json(&out.join("report.json"));
        let rows = report["workers"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{report}");
        assert_eq!(rows[0]["chunks"].as_u64(), Some(6), "{report}");
    }
}

/// Connects, sends `bytes` (then half-closes when `close`), and waits until
/// the coordinator drops the connection.
fn hostile(addr: &str, bytes: &[u8], close: bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(bytes).unwrap();
    if close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut sink = Vec::new();
    // Ends with EOF or a reset once the coordinator drops us; a timeout fails the test.
    match s.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the coordinator did not drop the connection: {e}"),
    }
}

#[test]
fn hostile_peers_are_dropped_with_a_reason_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 5_000);
    let serial = serial_outputs(dir.path(), &input);
    let token = token_file(dir.path(), "hostile-test-token");
    let out = dir.path().join("mp");
    let mut c = Coordinator::start(
        &[
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--emit-records",
            "--batch-size",
            "1000",
            "--token-file",
            s(&token),
        ],
        None,
    );
    // Garbage: an HTTP request. Its first 4 bytes announce a huge frame.
    hostile(&c.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
    c.wait_for(|l| l.contains("dropping connection") && l.contains("exceeds the limit"));
    // Garbage within the limit: a body that is no message.
    hostile(&c.addr, &[0, 0, 0, 3, 0xff, 0xff, 0xff], false);
    c.wait_for(|l| l.contains("dropping connection") && l.contains("malformed frame"));
    // A truncated frame: 100 bytes announced, 3 sent, then EOF.
    hostile(&c.addr, &[0, 0, 0, 100, 1, 2, 3], true);
    c.wait_for(|l| l.contains("dropping connection") && l.contains("inside a frame"));
    // An oversized length prefix.
    let too_big = (DEFAULT_MAX_FRAME as u32 + 1).to_be_bytes();
    hostile(&c.addr, &too_big, false);
    c.wait_for(|l| l.contains("dropping connection") && l.contains("exceeds the limit"));
    // The wrong protocol version.
    let hello = encode_frame(
        &Message::Hello {
            version: 99,
            worker_id: 1,
            cores: 1,
            threads: 1,
            allowed_roots: Vec::new(),
        },
        1024,
    )
    .unwrap();
    hostile(&c.addr, &hello, false);
    c.wait_for(|l| l.contains("dropping connection") && l.contains("protocol version 99"));
    // The wrong token: a real worker that fails the handshake.
    let wrong = token_file(dir.path(), "not-the-token");
    let bad = Command::new(bin())
        .args(["worker", "--connect", &c.addr, "--token-file", s(&wrong)])
        .env_remove("PARPIPE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        describe(&["worker"], &bad)
    );
    c.wait_for(|l| l.contains("dropping connection") && l.contains("authentication failed"));
    // Then an honest worker completes the job.
    let good = start_worker(&c.addr, &token);
    let (code, log) = c.finish();
    reap(good);
    assert_eq!(code, Some(0), "{log}");
    assert_same_outputs(&serial, &out);
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let out = expect_code(
        &[
            "run",
            "--mode",
            "multiprocess",
            "--listen",
            "0.0.0.0:0",
            "--records",
            "10",
            "--out",
            "/nonexistent/never-written",
        ],
        None,
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");
}

#[test]
fn no_worker_at_all_fails_clearly_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = [
        "run",
        "--mode",
        "multiprocess",
        "--workers",
        "0",
        "--worker-wait-timeout",
        "0.5",
        "--records",
        "100",
        "--out",
        s(&out),
    ];
    let res = expect_code(&args, None, 1);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("no worker connected within"), "{err}");
    assert!(!out.join("summary.json").exists());
}
