//! Multiprocess runs that must end, with serial mode's outputs, although
//! something is slow or dishonest: an input pipe whose writer pauses for
//! longer than the heartbeat timeout, a worker that announces 256 threads,
//! heartbeats and never answers, a worker whose answers are delayed by a
//! relay, and workers refused at the pending-handshake cap (told why, and
//! back once there is room). Real processes and sockets; no wall-time
//! assertions: each test waits for log lines, closes and exits.

mod common;

use common::process::{Log, Reaped};
use common::{bin, read_summary, s};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const TOKEN: &str = "stragglers-test-token";

/// A generated input of `lines` lines.
fn make_input(dir: &Path, name: &str, lines: u64, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new(bin())
        .args(["generate", "--records", &lines.to_string()])
        .args(["--seed", &seed.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn token_file(dir: &Path) -> PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    p
}

/// Serial mode's summary of `inputs`.
fn serial_summary(dir: &Path, inputs: &[&Path]) -> serde_json::Value {
    let out = dir.join("serial");
    let mut cmd = Command::new(bin());
    cmd.args(["-q", "run", "--mode", "serial", "--out", s(&out)]);
    for i in inputs {
        cmd.args(["--input", s(i)]);
    }
    assert!(cmd.status().unwrap().success());
    read_summary(&out.join("summary.json"))
}

/// Starts a multiprocess coordinator over `input` with `local` workers of
/// its own, listening on loopback with the test's token; returns it, its
/// log and its address.
fn coordinator(dir: &Path, input: &Path, local: usize, extra: &[&str]) -> (Reaped, Log, String) {
    let token = token_file(dir);
    let mut child = Command::new(bin())
        .args(["-v", "run", "--mode", "multiprocess"])
        .args(["--workers", &local.to_string()])
        .args(["--listen", "127.0.0.1:0", "--token-file", s(&token)])
        .args(["--input", s(input), "--out", s(&dir.join("mp"))])
        .args(["--batch-size", "500"])
        .args(extra)
        .env_remove("PARPIPE_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::collect(&mut child);
    let line = log.wait_for(|l| l.starts_with("parpipe: listening on "));
    let addr = line["parpipe: listening on ".len()..].trim().to_string();
    (Reaped(child), log, addr)
}

/// The coordinator's run ended well, with serial mode's summary.
fn assert_same_as_serial(dir: &Path, coordinator: &mut Reaped, log: &Log, inputs: &[&Path]) {
    let code = coordinator.wait_with(log);
    assert_eq!(code, Some(0), "log:\n{}", log.text());
    assert_eq!(
        read_summary(&dir.join("mp/summary.json")),
        serial_summary(dir, inputs),
        "log:\n{}",
        log.text()
    );
}

#[test]
fn a_pipe_whose_writer_pauses_longer_than_the_heartbeat_timeout_only_delays_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        make_input(dir.path(), "a.log", 20_000, 1),
        make_input(dir.path(), "b.log", 20_000, 2),
    );
    let fifo = dir.path().join("input.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|st| st.success()) {
        println!("SKIPPED: mkfifo is not available");
        return;
    }
    let (a2, b2, fifo2) = (a.clone(), b.clone(), fifo.clone());
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo2)
            .unwrap();
        w.write_all(&std::fs::read(&a2).unwrap()).unwrap();
        w.flush().unwrap();
        // The scenario itself: the writer stalls for three heartbeat timeouts.
        std::thread::sleep(Duration::from_millis(1500));
        w.write_all(&std::fs::read(&b2).unwrap()).unwrap();
    });
    let (mut coord, log, _addr) =
        coordinator(dir.path(), &fifo, 2, &["--heartbeat-timeout", "0.5"]);
    writer.join().unwrap();
    assert_same_as_serial(dir.path(), &mut coord, &log, &[&a, &b]);
    assert!(!log.text().contains("missed heartbeats"), "{}", log.text());
}

