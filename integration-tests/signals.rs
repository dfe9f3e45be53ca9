//! How runs end, with real processes and real signals: SIGINT, SIGTERM and
//! SIGHUP in every mode (exit 128 + N, workers gone, nothing left in OUT,
//! snapshots included); `--follow` ending normally on a signal whatever
//! `--snapshot-every` is; failed runs leaving no summary (a truncated gzip
//! input, a followed file that becomes a directory); the memory of
//! trailing snapshots; cleanup that removes only unlocked parpipe
//! temporaries, even next to a live run of another PID namespace.
//!
//! Readiness is awaited (a file appearing, a line on stderr), never slept
//! for; bounds on waits only catch hangs.

mod common;

use common::{bin, s};
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any awaited event may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(60);

fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe")
}

/// Every entry of `dir`, sorted (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Polls until `ready()` holds; panics (killing `child`) past [`HANG`] or
/// if the child ends first.
fn await_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("parpipe ended ({status}) before {what}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: not within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A snapshot of `summary.json` in `out`, as JSON, if one is there.
fn snapshot(out: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("summary.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn send(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// The process ids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
    {
        let Ok(task) = task else { continue };
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Waits for `child` to exit (bounded by [`HANG`]): its status code (None
/// if killed by a signal), how long it took and its stderr.
fn finish(mut child: Child) -> (Option<i32>, Duration, String) {
    let started = Instant::now();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("parpipe still running {HANG:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = started.elapsed();
    (status.code(), took, reader.join().unwrap())
}

const SIGNALS: [(libc::c_int, &str); 3] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
];

#[test]
fn every_signal_ends_every_mode_alike_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (signal, name) in SIGNALS {
        for mode in ["serial", "pipeline", "multiprocess"] {
            let out = dir.path().join(format!("{mode}-{name}"));
            let child = spawn(&[
                "run",
                "-q",
                "--mode",
                mode,
                "--workers",
                "2",
                "--records",
                "100000000",
                "--emit-records",
                "--snapshot-every",
                "0.1",
                "--out",
                s(&out),
            ]);
            let mut child = child;
            // Ready once a snapshot is in place: outputs staged, workers
            // started, snapshots written.
            await_until(&mut child, "the first snapshot", || {
                snapshot(&out).is_some()
            });
            let snap = snapshot(&out).unwrap();
            assert_eq!(snap["final"], false, "{mode}: a snapshot must say so");
            let workers = children(child.id());
            if mode == "multiprocess" {
                assert_eq!(workers.len(), 2, "{mode}: local workers {workers:?}");
            }
            send(child.id(), signal);
            let (code, took, stderr) = finish(child);
            assert_eq!(code, Some(128 + signal), "{mode} {name}: {stderr}");
            assert!(
                stderr.contains(&format!("interrupted by {name}; no result was written")),
                "{mode} {name}: {stderr}"
            );
            assert_eq!(
                entries(&out),
                Vec::<String>::new(),
                "{mode} {name}: {stderr}"
            );
            for w in &workers {
                assert!(
                    !Path::new(&format!("/proc/{w}")).exists(),
                    "{mode} {name}: worker {w} outlived the coordinator"
                );
            }
            println!("{mode} {name}: exit {code:?} {took:?} after the signal, OUT empty");
        }
    }
}

/// Writes `n` well-formed log lines (distinct hours from `first_hour`).
fn log_lines(n: u64, first_hour: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut text = String::new();
    for i in 0..n {
        // Hours from 2000-01-01 on, a civil date computed plainly.
        let hour = first_hour + i;
        let (mut days, h) = (hour / 24, hour % 24);
        let mut year = 2000;
        loop {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let len = if leap { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let lens = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 0;
        while days >= lens[month] {
            days -= lens[month];
            month += 1;
        }
        text.push_str(&format!(
            "10.0.{}.{} - - [{:02}/{}/{year}:{h:02}:00:00 +0000] \"GET /p{} HTTP/1.1\" 200 {} \"-\" \"curl/8\"\n",
            (i / 256) % 256,
            i % 256,
            days + 1,
            MONTHS[month],
            i % 50,
            i % 1000
        ));
    }
    text
}

#[test]
fn a_follow_ends_normally_on_each_signal_whatever_the_snapshot_interval() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    std::fs::write(&input, log_lines(500, 0)).unwrap();
    let reference = dir.path().join("reference");
    common::expect_ok(&["run", "-q", "--input", s(&input), "--out", s(&reference)]);
    let expected = std::fs::read(reference.join("summary.json")).unwrap();
    for (signal, name) in SIGNALS {
        for mode in ["serial", "pipeline"] {
            let out = dir.path().join(format!("follow-{mode}-{name}"));
            let mut child = spawn(&[
                "run",
                "-q",
                "--mode",
                mode,
                "--follow",
                "--input",
                s(&input),
                "--snapshot-every",
                "3600",
                "--out",
                s(&out),
            ]);
            // The first snapshot comes at once; the next would be an hour later.
            await_until(&mut child, "a snapshot of every line", || {
                snapshot(&out).is_some_and(|v| v["lines"] == 500)
            });
            send(child.id(), signal);
            let (code, took, stderr) = finish(child);
            assert_eq!(code, Some(0), "{mode} {name}: {stderr}");
            assert_eq!(
                std::fs::read(out.join("summary.json")).unwrap(),
                expected,
                "{mode} {name}: the final summary is the serial one, unmarked"
            );
            assert_eq!(
                entries(&out),
                ["report.html", "report.json", "summary.json"],
                "{mode} {name}"
            );
            println!("follow {mode} {name}: exit 0 {took:?} after the signal, summary = serial");
        }
    }
}

#[test]
fn a_follow_whose_file_becomes_a_directory_fails_and_leaves_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    std::fs::write(&input, log_lines(100, 0)).unwrap();
    let out = dir.path().join("out");
    let mut child = spawn(&[
        "run",
        "-q",
        "--follow",
        "--input",
        s(&input),
        "--snapshot-every",
        "0.1",
        "--out",
        s(&out),
    ]);
    await_until(&mut child, "a snapshot", || {
        snapshot(&out).is_some_and(|v| v["lines"] == 100)
    });
    std::fs::remove_file(&input).unwrap();
    std::fs::create_dir(&input).unwrap();
    let (code, _, stderr) = finish(child);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(s(&input)), "{stderr}");
    assert_eq!(entries(&out), Vec::<String>::new(), "{stderr}");
}

#[test]
fn a_truncated_gzip_input_with_snapshots_leaves_no_summary_in_any_mode() {
    use flate2::{write::GzEncoder, Compression};
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.log");
    common::expect_ok(&["generate", "--records", "1000000", "--output", s(&plain)]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    let bytes = gz.finish().unwrap();
    let input = dir.path().join("cut.log.gz");
    std::fs::write(&input, &bytes[..bytes.len() * 9 / 10]).unwrap();
    for mode in ["serial", "pipeline", "multiprocess"] {
        let out = dir.path().join(mode);
        let mut child = spawn(&[
            "run",
            "-q",
            "--mode",
            mode,
            "--batch-size",
            "2000",
            "--input",
            s(&input),
            "--snapshot-every",
            "0.1",
            "--out",
            s(&out),
        ]);
        // Whether a snapshot was in place at some point before the failure.
        let mut seen = false;
        while child.try_wait().unwrap().is_none() {
            seen |= out.join("summary.json").exists();
            std::thread::sleep(Duration::from_millis(1));
        }
        let (code, _, stderr) = finish(child);
        assert_eq!(code, Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("corrupt gzip data"), "{mode}: {stderr}");
        assert_eq!(entries(&out), Vec::<String>::new(), "{mode}: {stderr}");
        println!("{mode}: truncated gzip: exit 1, OUT empty (a snapshot was seen during the run: {seen})");
    }
}

/// The peak resident memory of process `pid` so far, in KiB (`VmHWM`:
/// its own address space's, which exec starts afresh — unlike wait4's
/// `ru_maxrss`, which keeps the forking parent's).
fn peak_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs parpipe with `stdin` from a file; its exit code, its peak RSS in
/// KiB (the last `VmHWM` read before it exited, read as often as possible)
/// and its stderr.
fn run_measured(args: &[&str], stdin: &Path) -> (Option<i32>, i64, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(std::fs::File::open(stdin).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe");
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + HANG;
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("parpipe {} did not end within {HANG:?}", args.join(" "));
        }
        std::thread::yield_now();
    };
    (status.code(), peak, reader.join().unwrap())
}

#[test]
fn trailing_snapshots_hold_one_summary_not_one_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    // 40,000 distinct hours in batches of 100 lines: a summary of about
    // 1 MB, 400 batches. One summary text per batch would be 400 MB.
    let input = dir.path().join("hours.log");
    std::fs::write(&input, log_lines(40_000, 0)).unwrap();
    let plain = dir.path().join("plain");
    let common = ["run", "-q", "--batch-size", "100", "--input", "-"];
    let plain_args: Vec<&str> = common.iter().copied().chain(["--out", s(&plain)]).collect();
    let (code, base_kib, stderr) = run_measured(&plain_args, &input);
    assert_eq!(code, Some(0), "{stderr}");
    let summary_kib = (std::fs::metadata(plain.join("summary.json")).unwrap().len() / 1024) as i64;
    assert!(summary_kib > 500, "the summary is only {summary_kib} KiB");
    let snap = dir.path().join("snapshots");
    // Interval far longer than the run: every batch after the first one
    // falls between two snapshots.
    let snap_args: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--snapshot-every", "3600", "--out", s(&snap)])
        .collect();
    let (code, snap_kib, stderr) = run_measured(&snap_args, &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read(snap.join("summary.json")).unwrap(),
        std::fs::read(plain.join("summary.json")).unwrap()
    );
    // Generous: the totals, a few rendered texts and allocator slack.
    let bound = base_kib + 16 * summary_kib + 32 * 1024;
    println!(
        "peak RSS: {base_kib} KiB without snapshots, {snap_kib} KiB with (summary {summary_kib} KiB, bound {bound} KiB)"
    );
    assert!(snap_kib <= bound, "{snap_kib} KiB > {bound} KiB");
}

/// A lock held by the test on `path` (as a live run holds its own).
fn hold_lock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: flock(2) on a descriptor `f` owns.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    f
}

#[test]
fn cleanup_removes_only_unlocked_parpipe_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // Another program's temporary, with a pid that runs nowhere.
    let backup = out.join(".backup.3999999.tmp");
    std::fs::create_dir(&backup).unwrap();
    std::fs::write(backup.join("db.sqlite"), b"precious").unwrap();
    // A killed run's staging directory: nobody holds its lock.
    let killed = out.join(".run.parpipe-3999998-0badc0de.tmp");
    std::fs::create_dir(&killed).unwrap();
    std::fs::write(killed.join("records.jsonl"), b"{}\n").unwrap();
    // A live run's, of a pid this namespace does not have: its lock is held.
    let live = out.join(".run.parpipe-3999997-0000beef.tmp");
    std::fs::create_dir(&live).unwrap();
    let _lock = hold_lock(&live);
    let args = ["run", "--records", "1000", "--out", s(&out)];
    let o = common::expect_ok(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("removed '{}'", killed.display())),
        "{err}"
    );
    assert!(err.contains(&format!("left '{}'", live.display())), "{err}");
    assert!(!err.contains(".backup."), "{err}");
    assert_eq!(
        std::fs::read(backup.join("db.sqlite")).unwrap(),
        b"precious"
    );
    assert_eq!(
        entries(&out),
        [
            ".backup.3999999.tmp",
            ".run.parpipe-3999997-0000beef.tmp",
            "report.html",
            "report.json",
            "summary.json"
        ]
    );
}

