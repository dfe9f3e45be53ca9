//! The trust boundary with the real binary and real sockets: a listening
//! coordinator sent the 15-byte frame of the attack report, every message
//! variant declaring a huge length, more unauthenticated connections than
//! it admits at once, and random garbage, completes its run with the
//! outputs of serial mode; a worker sent such frames by a fake coordinator
//! exits 1 with a clear error (and a keep-alive worker survives them). No
//! blind sleeps: the tests wait for log lines, connection closes and exits.

mod common;

use common::process::{Log, Reaped};
use common::{bin, s};
use parpipe::protocol::{server_handshake, FrameCodec, DEFAULT_MAX_FRAME, MAX_PENDING_HANDSHAKES};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const TOKEN: &str = "hostile-wire-test-token";

/// The attack report's frame: a `ChunkFailed` whose error declares 2^40 bytes.
const CHUNK_FAILED_2_40: [u8; 15] = [0, 0, 0, 0x0b, 6, 0, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

/// A bincode varint declaring 2^40.
const HUGE: [u8; 9] = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

/// A frame of `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// One frame per message variant and length field, the field declaring
/// 2^40 (variant index, then the fields before it), with the reason a
/// coordinator gives before authentication.
fn huge_frames() -> Vec<(&'static str, Vec<u8>)> {
    let with = |prefix: &[u8]| {
        let mut b = prefix.to_vec();
        b.extend_from_slice(&HUGE);
        b.extend_from_slice(b"abc");
        frame(&b)
    };
    vec![
        ("Challenge", with(&[1])),
        ("Proof mac", with(&[2])),
        ("Proof nonce", with(&[2, 1, 7])),
        ("Job pipeline", with(&[3])),
        ("Job params", with(&[3, 1, b'x'])),
        ("Chunk payload", with(&[4, 0, 1, 1])),
        ("ChunkDone partial", with(&[5, 0])),
        ("ChunkDone stats", with(&[5, 0, 0])),
        ("ChunkFailed error", with(&[6, 0])),
        ("ChunkInFiles ranges", with(&[9, 0, 1, 1])),
        ("ChunkInFiles path", with(&[9, 0, 1, 1, 1])),
    ]
}

/// A generated input.
fn make_input(dir: &Path, lines: u64) -> PathBuf {
    let path = dir.join("input.log");
    let out = Command::new(bin())
        .args(["generate", "--records", &lines.to_string(), "--seed", "11"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn token_file(dir: &Path, token: &str) -> PathBuf {
    let p = dir.join(format!("token-{token}"));
    std::fs::write(&p, format!("{token}\n")).unwrap();
    p
}

/// Sends `bytes` and waits until the peer drops the connection (EOF or
/// reset); returns our address, which the coordinator's log line names.
fn send_and_wait_for_close(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let ours = s.local_addr().unwrap().to_string();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    // The coordinator may close before reading everything: a reset is fine.
    let _ = s.write_all(bytes);
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the coordinator did not drop the connection: {e}"),
    }
    ours
}

/// Deterministic garbage (SplitMix64), so that a failure can be replayed.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn a_listening_coordinator_survives_hostile_frames_and_matches_serial() {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 4_000);
    let token = token_file(dir.path(), TOKEN);
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
    let out = dir.path().join("mp");
    // No local workers: nothing runs until the honest worker joins, so the
    // attacks all land on a coordinator in the middle of its run.
    let mut child = Command::new(bin())
        .args(["-v", "run", "--mode", "multiprocess", "--workers", "0"])
        .args(["--listen", "127.0.0.1:0", "--token-file", s(&token)])
        .args(["--input", s(&input), "--out", s(&out)])
        .args(["--batch-size", "500", "--worker-wait-timeout", "60"])
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::collect(&mut child);
    let mut coordinator = Reaped(child);
    let line = log.wait_for(|l| l.starts_with("parpipe: listening on "));
    let addr = line["parpipe: listening on ".len()..].trim().to_string();
    // The line dropping the connection from `peer`, with `why` in it.
    let dropped = |peer: &str, why: &str| {
        let line = log.wait_for(|l| l.contains("dropping connection") && l.contains(peer));
        assert!(line.contains(why), "expected '{why}' in: {line}");
    };

    // The 15-byte frame.
    let peer = send_and_wait_for_close(&addr, &CHUNK_FAILED_2_40);
    dropped(&peer, "unexpected ChunkFailed during the handshake");
    // Every variant with a huge declared length: a handshake message is
    // decoded and found short; any other is refused from its first byte.
    for (name, f) in huge_frames() {
        let peer = send_and_wait_for_close(&addr, &f);
        let handshake = name.starts_with("Challenge") || name.starts_with("Proof");
        dropped(
            &peer,
            if handshake {
                "malformed frame"
            } else {
                "during the handshake"
            },
        );
    }
    // A large body declared before authentication: refused from its length.
    let mut big = ((DEFAULT_MAX_FRAME - 1) as u32).to_be_bytes().to_vec();
    big.extend_from_slice(&[6; 4096]);
    let peer = send_and_wait_for_close(&addr, &big);
    dropped(&peer, "exceeds the limit of 4096 bytes");
    // Random garbage.
    for seed in 0..8 {
        let peer = send_and_wait_for_close(&addr, &garbage(seed, 64 + 97 * seed as usize));
        dropped(&peer, "");
    }
    // More strangers than the coordinator admits at once, each holding its
    // connection silently: the excess is closed as soon as it is accepted.
    let strangers: Vec<TcpStream> = (0..MAX_PENDING_HANDSHAKES + 8)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let refused =
        |l: &str| l.contains("dropping connection") && l.contains("already in the handshake");
    log.wait_for(refused);
    drop(strangers);
    // Every stranger is accounted for — refused, or dropped once it hung
    // up — before the honest worker comes, so that it finds a free slot.
    for _ in 1..MAX_PENDING_HANDSHAKES + 8 {
        log.wait_for(|l| refused(l) || l.contains("connection closed during hello"));
    }

    // Then an honest worker does the job.
    let mut worker = Reaped(
        Command::new(bin())
            .args(["worker", "--connect", &addr, "--token-file", s(&token)])
            .env_remove("PARPIPE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let code = coordinator.wait();
    // Let the reader thread drain the pipe.
    log.drain();
    let text = log.text();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(worker.wait(), Some(0));
    assert_eq!(
        std::fs::read(serial.join("summary.json")).unwrap(),
        std::fs::read(out.join("summary.json")).unwrap(),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    // Each hostile connection was dropped with a reason naming its peer.
    let drops = text.matches("dropping connection").count();
    assert!(
        drops >= 1 + huge_frames().len() + 1 + 8 + 8,
        "{drops}:\n{text}"
    );
}

/// A fake coordinator: accepts one connection from a worker, reads its
/// Hello, and answers with `reply` (after the real handshake when
/// `authenticate`); returns the worker's exit code and stderr.
fn fake_coordinator(reply: &[u8], authenticate: bool, keep_alive: bool) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cmd = Command::new(bin());
    cmd.arg("worker");
    if keep_alive {
        cmd.arg("--keep-alive");
    }
    let mut child = cmd
        .args(["--connect", &addr, "--token-file", s(&token)])
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::collect(&mut child);
    let mut worker = Reaped(child);
    let (stream, _) = listener.accept().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = reply.to_vec();
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.set_nonblocking(true).unwrap();
        let stream = tokio::net::TcpStream::from_std(stream).unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, FrameCodec::default());
        if authenticate {
            server_handshake(&mut framed, TOKEN.as_bytes())
                .await
                .expect("the worker authenticates");
        } else {
            // The worker's Hello.
            let mut head = [0u8; 4];
            framed.get_mut().read_exact(&mut head).await.unwrap();
            let mut body = vec![0; u32::from_be_bytes(head) as usize];
            framed.get_mut().read_exact(&mut body).await.unwrap();
        }
        let _ = framed.get_mut().write_all(&reply).await;
        // Until the worker hangs up.
        let mut sink = [0u8; 1024];
        while matches!(framed.get_mut().read(&mut sink).await, Ok(n) if n > 0) {}
    });
    if keep_alive {
        // It survived and comes back for the next job.
        listener.accept().unwrap();
        log.wait_for(|l| l.contains("reconnecting"));
        assert!(worker.0.try_wait().unwrap().is_none(), "{}", log.text());
        return (None, log.text());
    }
    let code = worker.wait();
    log.drain();
    (code, log.text())
}

#[test]
fn a_worker_sent_declared_length_frames_exits_1_with_a_clear_error() {
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "15-byte frame",
            CHUNK_FAILED_2_40.to_vec(),
            false,
            "unexpected ChunkFailed during the handshake",
        ),
        (
            "Challenge nonce of 2^40",
            huge_frames()[0].1.clone(),
            false,
            "malformed frame",
        ),
        (
            "Job before the coordinator proved itself",
            huge_frames()[3].1.clone(),
            false,
            "unexpected Job during the handshake",
        ),
        (
            "64 MiB - 1 frame before authentication",
            ((DEFAULT_MAX_FRAME - 1) as u32).to_be_bytes().to_vec(),
            false,
            "exceeds the limit of 4096 bytes",
        ),
        (
            "authenticated, Job pipeline name of 2^40",
            huge_frames()[3].1.clone(),
            true,
            "malformed frame",
        ),
        (
            "authenticated, Chunk payload of 2^40",
            huge_frames()[5].1.clone(),
            true,
            "malformed frame",
        ),
    ];
    for (name, reply, authenticate, expected) in cases {
        let (code, text) = fake_coordinator(&reply, authenticate, false);
        assert_eq!(code, Some(1), "{name}:\n{text}");
        assert!(
            text.contains("parpipe: error: runtime: coordinator 127.0.0.1:")
                && text.contains(expected),
            "{name}: expected '{expected}' in:\n{text}"
        );
    }
    // A keep-alive worker logs it and comes back.
    let (_, text) = fake_coordinator(&CHUNK_FAILED_2_40, false, true);
    assert!(text.contains("ChunkFailed"), "{text}");
}

