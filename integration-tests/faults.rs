//! Fault cases of issue 10 that need no privilege: the empty-input race of
//! pipeline mode (looped, in-process and with the real binary); an input
//! file truncated or replaced while a run reads it (every mode alike: exit 1
//! naming the file, no `summary.json`); the temporaries of a killed run,
//! cleaned by the next one; an unusable `--out` refused before any input is
//! read. (A full disk: `full_disk.rs`, which needs to mount a tmpfs.)

mod common;

use common::describe;
use parpipe::{
    Aggregate, BatchInfo, JobSpec, Mode, Pipeline, Registry, Replicas, RunConfig, Sink, Source,
    Stage, StageError,
};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Far beyond what a run of a few lines takes, even on a loaded machine.
const HANG: Duration = Duration::from_secs(60);

/// Waits for `child` for at most `limit`; a child still running then is
/// killed and reported as a hang.
fn wait_or_kill(mut child: Child, limit: Duration) -> Result<(Output, Duration), String> {
    let started = Instant::now();
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(stdout.map(|p| Box::new(p) as _));
    let err = read(stderr.map(|p| Box::new(p) as _));
    match rx.recv_timeout(limit) {
        Ok(status) => {
            let status = status.map_err(|e| format!("wait failed: {e}"))?;
            let _ = waiter.join();
            let output = Output {
                status,
                stdout: out.join().unwrap_or_default(),
                stderr: err.join().unwrap_or_default(),
            };
            Ok((output, started.elapsed()))
        }
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid, which it still is (not reaped).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = waiter.join();
            Err(format!("hung: still running after {limit:?}; killed"))
        }
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe")
}

// ---- the empty-input race (pipeline mode) ----