#[test]
fn a_live_run_in_another_pid_namespace_keeps_its_staging() {
    let probe = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
            "true",
        ])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED: cannot make a PID namespace here (unshare --user --pid)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Run A, in a PID namespace of its own, reads standard input: it lives
    // (its staging directory in OUT) until the test closes it.
    let mut a = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
        ])
        .args([bin(), "run", "-v", "--input", "-", "--out", s(&out)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start unshare");
    await_until(&mut a, "run A's staging directory", || {
        entries(&out).iter().any(|n| n.starts_with(".run.parpipe-"))
    });
    let staging = entries(&out)
        .into_iter()
        .find(|n| n.starts_with(".run.parpipe-"))
        .unwrap();
    // Run B, in this namespace, into the same OUT.
    let b = common::expect_ok(&["run", "--records", "1000", "--out", s(&out)]);
    let err = String::from_utf8_lossy(&b.stderr);
    assert!(
        err.contains(&format!("left '{}'", out.join(&staging).display())),
        "{err}"
    );
    assert!(
        out.join(&staging).is_dir(),
        "B removed A's live staging directory"
    );
    // A goes on and ends with its own result.
    let mut stdin = a.stdin.take().unwrap();
    stdin.write_all(log_lines(250, 0).as_bytes()).unwrap();
    drop(stdin);
    let status = a.wait().unwrap();
    let mut text = String::new();
    BufReader::new(a.stderr.take().unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert!(status.success(), "{text}");
    assert_eq!(common::read_json(&out.join("summary.json"))["lines"], 250);
    assert_eq!(
        entries(&out),
        ["report.html", "report.json", "summary.json"]
    );
    println!("run A's staging '{staging}' (PID namespace of its own) survived run B");
}