/// A scripted worker on the real protocol: authenticates (announcing
/// `roots` it reads chunks from), then answers every chunk with `partial`
/// as its `ChunkDone`, claiming `records` records, until the coordinator
/// hangs up.
fn scripted_worker(addr: &str, partial: Vec<u8>, roots: Vec<String>, records: u64) {
    use futures_util::{SinkExt, StreamExt};
    use parpipe::protocol::{client_handshake, ChunkStats, Message};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, FrameCodec::default());
        client_handshake(
            &mut framed,
            TOKEN.as_bytes(),
            &parpipe::protocol::PeerHello {
                worker_id: 4242,
                cores: 1,
                threads: 1,
                allowed_roots: roots,
            },
        )
        .await
        .unwrap();
        let work = async {
            while let Some(Ok(msg)) = framed.next().await {
                if let Message::Chunk { seq, .. } | Message::ChunkInFiles { seq, .. } = msg {
                    let done = Message::ChunkDone {
                        seq,
                        partial: partial.clone(),
                        stats: ChunkStats {
                            records,
                            ..ChunkStats::default()
                        },
                    };
                    if framed.send(done).await.is_err() {
                        break;
                    }
                }
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .expect("the coordinator never hung up");
    });
}

/// Runs a coordinator whose only worker answers every chunk with
/// `partial`, counting the 500 records each chunk of these runs holds;
/// returns its exit code, log and output directory's files.
fn run_with_partials(partial: Vec<u8>) -> (Option<i32>, String, Vec<String>) {
    run_with_answers(partial, false, 500)
}

