//! A worker that cannot read an input it is offered as file ranges
//! (`--allow-read`) gets that input's bytes from the coordinator instead,
//! and the run succeeds: real `parpipe run --workers 0 --listen
//! 127.0.0.1:0` and `parpipe worker` processes on real sockets, outputs
//! byte-identical to serial mode, the worker's row in `report.json` naming
//! the input and why, and a warning in the coordinator's log.
//!
//! Two ways the worker's view of the input differs from the
//! coordinator's: a directory on the input's path replaced by a symbolic
//! link once the coordinator has resolved its inputs (the worker refuses
//! to follow it; any user), and, when the test runs as root, a file of
//! mode 600 that the worker, run as `nobody`, cannot open (`Permission
//! denied`), as an access log is to an unprivileged service. (As any
//! other user, a file that user cannot read is unreadable to the
//! coordinator too, so that case needs root.)

mod common;

use common::{bin, read_json, s};
use parpipe::protocol::{client_handshake, read_frame, FrameCodec, Message, PeerHello};
use parpipe::protocol::{DEFAULT_MAX_FRAME, TOKEN_ENV};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "unreadable-test-token";
const TIMEOUT: Duration = Duration::from_secs(60);
const OUTPUTS: [&str; 3] = ["summary.json", "records.jsonl", "rejects.txt"];

/// `lines` generated log lines (seed `seed`) in `path`.
fn generate(path: &Path, lines: u64, seed: u64) {
    let out = Command::new(bin())
        .args(["generate", "--records", &lines.to_string()])
        .args(["--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(path, out.stdout).unwrap();
}

/// The run's arguments over `inputs`, writing into `out`.
fn run_args<'a>(inputs: &'a [PathBuf], out: &'a Path) -> Vec<&'a str> {
    let mut args = vec!["run"];
    for input in inputs {
        args.extend(["--input", s(input)]);
    }
    args.extend(["--out", s(out), "--emit-records", "--batch-size", "500"]);
    args
}

/// A coordinator (`--workers 0 --listen 127.0.0.1:0`, one chunk in flight
/// per worker thread) with its stderr collected line by line.
struct Coordinator {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
    addr: String,
}

impl Coordinator {
    fn start(inputs: &[PathBuf], out: &Path) -> Self {
        let mut child = Command::new(bin())
            .args(run_args(inputs, out))
            .args(["--mode", "multiprocess", "--workers", "0"])
            .args(["--listen", "127.0.0.1:0", "--inflight", "1", "-v"])
            .env(TOKEN_ENV, TOKEN)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start coordinator");
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let all = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
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

    /// Waits (at most [`TIMEOUT`]) for a stderr line matching `pred`.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("no such line; log so far:\n{}", self.log.lock().unwrap()),
            }
        }
    }

    /// Waits for exit; returns its code and whole stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "the coordinator did not finish:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The collecting thread ends with the pipe.
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

/// A real worker allowed to read `root`, one thread, logging to `log`;
/// run as `uid` when given.
fn start_worker(addr: &str, root: &Path, log: &Path, uid: Option<u32>) -> Child {
    let mut cmd = Command::new(bin());
    cmd.args(["worker", "--connect", addr, "--threads", "1"])
        .args(["--allow-read", s(root)])
        .env(TOKEN_ENV, TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    cmd.spawn().expect("start worker")
}

/// Asserts the run succeeded with outputs byte-identical to serial mode's
/// in `serial`, and that exactly one worker's row names `input` as
/// unreadable with a reason containing `why`, with the one chunk it was
/// offered as ranges shipped (one thread, one chunk in flight: every later
/// chunk of that input went to it as bytes). Returns that row.
fn assert_shipped(
    (code, log): (Option<i32>, String),
    serial: &Path,
    out: &Path,
    input: &Path,
    why: &str,
) -> serde_json::Value {
    assert_eq!(code, Some(0), "{log}");
    for f in OUTPUTS {
        let want = std::fs::read(serial.join(f)).unwrap();
        let got = std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}\n{log}"));
        assert!(want == got, "{f} differs from serial mode's\n{log}");
    }
    let report = read_json(&out.join("report.json"));
    let rows: Vec<_> = report["workers"]
        .as_array()
        .expect("workers in report.json")
        .iter()
        .filter(|w| w["unreadable_inputs"].is_array())
        .collect();
    assert_eq!(rows.len(), 1, "one worker could not read: {report:#}");
    let row = rows[0].clone();
    let named = &row["unreadable_inputs"];
    assert_eq!(named.as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(named[0]["input"], s(input), "{report:#}");
    let reason = named[0]["reason"].as_str().unwrap();
    assert!(reason.contains(why), "{reason}");
    assert_eq!(row["shipped_unreadable"], 1, "{report:#}");
    let warning = format!("cannot read input '{}'", input.display());
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(&warning)),
        "no warning '{warning}' in:\n{log}"
    );
    row
}