#[test]
fn empty_and_one_batch_inputs_never_hang_the_default_mode() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let one = dir.path().join("one.log");
    std::fs::write(
        &one,
        b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.0\" 200 2326\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let (empty, one) = (empty.to_str().unwrap(), one.to_str().unwrap());
    let cases: Vec<(Vec<&str>, u64)> = vec![
        (vec!["--records", "0"], 0),
        (vec!["--input", empty], 0),
        (vec!["--input", empty, "--replicas", "parse=1"], 0),
        (vec!["--input", empty, "--replicas", "parse=2"], 0),
        (vec!["--records", "1"], 1),
        (vec!["--input", one, "--replicas", "parse=2"], 1),
        (vec!["--records", "8192", "--queue-depth", "1"], 8192),
    ];
    let runs = 60;
    let mut longest = Duration::ZERO;
    let mut failures = Vec::new();
    for (extra, lines) in &cases {
        for _ in 0..runs {
            let mut args = vec!["run", "-q", "--out", out];
            args.extend(extra.iter().copied());
            match wait_or_kill(spawn(&args), HANG) {
                Ok((o, took)) => {
                    longest = longest.max(took);
                    if o.status.code() != Some(0) {
                        failures.push(describe(&args, &o));
                        continue;
                    }
                    let summary = common::read_json(&Path::new(out).join("summary.json"));
                    assert_eq!(summary["lines"], *lines, "{}", describe(&args, &o));
                }
                Err(why) => failures.push(format!("parpipe {}: {why}", args.join(" "))),
            }
        }
    }
    println!(
        "{} runs of the default mode ({} cases × {runs}); longest {:.3} s; {} failed",
        cases.len() * runs,
        cases.len(),
        longest.as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Yields `batches` batches of one number each.
struct Few {
    left: u64,
}

impl Source for Few {
    type Out = Vec<u64>;

    fn next_batch(&mut self, _max: usize) -> Result<Option<Vec<u64>>, StageError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        Ok(Some(vec![self.left + 1]))
    }
}

#[derive(Clone)]
struct Pass;

impl Stage for Pass {
    type In = Vec<u64>;
    type Out = Vec<u64>;

    fn process(&mut self, input: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        Ok(input)
    }
}

#[derive(Clone)]
struct Sum;

impl Aggregate for Sum {
    type In = Vec<u64>;
    type Partial = u64;

    fn empty(&self) -> u64 {
        0
    }

    fn add(&mut self, acc: &mut u64, input: Vec<u64>, _: &BatchInfo) -> Result<(), StageError> {
        *acc += input.iter().sum::<u64>();
        Ok(())
    }

    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
}

/// Sends the result to the test.
struct Report(mpsc::Sender<u64>);

impl Sink for Report {
    type Partial = u64;
    type Output = ();

    fn finish(&mut self, sum: u64) -> Result<(), StageError> {
        let _ = self.0.send(sum);
        Ok(())
    }
}

#[test]
fn empty_and_one_batch_pipelines_finish_in_process() {
    let (tx, sums) = mpsc::channel();
    let mut registry = Registry::new();
    registry.register("few", move |(batches, stages): (u64, usize)| {
        let mut b = Pipeline::builder("few", "few", Few { left: batches }).stage("pass", Pass);
        for _ in 1..stages {
            b = b.stage("pass", Pass);
        }
        Ok(b.aggregate("sum", Sum, "report", Report(tx.clone())))
    });
    let registry = std::sync::Arc::new(registry);
    let mut runs = 0;
    for (batches, replicas) in [
        (0u64, "pass=1"),
        (0, "pass=2"),
        (1, "pass=1"),
        (1, "pass=2"),
        (2, "pass=3"),
    ] {
        for _ in 0..60 {
            let config = RunConfig {
                mode: Mode::Pipelined,
                queue_depth: 1,
                replicas: Replicas::parse_one(replicas).unwrap(),
                ..RunConfig::default()
            };
            let job = JobSpec::new("few", &(batches, 1usize)).unwrap();
            let (done_tx, done) = mpsc::channel();
            let reg = registry.clone();
            // A hung run leaves its thread behind; the test fails either way.
            std::thread::spawn(move || {
                let _ = done_tx.send(parpipe::run(&reg, &job, &config).map(|r| r.report.records));
            });
            let result = done
                .recv_timeout(HANG)
                .unwrap_or_else(|_| panic!("{batches} batches, {replicas}: hung"));
            result.unwrap_or_else(|e| panic!("{batches} batches, {replicas}: {e}"));
            let sum = sums.recv_timeout(HANG).unwrap();
            assert_eq!(sum, batches * (batches + 1) / 2);
            runs += 1;
        }
    }
    println!("{runs} in-process pipeline runs, none hung");
}

// ---- an input that shrinks or is replaced while a run reads it ----

/// An inotify watch for reads of one file: lets the test act at the moment
/// the run has started reading, without guessing a delay.
struct Reads {
    fd: libc::c_int,
}

impl Reads {
    fn of(path: &Path) -> Reads {
        Reads::events(path, libc::IN_ACCESS)
    }

    /// A watch for other events (`IN_MODIFY`: a file in a directory written).
    fn events(path: &Path, mask: u32) -> Reads {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls on a fresh descriptor and a NUL-terminated path.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_CLOEXEC);
            assert!(
                fd >= 0,
                "inotify_init1: {}",
                std::io::Error::last_os_error()
            );
            let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
            let w = libc::inotify_add_watch(fd, c.as_ptr(), mask);
            assert!(
                w >= 0,
                "inotify_add_watch: {}",
                std::io::Error::last_os_error()
            );
            Reads { fd }
        }
    }

    /// Blocks until the file is read (at most `limit`).
    fn wait(&self, limit: Duration) {
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as libc::c_int) };
        assert_eq!(ready, 1, "the awaited event never came");
    }
}

