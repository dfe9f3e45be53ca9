//! Chunks given as file ranges (`ChunkInFiles`), against the real `parpipe
//! worker` binary and a scripted coordinator on a real socket: a worker
//! allowed to read the file's directory (`--allow-read`) reads the ranges
//! and answers with the partial of exactly those lines; a worker allowed
//! nothing refuses them and hangs up without touching the file; a path
//! outside the allowed directories, through a symbolic link or with `..`
//! is refused and logged, and so is a file whose size, modification time
//! or fingerprint differs, each answered `ChunkUnreadable` naming the file
//! and why (the coordinator then sends the bytes); bytes that are not the
//! records the header says fail the chunk; and an input that changes
//! during a real run fails it, naming the file and the chunk's lines.

mod common;

use common::bin;
use parpipe::file_range::{file_identity, fingerprint, FileRange};
use parpipe::protocol::{
    read_frame, server_handshake, write_frame, FrameCodec, Message, DEFAULT_MAX_FRAME, TOKEN_ENV,
};
use parpipe::sources::lines::input::InputSpec;
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

/// What a worker answered to one chunk.
#[derive(Debug)]
enum Answer {
    /// `ChunkDone`, its partial decoded.
    Done(Box<LogsPartial>),
    /// `ChunkFailed`, its error.
    Failed(String),
    /// `ChunkUnreadable`: the input it names and why.
    Unreadable { input: String, reason: String },
    /// It hung up first.
    HungUp,
}

/// What a worker started with `worker_args` sent back for one
/// `ChunkInFiles` naming all of `file` as `path` (the range then changed
/// by `edit`); its exit code and its log (stderr).
fn offer_file_chunk(
    file: &Path,
    path: &Path,
    worker_args: &[&str],
    edit: impl FnOnce(&mut FileRange),
) -> (Answer, Option<i32>, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut cmd = Command::new(bin());
        cmd.args(["worker", "--connect", &addr, "--threads", "1"])
            .args(worker_args)
            .env(TOKEN_ENV, TOKEN)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let worker = cmd.spawn().expect("start worker");
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
            max_batch_delay_ms: 200,
            format: Default::default(),
            max_rejected_ppm: 900_000,
            dimensions: Default::default(),
        };
        let spec = JobSpec::new(NAME, &params).unwrap();
        let job = Message::Job {
            spec,
            heartbeat_ms: 5_000,
            batch_size: 2,
            hold: false,
        };
        write_frame(&mut framed, job).await.unwrap();
        let (file_len, modified_nanos) = file_identity(file).unwrap();
        let mut range = FileRange {
            path: path.to_path_buf(),
            offset: 0,
            len: file_len,
            suffix: Vec::new(),
            file_len,
            modified_nanos,
            fingerprint: fingerprint(&std::fs::File::open(file).unwrap(), file_len).unwrap(),
        };
        edit(&mut range);
        let chunk = Message::ChunkInFiles {
            seq: 0,
            first_line: 1,
            records: 3,
            ranges: vec![range],
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
                        break Answer::Done(Box::new(p));
                    }
                    Ok(Some(Message::ChunkFailed { seq, error, .. })) => {
                        assert_eq!(seq, 0);
                        break Answer::Failed(error);
                    }
                    Ok(Some(Message::ChunkUnreadable { seq, input, reason })) => {
                        assert_eq!(seq, 0);
                        break Answer::Unreadable { input, reason };
                    }
                    Ok(Some(other)) => panic!("unexpected {other:?}"),
                    Ok(None) | Err(_) => break Answer::HungUp,
                }
            }
        })
        .await
        .expect("the worker neither answered nor hung up");
        if !matches!(answer, Answer::HungUp) {
            write_frame(&mut framed, Message::Shutdown).await.unwrap();
        }
        drop(framed);
        let out = tokio::task::spawn_blocking(move || worker.wait_with_output().unwrap())
            .await
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        (answer, out.status.code(), log)
    })
}

/// A folder with `secret.log` at its top and an empty `sub/` folder.
fn folder_with_a_subfolder() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(dir.path()).unwrap();
    let sub = top.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let secret = top.join("secret.log");
    std::fs::write(&secret, LINES).unwrap();
    (dir, secret, sub)
}