/// A folder readable by every user holding `data/a.log` and
/// `data/sub/b.log`, and serial mode's outputs over them.
struct Inputs {
    _dir: tempfile::TempDir,
    top: PathBuf,
    inputs: Vec<PathBuf>,
    serial: PathBuf,
}

impl Inputs {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(top.join("data/sub")).unwrap();
        let inputs = vec![top.join("data/a.log"), top.join("data/sub/b.log")];
        generate(&inputs[0], 6_000, 7);
        generate(&inputs[1], 6_000, 8);
        let serial = top.join("serial");
        let out = Command::new(bin())
            .args(run_args(&inputs, &serial))
            .args(["--mode", "serial", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Inputs {
            _dir: dir,
            top,
            inputs,
            serial,
        }
    }
}

/// Connects as a worker allowed to read `root`, waits for the first chunk
/// it is offered as file ranges (by then the coordinator has resolved
/// its inputs), runs `then`, and hangs up without answering: the
/// coordinator gives the chunk to the next worker.
fn take_first_chunk_and_leave(addr: &str, root: &Path, then: impl FnOnce()) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME));
        let hello = PeerHello {
            worker_id: 4242,
            cores: 1,
            threads: 1,
            allowed_roots: vec![s(root).to_string()],
        };
        client_handshake(&mut framed, TOKEN.as_bytes(), &hello)
            .await
            .unwrap();
        let first = tokio::time::timeout(TIMEOUT, async {
            loop {
                match read_frame(&mut framed).await {
                    Ok(Some(Message::ChunkInFiles { .. })) => break,
                    Ok(Some(Message::Chunk { .. })) => panic!("a chunk came as bytes"),
                    Ok(Some(_)) => continue,
                    other => panic!("the coordinator hung up: {other:?}"),
                }
            }
        });
        first.await.expect("no chunk was offered");
    });
    then();
}

#[test]
fn a_directory_turned_into_a_link_under_the_worker_gets_its_files_shipped() {
    let i = Inputs::new();
    let out = i.top.join("mp");
    let data = i.top.join("data");
    let mut c = Coordinator::start(&i.inputs, &out);
    // The worker's view changes once the coordinator has resolved the
    // inputs: `data/sub` becomes a link to a folder beside `data`. The
    // coordinator still opens `data/sub/b.log` (through the link); a
    // worker allowed `data` refuses a path that leaves it through a link.
    take_first_chunk_and_leave(&c.addr, &data, || {
        let moved = i.top.join("moved");
        std::fs::rename(data.join("sub"), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, data.join("sub")).unwrap();
    });
    let log = i.top.join("worker.log");
    let worker = start_worker(&c.addr, &data, &log, None);
    c.wait_for(|l| l.contains("worker joined") && l.contains(s(&data)));
    let result = c.finish();
    let mut worker = worker;
    assert!(worker.wait().unwrap().success());
    let row = assert_shipped(
        result,
        &i.serial,
        &out,
        &i.inputs[1],
        "through a symbolic link",
    );
    assert!(row["chunks"].as_u64().unwrap() > 1, "{row:#}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("asking the coordinator for its bytes"),
        "{log}"
    );
}

#[test]
fn a_file_the_workers_user_cannot_open_is_shipped_and_the_run_succeeds() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED: needs root to run the worker as another user (a file this user \
             cannot open, the coordinator, run as the same user, cannot read either)"
        );
        return;
    }
    let Some(nobody) = user_id("nobody") else {
        eprintln!("SKIPPED: no user 'nobody' to run the worker as");
        return;
    };
    let i = Inputs::new();
    let out = i.top.join("mp");
    let data = i.top.join("data");
    for dir in [&data, &data.join("sub")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&i.inputs[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&i.inputs[1], std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = Coordinator::start(&i.inputs, &out);
    let log = i.top.join("worker.log");
    let mut worker = start_worker(&c.addr, &data, &log, Some(nobody));
    let result = c.finish();
    let exited = worker.wait().unwrap();
    let worker_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exited.success(), "{worker_log}");
    let row = assert_shipped(
        result,
        &i.serial,
        &out,
        &i.inputs[1],
        "Permission denied (os error 13)",
    );
    assert!(row["chunks"].as_u64().unwrap() > 1, "{row:#}");
}

/// The uid of `name`, from `/etc/passwd`.
fn user_id(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}
