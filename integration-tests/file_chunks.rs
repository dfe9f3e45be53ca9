//! Chunks given as file ranges (`ChunkInFiles`), against the real `parpipe
//! worker` binary and a scripted coordinator on a real socket: a worker
//! marked as local by its coordinator reads the ranges and answers with the
//! partial of exactly those lines; a worker started by anyone else refuses
//! them and hangs up without touching the file; and an input that changes
//! during a real run fails it, naming the file and the chunk's lines.

mod common;

use common::bin;
use parpipe::file_range::{file_identity, FileRange};
use parpipe::protocol::{
    read_frame, server_handshake, write_frame, FrameCodec, Message, DEFAULT_MAX_FRAME,
    LOCAL_WORKER_ENV, TOKEN_ENV,
};
use parpipe::workloads::logs::input::InputSpec;
use parpipe::workloads::logs::metrics::LogsPartial;
use parpipe::workloads::logs::{LogsInput, LogsParams, NAME};
use parpipe::JobSpec;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_util::codec::Framed;

const TOKEN: &str = "file-chunks-test-token";
const TIMEOUT: Duration = Duration::from_secs(30);

const LINES: &[u8] = b"\
10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.0\" 200 2326\n\
not a log line\n\
10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] \"GET /b HTTP/1.0\" 404 7\n";

/// What a worker sent back for one `ChunkInFiles` naming all of `file`:
/// the decoded partial, or `None` if it hung up first; and its exit code.
fn offer_file_chunk(file: &Path, local: bool) -> (Option<LogsPartial>, Option<i32>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut cmd = Command::new(bin());
        cmd.args(["worker", "--connect", &addr])
            .env(TOKEN_ENV, TOKEN)
            .env_remove(LOCAL_WORKER_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if local {
            cmd.env(LOCAL_WORKER_ENV, "1");
        }
        let mut worker = cmd.spawn().expect("start worker");
        let (stream, _) = tokio::time::timeout(TIMEOUT, listener.accept())
            .await
            .expect("the worker never connected")
            .unwrap();
        let mut framed = Framed::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME));
        server_handshake(&mut framed, TOKEN.as_bytes())
            .await
            .unwrap();
        let params = LogsParams {
            input: LogsInput::Files(vec![InputSpec::File(file.to_path_buf())]),
            out_dir: file.with_extension("out"),
            emit_records: false,
            snapshot: None,
        };
        let spec = JobSpec::new(NAME, &params).unwrap();
        let job = Message::Job {
            spec,
            heartbeat_ms: 5_000,
            batch_size: 2,
        };
        write_frame(&mut framed, job).await.unwrap();
        let (file_len, modified_nanos) = file_identity(file).unwrap();
        let chunk = Message::ChunkInFiles {
            seq: 0,
            first_line: 1,
            records: 3,
            ranges: vec![FileRange {
                path: file.to_path_buf(),
                offset: 0,
                len: file_len,
                suffix: Vec::new(),
                file_len,
                modified_nanos,
            }],
        };
        write_frame(&mut framed, chunk).await.unwrap();
        let answer = tokio::time::timeout(TIMEOUT, async {
            loop {
                match read_frame(&mut framed).await {
                    Ok(Some(Message::Heartbeat)) => continue,
                    Ok(Some(Message::ChunkDone { seq, partial, .. })) => {
                        assert_eq!(seq, 0);
                        let config = bincode::config::standard();
                        let (p, _): (LogsPartial, usize) =
                            bincode::serde::decode_from_slice(&partial, config).unwrap();
                        break Some(p);
                    }
                    Ok(Some(other)) => panic!("unexpected {other:?}"),
                    Ok(None) | Err(_) => break None,
                }
            }
        })
        .await
        .expect("the worker neither answered nor hung up");
        if answer.is_some() {
            write_frame(&mut framed, Message::Shutdown).await.unwrap();
        }
        drop(framed);
        let code = tokio::task::spawn_blocking(move || worker.wait().unwrap().code())
            .await
            .unwrap();
        (answer, code)
    })
}

#[test]
fn a_local_worker_reads_its_chunk_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.log");
    std::fs::write(&file, LINES).unwrap();
    let (partial, code) = offer_file_chunk(&file, true);
    let partial = partial.expect("no ChunkDone");
    assert_eq!((partial.lines, partial.parsed, partial.rejected), (3, 2, 1));
    assert_eq!(partial.rejected_samples, vec![2]);
    assert_eq!(partial.bytes, 2326 + 7);
    assert_eq!(code, Some(0));
}

#[test]
fn a_worker_not_started_by_its_coordinator_refuses_file_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.log");
    std::fs::write(&file, LINES).unwrap();
    let (partial, code) = offer_file_chunk(&file, false);
    assert!(
        partial.is_none(),
        "the worker read a file it was not entitled to"
    );
    assert_ne!(code, Some(0), "the worker should end with an error");
}

#[test]
fn an_input_changed_during_the_run_fails_it_clearly_and_leaves_no_output() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("growing.log");
    let out = dir.path().join("out");
    let mut file = std::fs::File::create(&input).unwrap();
    for _ in 0..50_000 {
        file.write_all(LINES).unwrap();
    }
    drop(file);
    let args = [
        "run",
        "--mode",
        "multiprocess",
        "--workers",
        "1",
        "--batch-size",
        "500",
        "--inflight",
        "1",
        "-v",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = Command::new(bin())
        .args(args)
        .env_remove(TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coordinator");
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Once chunks go out as file ranges (300 of them, one at a time), the
    // input grows: the next chunk a worker reads no longer matches.
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("as file ranges") {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&input)
                .unwrap();
            f.write_all(LINES).unwrap();
            break;
        }
    }
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("the file changed during the run"), "{log}");
    assert!(log.contains(&input.display().to_string()), "{log}");
    assert!(
        log.contains("(lines "),
        "the failing chunk's lines are named: {log}"
    );
    assert!(!out.join("summary.json").exists(), "{log}");
}
