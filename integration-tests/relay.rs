//! An on-path relay without the token, between a real `parpipe worker`
//! and a real coordinator: it passes the handshake through untouched,
//! then tampers with the worker's first `ChunkDone` frame — one byte of
//! its body flipped, the frame replayed, dropped, or swapped with the next
//! frame. Each time the coordinator must drop that connection with a
//! logged reason naming the relay's address and the frame, re-queue the
//! worker's chunks, and finish with an honest worker: `summary.json`
//! byte-identical to serial mode's. Without the per-frame MAC the flipped
//! partial was merged (a wrong total, exit 0).

mod common;

use common::process::{Log, Reaped};
use common::{bin, s};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(90);
const TOKEN: &str = "relay-test-token";
/// `Message::ChunkDone`'s variant index: the first byte of its body.
const CHUNK_DONE: u8 = 5;

/// What the relay does to the worker's first `ChunkDone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Flips one bit in the middle of its body (inside the partial).
    Flip,
    /// Passes it on, then sends it again.
    Replay,
    /// Never passes it on.
    Drop,
    /// Holds it back and passes it on after the worker's next frame.
    Reorder,
}

/// Reads one frame (length field and the rest), or `None` at a clean end.
async fn read_frame(from: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.ok()?;
    let mut frame = len.to_vec();
    frame.resize(4 + u32::from_be_bytes(len) as usize, 0);
    from.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

/// Relays one connection from `listener` to `upstream`: the coordinator's
/// bytes as they come, the worker's frame by frame, applying `attack` to
/// its first `ChunkDone`. Sends the relay's own address toward the
/// coordinator on `ready` once connected, and on `attacked`, once the
/// attack is done, the number the coordinator gives the attacked frame
/// (the worker's frames after its `Hello` and `Proof`, from 0).
async fn relay(
    listener: TcpListener,
    upstream: String,
    attack: Attack,
    ready: oneshot::Sender<String>,
    attacked: oneshot::Sender<u64>,
) {
    let (worker, _) = listener.accept().await.unwrap();
    let coordinator = TcpStream::connect(&upstream).await.unwrap();
    let _ = ready.send(coordinator.local_addr().unwrap().to_string());
    let (mut wr, mut ww) = worker.into_split();
    let (mut cr, mut cw) = coordinator.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut ww).await;
        let _ = ww.shutdown().await;
    });
    let mut attacked = Some(attacked);
    let mut held: Option<Vec<u8>> = None;
    // Frames read from the worker so far (its Hello and Proof first).
    let mut read = 0u64;
    let mut target = None;
    while let Some(mut frame) = read_frame(&mut wr).await {
        let number = read.saturating_sub(2);
        read += 1;
        let first_done = target.is_none() && frame.get(4) == Some(&CHUNK_DONE);
        if first_done {
            target = Some(number);
        }
        let (out, finished) = match (first_done, attack) {
            (true, Attack::Flip) => {
                let mid = 4 + (frame.len() - 4) / 2;
                frame[mid] ^= 0x01;
                (vec![frame], true)
            }
            (true, Attack::Replay) => (vec![frame.clone(), frame], true),
            (true, Attack::Drop) => (vec![], true),
            (true, Attack::Reorder) => {
                held = Some(frame);
                continue;
            }
            (false, _) => match held.take() {
                Some(first) => (vec![frame, first], true),
                None => (vec![frame], false),
            },
        };
        for f in &out {
            if cw.write_all(f).await.is_err() {
                break;
            }
        }
        if finished {
            if let (Some(tx), Some(n)) = (attacked.take(), target) {
                let _ = tx.send(n);
            }
        }
    }
    let _ = cw.shutdown().await;
    let _ = down.await;
}

fn worker(connect: &str, token: &Path) -> Reaped {
    Reaped(
        Command::new(bin())
            .args(["worker", "--connect", connect, "--token-file", s(token)])
            .args(["--threads", "1", "--connect-timeout", "30"])
            .env_remove("PARPIPE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Serial mode's `summary.json` for the input of these runs.
fn serial_summary(dir: &Path) -> Vec<u8> {
    let out = dir.join("serial");
    common::expect_ok(&[
        "run",
        "--mode",
        "serial",
        "--records",
        "60000",
        "--seed",
        "5",
        "--out",
        s(&out),
        "-q",
    ]);
    std::fs::read(out.join("summary.json")).unwrap()
}

/// One run under `attack`: the coordinator's line that dropped the
/// relayed connection, and the number of the frame attacked.
fn attacked_run(attack: Attack) -> (String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let token: PathBuf = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let out = dir.path().join("mp");
    // No local workers: the relayed worker is alone until the attack, so
    // it gets chunks and answers them.
    let mut child = Command::new(bin())
        .args(["run", "--mode", "multiprocess", "--workers", "0"])
        .args(["--listen", "127.0.0.1:0", "--token-file", s(&token)])
        .args(["--records", "60000", "--seed", "5", "--batch-size", "2000"])
        .args(["--worker-wait-timeout", "60", "--out", s(&out)])
        .env_remove("PARPIPE_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::collect(&mut child);
    let mut coordinator = Reaped(child);
    let line = log.wait_for(|l| l.starts_with("parpipe: listening on "));
    let addr = line["parpipe: listening on ".len()..].trim().to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let relay_addr = listener.local_addr().unwrap().to_string();
    let (ready_tx, ready) = oneshot::channel();
    let (attacked_tx, attacked) = oneshot::channel();
    runtime.spawn(relay(listener, addr.clone(), attack, ready_tx, attacked_tx));
    let _relayed = worker(&relay_addr, &token);
    let relay_peer = runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, ready)
            .await
            .expect("the worker never reached the relay")
            .unwrap()
    });
    let target = runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, attacked)
            .await
            .unwrap_or_else(|_| panic!("{attack:?}: no ChunkDone went through the relay"))
            .unwrap()
    });
    let dropped = log.wait_for(|l| l.contains("dropping worker connection"));
    // Now an honest worker takes the re-queued chunks and the rest.
    let _honest = worker(&addr, &token);
    let code = coordinator.wait();
    let text = log.text();
    assert_eq!(code, Some(0), "{attack:?}: coordinator log:\n{text}");
    let got = std::fs::read(out.join("summary.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&serial_summary(dir.path())),
        "{attack:?}: the summary differs from serial mode's; log:\n{text}"
    );
    assert!(
        dropped.contains(&relay_peer),
        "{attack:?}: the line does not name the relayed peer {relay_peer}: {dropped}"
    );
    runtime.shutdown_background();
    (dropped, target)
}

/// The coordinator refused frame `frame` for its MAC.
fn assert_integrity(line: &str, frame: u64) {
    assert!(
        line.contains(&format!(
            "frame {frame} after the handshake failed its integrity check"
        )),
        "not an integrity failure of frame {frame}: {line}"
    );
    eprintln!("coordinator: {line}");
}

#[test]
fn a_flipped_byte_in_a_partial_is_refused() {
    let (line, target) = attacked_run(Attack::Flip);
    assert_integrity(&line, target);
}

#[test]
fn a_replayed_partial_is_refused() {
    // The copy arrives as the next frame.
    let (line, target) = attacked_run(Attack::Replay);
    assert_integrity(&line, target + 1);
}

#[test]
fn a_dropped_partial_is_noticed_at_the_next_frame() {
    let (line, target) = attacked_run(Attack::Drop);
    assert_integrity(&line, target);
}

#[test]
fn reordered_frames_are_refused() {
    let (line, target) = attacked_run(Attack::Reorder);
    assert_integrity(&line, target);
}