impl Drop for Reads {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// Files the run left in `dir` (none expected after a failure).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_input_truncated_or_replaced_mid_run_fails_every_mode_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.log");
    let spare = dir.path().join("spare.log");
    let generate = |path: &Path, seed: &str| {
        // 6 MB: small enough for a CI disk with little room. The run reads
        // it in small batches with one batch of slack (below), so it is
        // still mid-file when the test meddles.
        let args = ["generate", "--records", "30000", "--seed", seed, "--output"];
        let mut args = args.to_vec();
        args.push(path.to_str().unwrap());
        common::expect_ok(&args);
    };
    type Meddle = fn(&Path, &Path);
    let meddles: [(&str, Meddle); 3] = [
        ("truncated to 0", |p, _| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(0)
                .unwrap()
        }),
        ("truncated to a third", |p, _| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len / 3).unwrap()
        }),
        ("replaced", |p, spare| std::fs::rename(spare, p).unwrap()),
    ];
    let mut seen = Vec::new();
    for mode in ["serial", "pipeline", "multiprocess"] {
        for (what, meddle) in meddles {
            generate(&input, "42");
            generate(&spare, "7");
            let out = dir.path().join(format!("out-{mode}"));
            let _ = std::fs::remove_dir_all(&out);
            // Multiprocess mode's plan looks at the file (is it plain?)
            // before the run reads it: the moment to meddle is when the
            // coordinator has cut it into ranges (logged with -v), not
            // the first read.
            let multiprocess = mode == "multiprocess";
            let mut args = vec![
                "run",
                if multiprocess { "-v" } else { "-q" },
                "--mode",
                mode,
                "--input",
                input.to_str().unwrap(),
                "--batch-size",
                "500",
                "--queue-depth",
                "1",
            ];
            if mode == "pipeline" {
                // The stage actors, which read the file as the run goes
                // (without --replicas a plain file gets reading lanes).
                args.extend(["--replicas", "parse=1"]);
            }
            args.extend(["--out", out.to_str().unwrap()]);
            if multiprocess {
                args.extend(["--workers", "2", "--inflight", "1"]);
            }
            let reads = Reads::of(&input);
            let mut child = spawn(&args);
            let log = multiprocess.then(|| common::process::Log::collect(&mut child));
            match &log {
                Some(log) => drop(log.wait_for(|l| l.contains("as file ranges"))),
                None => reads.wait(HANG),
            }
            meddle(&input, &spare);
            let (mut o, _) =
                wait_or_kill(child, HANG).unwrap_or_else(|e| panic!("{mode}, {what}: {e}"));
            if let Some(log) = log {
                log.drain();
                o.stderr = log.text().into_bytes();
            }
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            let what = format!("{mode}, input {what}:\n{}", describe(&args, &o));
            assert_eq!(o.status.code(), Some(1), "{what}");
            assert!(err.contains("big.log"), "the file is not named; {what}");
            assert!(err.contains("during the run"), "{what}");
            assert!(!out.join("summary.json").exists(), "{what}");
            assert_eq!(leftovers(&out), Vec::<String>::new(), "{what}");
            seen.push(format!("{mode}: {}", err.trim()));
        }
    }
    println!("{}", seen.join("\n"));
}

// ---- temporaries of a killed run; an unusable --out ----