/// Asserts the worker answered `ChunkUnreadable` naming the file, with a
/// reason containing `why`, logged it, and still ended cleanly.
fn assert_refused(got: (Answer, Option<i32>, String), path: &Path, why: &str) {
    let (answer, code, log) = got;
    let Answer::Unreadable { input, reason } = answer else {
        panic!("expected ChunkUnreadable, got {answer:?}\n{log}");
    };
    assert!(reason.contains(why), "{reason}");
    assert_eq!(input, path.display().to_string(), "{reason}");
    assert!(log.contains(why), "the refusal is logged: {log}");
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_worker_allowed_only_a_subfolder_refuses_files_outside_it_through_links_or_dot_dot() {
    let (_dir, secret, sub) = folder_with_a_subfolder();
    let allow = ["--allow-read", sub.to_str().unwrap()];
    // Outside the allowed folder.
    let got = offer_file_chunk(&secret, &secret, &allow, |_| {});
    assert_refused(got, &secret, "outside the directories this worker may read");
    // A symbolic link inside it, pointing out of it.
    let link = sub.join("link.log");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let got = offer_file_chunk(&secret, &link, &allow, |_| {});
    assert_refused(got, &link, "through a symbolic link");
    // A path that starts inside it and climbs out with `..`.
    let climb = sub.join("..").join("secret.log");
    let got = offer_file_chunk(&secret, &climb, &allow, |_| {});
    assert_refused(got, &climb, "holds '..'");
    // A relative path.
    let relative = Path::new("secret.log");
    let got = offer_file_chunk(&secret, relative, &allow, |_| {});
    assert_refused(got, relative, "not an absolute path");
}

#[test]
fn a_file_whose_size_time_or_fingerprint_differs_fails_the_chunk_clearly() {
    let (_dir, secret, _sub) = folder_with_a_subfolder();
    let top = secret.parent().unwrap().to_str().unwrap().to_string();
    let allow = ["--allow-read", top.as_str()];
    let got = offer_file_chunk(&secret, &secret, &allow, |r| r.file_len += 1);
    assert_refused(got, &secret, "bytes, expected");
    let got = offer_file_chunk(&secret, &secret, &allow, |r| {
        r.modified_nanos += 1;
    });
    assert_refused(got, &secret, "modification time differs");
    let got = offer_file_chunk(&secret, &secret, &allow, |r| r.fingerprint ^= 1);
    assert_refused(got, &secret, "fingerprint (first and last 4 KiB) differs");
}

#[test]
fn a_worker_allowed_the_files_directory_reads_its_chunk_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.log");
    std::fs::write(&file, LINES).unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let (answer, code, log) = offer_file_chunk(&file, &file, &["--allow-read", dir_arg], |_| {});
    let Answer::Done(partial) = answer else {
        panic!("no ChunkDone: {answer:?}\n{log}");
    };
    assert_eq!((partial.lines, partial.parsed, partial.rejected), (3, 2, 1));
    assert_eq!(partial.rejected_samples, vec![2]);
    assert_eq!(partial.bytes, 2326 + 7);
    assert_eq!(code, Some(0));
}

#[test]
fn a_worker_allowed_no_directory_refuses_file_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.log");
    std::fs::write(&file, LINES).unwrap();
    let (answer, code, log) = offer_file_chunk(&file, &file, &[], |_| {});
    assert!(
        matches!(answer, Answer::HungUp),
        "the worker read a file it was not entitled to: {answer:?}\n{log}"
    );
    assert!(log.contains("unexpected ChunkInFiles"), "{log}");
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

#[test]
fn a_range_that_cuts_a_line_or_holds_other_lines_than_its_header_fails_the_chunk() {
    let (_dir, secret, _sub) = folder_with_a_subfolder();
    let top = secret.parent().unwrap().to_str().unwrap().to_string();
    let allow = ["--allow-read", top.as_str()];
    // The worker decodes the range block by block as it reads it: a range
    // that stops inside the last line is refused, not cut short silently.
    let (answer, code, log) = offer_file_chunk(&secret, &secret, &allow, |r| r.len -= 3);
    let Answer::Failed(error) = answer else {
        panic!("expected ChunkFailed, got {answer:?}\n{log}");
    };
    assert!(error.contains("ends inside a record"), "{error}");
    assert_eq!(code, Some(0), "{log}");
    // Two whole lines where the header says three.
    let two_lines = LINES.iter().position(|&b| b == b'\n').unwrap() + "not a log line\n".len() + 1;
    let (answer, _, log) = offer_file_chunk(&secret, &secret, &allow, |r| r.len = two_lines as u64);
    let Answer::Failed(error) = answer else {
        panic!("expected ChunkFailed, got {answer:?}\n{log}");
    };
    assert!(
        error.contains("holds 2 records where its header says 3"),
        "{error}"
    );
}