/// [`run_with_partials`], by a worker that claims `records` records per
/// chunk and, when `reads_files`, reads the input's directory itself (so
/// that chunks come cut by bytes, their records not counted).
fn run_with_answers(
    partial: Vec<u8>,
    reads_files: bool,
    records: u64,
) -> (Option<i32>, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let input = make_input(dir.path(), 4_000);
    let token = token_file(dir.path(), TOKEN);
    let out = dir.path().join("mp");
    let mut child = Command::new(bin())
        .args(["run", "--mode", "multiprocess", "--workers", "0"])
        .args(["--listen", "127.0.0.1:0", "--token-file", s(&token)])
        .args([
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--batch-size",
            "500",
        ])
        .env_remove("PARPIPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::collect(&mut child);
    let mut coordinator = Reaped(child);
    let line = log.wait_for(|l| l.starts_with("parpipe: listening on "));
    let addr = line["parpipe: listening on ".len()..].trim().to_string();
    let roots = if reads_files {
        vec![dir.path().canonicalize().unwrap().display().to_string()]
    } else {
        Vec::new()
    };
    scripted_worker(&addr, partial, roots, records);
    let code = coordinator.wait();
    log.drain();
    let files = std::fs::read_dir(&out)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (code, log.text(), files)
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap()
}

#[test]
fn a_partial_that_does_not_account_for_its_chunk_gets_its_worker_dropped() {
    use parpipe::workloads::logs::metrics::LogsPartial;
    // Each chunk claims almost u64::MAX lines: refused before any merge,
    // naming the chunk and the worker; the worker goes, its chunks are
    // re-queued, and with no other worker the run fails, writing nothing.
    let partial = LogsPartial {
        lines: u64::MAX - 1,
        ..LogsPartial::default()
    };
    let (code, log, files) = run_with_partials(encode(&partial));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("worker 1 (127.0.0.1:")
            && log.contains(
                "chunk 0 (lines 1-500): wrong answer, dropping the worker: its partial \
                 does not match the chunk: it counts 18446744073709551614 lines, the chunk \
                 holds 500"
            )
            && log.contains("no workers"),
        "{log}"
    );
    assert!(files.is_empty(), "outputs left: {files:?}");
    assert!(!log.contains("panicked"), "{log}");

    // A partial that holds the chunk's 500 lines (all rejected) but a
    // status table no worker builds: refused by the merge, failing the run.
    let partial = LogsPartial {
        lines: 500,
        rejected: 500,
        rejected_samples: vec![1, 2, 3, 4, 5],
        status: vec![0; 5000],
        ..LogsPartial::default()
    };
    let (code, log, files) = run_with_partials(encode(&partial));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("chunk 0 (lines 1-500) failed on worker 1")
            && log.contains("a status table of 5000 entries"),
        "{log}"
    );
    assert!(files.is_empty(), "outputs left: {files:?}");
}

#[test]
fn a_record_count_its_chunk_cannot_hold_gets_the_worker_dropped() {
    use parpipe::workloads::logs::metrics::LogsPartial;
    // Chunks cut by bytes: the worker's count places every later chunk.
    // Each claims almost u64::MAX records, more than its bytes can hold.
    let partial = encode(&LogsPartial::default());
    let (code, log, files) = run_with_answers(partial, true, u64::MAX - 1);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("worker 1 (127.0.0.1:")
            && log.contains("chunk 0: wrong answer, dropping the worker")
            && log.contains("it counts 18446744073709551614 records in a chunk of")
            && log.contains("no workers"),
        "{log}"
    );
    assert!(files.is_empty(), "outputs left: {files:?}");
    assert!(!log.contains("panicked"), "{log}");
}