/// Plays a worker on the real protocol that announces `threads` threads,
/// heartbeats, and never answers a chunk; counts the chunks it is sent,
/// until the coordinator hangs up.
fn silent_worker(addr: &str, threads: u32, received: Arc<AtomicUsize>) {
    use futures_util::{SinkExt, StreamExt};
    use parpipe::protocol::{client_handshake, FrameCodec, Message, PeerHello};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, FrameCodec::default());
        let hello = PeerHello {
            worker_id: 4242,
            cores: 256,
            threads,
            allowed_roots: Vec::new(),
        };
        client_handshake(&mut framed, TOKEN.as_bytes(), &hello)
            .await
            .unwrap();
        let mut beat = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                msg = framed.next() => match msg {
                    Some(Ok(Message::Chunk { .. } | Message::ChunkInFiles { .. })) => {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(Ok(Message::Shutdown)) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = beat.tick() => {
                    if framed.send(Message::Heartbeat).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

#[test]
fn a_worker_that_never_answers_holds_only_its_grant_and_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), "input.log", 60_000, 3);
    // No local workers: the silent one joins first, alone, and takes what
    // it is granted; the real workers join once it holds its chunks.
    let (mut coord, log, addr) = coordinator(dir.path(), &input, 0, &[]);
    let received = Arc::new(AtomicUsize::new(0));
    let silent = {
        let (addr, received) = (addr.clone(), received.clone());
        std::thread::spawn(move || silent_worker(&addr, 256, received))
    };
    log.wait_for(|l| l.contains("worker joined"));
    let token = token_file(dir.path());
    let workers: Vec<Reaped> = (0..2)
        .map(|_| {
            Reaped(
                Command::new(bin())
                    .args(["worker", "--connect", &addr, "--token-file", s(&token)])
                    .args(["--threads", "1"])
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    assert_same_as_serial(dir.path(), &mut coord, &log, &[&input]);
    silent.join().unwrap();
    let held = received.load(Ordering::SeqCst);
    // Default --inflight 2, one granted thread: whatever it announced.
    assert!(
        (1..=2).contains(&held),
        "the silent worker was sent {held} chunks"
    );
    assert!(
        log.text().contains("is overdue: sent to worker"),
        "{}",
        log.text()
    );
    drop(workers);
}

/// Forwards one connection between a worker and the coordinator, holding
/// every read from the worker `delay` before passing it on (the order of
/// the bytes kept): a worker behind a slow link.
fn delaying_relay(listener: TcpListener, coordinator: String, delay: Duration) {
    let (from_worker, _) = listener.accept().unwrap();
    let to_coordinator = TcpStream::connect(&coordinator).unwrap();
    let (mut w_read, mut c_write) = (
        from_worker.try_clone().unwrap(),
        to_coordinator.try_clone().unwrap(),
    );
    let (mut c_read, mut w_write) = (to_coordinator, from_worker);
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        while let Ok(n) = w_read.read(&mut buf) {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if c_write.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut c_read, &mut w_write);
    let _ = w_write.shutdown(std::net::Shutdown::Write);
}

#[test]
fn a_worker_behind_a_slow_link_does_not_hold_the_run_and_each_chunk_is_merged_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), "input.log", 60_000, 4);
    let (mut coord, log, addr) = coordinator(dir.path(), &input, 2, &[]);
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    std::thread::spawn(move || delaying_relay(relay, addr, Duration::from_millis(500)));
    let token = token_file(dir.path());
    let _slow = Reaped(
        Command::new(bin())
            .args([
                "worker",
                "--connect",
                &relay_addr,
                "--token-file",
                s(&token),
            ])
            .args(["--threads", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_same_as_serial(dir.path(), &mut coord, &log, &[&input]);
}

#[test]
fn a_worker_refused_at_the_handshake_cap_is_told_why_and_joins_later() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), "input.log", 20_000, 5);
    let (mut coord, log, addr) =
        coordinator(dir.path(), &input, 0, &["--worker-wait-timeout", "60"]);
    // Strangers that connect and say nothing fill the handshake slots.
    let cap = parpipe::protocol::MAX_PENDING_HANDSHAKES;
    let strangers: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let token = token_file(dir.path());
    let mut worker = Command::new(bin())
        .args(["worker", "--connect", &addr, "--token-file", s(&token)])
        .args(["--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wlog = Log::collect(&mut worker);
    let mut worker = Reaped(worker);
    let told = wlog.wait_for(|l| l.contains("is busy"));
    assert!(
        told.contains("connections are already in the handshake"),
        "{told}"
    );
    assert!(told.contains("connecting again in"), "{told}");
    drop(strangers);
    assert_same_as_serial(dir.path(), &mut coord, &log, &[&input]);
    assert_eq!(worker.wait_with(&wlog), Some(0), "{}", wlog.text());
    assert!(!wlog.text().contains("reset by peer"), "{}", wlog.text());
}