#[test]
fn a_killed_run_leaves_temporaries_that_the_next_run_removes() {
    let dir = tempfile::tempdir().unwrap();
    // 6 MB of input in chunks of 500 lines, one in flight per worker: the
    // run is still writing records when the test kills it, and the test
    // needs little room on a CI disk.
    let input = dir.path().join("big.log");
    common::expect_ok(&[
        "generate",
        "--records",
        "30000",
        "--output",
        common::s(&input),
    ]);
    let out = dir.path().join("out");
    let args = [
        "run",
        "-q",
        "--mode",
        "multiprocess",
        "--workers",
        "2",
        "--batch-size",
        "500",
        "--inflight",
        "1",
        "--emit-records",
        "--input",
        common::s(&input),
        "--out",
        common::s(&out),
    ];
    let reads = Reads::of(&input);
    let child = spawn(&args);
    let pid = child.id();
    reads.wait(HANG);
    // Staged before the input is read; wait until records are being written.
    let owner = format!("parpipe-{pid}-");
    let staging = leftovers(&out)
        .into_iter()
        .find(|n| n.starts_with(&format!(".run.{owner}")))
        .map(|n| out.join(n))
        .expect("the run's staging directory");
    let tag = staging.file_name().unwrap().to_str().unwrap();
    let tag = tag
        .trim_start_matches(".run.")
        .trim_end_matches(".tmp")
        .to_string();
    let writes = Reads::events(&staging, libc::IN_MODIFY);
    writes.wait(HANG);
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let (o, _) = wait_or_kill(child, HANG).unwrap();
    assert_eq!(o.status.code(), None, "{}", describe(&args, &o));
    let records = staging.join(format!(".records.jsonl.{tag}.tmp"));
    let killed_size = std::fs::metadata(&records).map(|m| m.len()).unwrap_or(0);
    assert!(killed_size > 0, "nothing staged: {:?}", leftovers(&staging));
    assert!(!out.join("summary.json").exists());
    // A temporary whose lock is held (by this test, as by a live run) is
    // left, and named.
    let live = out.join(".summary.json.parpipe-1-00000001.tmp");
    std::fs::write(&live, b"not ours to remove").unwrap();
    let held = std::fs::File::open(&live).unwrap();
    // SAFETY: flock(2) on a descriptor `held` owns.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&held),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(locked, 0);

    let again = ["run", "--records", "100", "--out", common::s(&out)];
    let (o, _) = wait_or_kill(spawn(&again), HANG).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", describe(&again, &o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("removed '{}'", staging.display())),
        "{}",
        describe(&again, &o)
    );
    assert!(
        err.contains(&format!("left '{}'", live.display())),
        "{}",
        describe(&again, &o)
    );
    let mut expected = vec![
        ".summary.json.parpipe-1-00000001.tmp".to_string(),
        "report.html".to_string(),
        "report.json".to_string(),
        "summary.json".to_string(),
    ];
    expected.sort();
    let mut left = leftovers(&out);
    left.sort();
    assert_eq!(left, expected);
    println!(
        "killed run left {} ({killed_size} B); the next run removed it and named the live one",
        records.display()
    );
}

#[test]
fn an_unusable_out_is_refused_before_any_input_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // Opening a FIFO nobody writes blocks: a run that read its input before
    // checking --out would hang.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let under_file = file.join("out");
    let report_under_file = file.join("report.json");
    let out = dir.path().join("out");
    for extra in [
        vec!["--out", common::s(&file)],
        vec!["--out", common::s(&under_file)],
        vec![
            "--out",
            common::s(&out),
            "--report",
            common::s(&report_under_file),
        ],
    ] {
        let mut args = vec!["run", "--input", common::s(&fifo)];
        args.extend(extra);
        let result = wait_or_kill(spawn(&args), HANG);
        if result.is_err() {
            // Let any blocked run go.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        }
        let (o, _) = result.unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(o.status.code(), Some(1), "{}", describe(&args, &o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("a-file"), "{}", describe(&args, &o));
        assert!(!out.join("summary.json").exists());
        assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    }
}

#[test]
fn ctrl_c_as_soon_as_the_outputs_are_staged_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for mode in ["serial", "pipeline", "multiprocess"] {
        let args = [
            "run",
            "-q",
            "--mode",
            mode,
            "--records",
            "50000000",
            "--out",
            common::s(&out),
        ];
        let created = Reads::events(&out, libc::IN_CREATE);
        let child = spawn(&args);
        let pid = child.id();
        created.wait(HANG);
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        let (o, _) = wait_or_kill(child, HANG).unwrap();
        assert_eq!(o.status.code(), Some(130), "{}", describe(&args, &o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("interrupted"),
            "{}",
            describe(&args, &o)
        );
        assert!(
            leftovers(&out).is_empty(),
            "{mode}: left {:?}",
            leftovers(&out)
        );
    }
}
