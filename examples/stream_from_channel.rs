//! Feeding a long-lived pipeline from an async channel: a tokio task
//! produces access-log lines much faster than the `logs` pipeline parses
//! them and sends them into a bounded channel; the channel, as a stream,
//! is fed to the pipeline's handle in batches (a partial batch leaves after
//! 50 ms). The pipeline's credits reach the producer: when the pipeline is
//! full, `push` waits, the channel fills, and the producer's `send` waits
//! too, so memory stays bounded however many lines go through.
//!
//! Each batch is acknowledged as it is done: the pipeline emits, per batch
//! and in input order, how many lines it held and how many were rejected
//! ([`Pipeline::emit`](parpipe::Pipeline::emit)), and a second task reads
//! that stream while the producer goes on.
//!
//! Run: `cargo run --release --example stream_from_channel -- --lines 10000000`
//! Flags: `--lines N` (default 1 000 000), `--mode serial|pipeline|multiprocess`
//! (default pipeline; multiprocess workers are this binary). Prints the
//! summary on stdout, and on stderr how long the producer waited for room
//! and what the acknowledgements added up to.

use futures_util::{stream, StreamExt};
use parpipe::sources::LineBatch;
use parpipe::workloads::logs::{self, metrics::LogsPartial, Generator};
use parpipe::{Key, Mode, Registry, RunConfig, WorkerCommand};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Lines per batch pushed into the pipeline.
const BATCH: usize = 8192;

fn usage(message: &str) -> ExitCode {
    eprintln!("stream_from_channel: {message}");
    eprintln!("usage: stream_from_channel [--lines N] [--mode serial|pipeline|multiprocess]");
    ExitCode::from(2)
}

/// One batch's acknowledgement: its lines and how many were rejected.
type Ack = (u64, u64);

/// The pushed `logs` pipeline, emitting an [`Ack`] per batch: the counts
/// that batch added to the running totals (batches are folded in input
/// order, so the difference is exactly that batch's).
fn registry() -> (Registry, Key<(), LogsPartial>) {
    let mut registry = Registry::new();
    let key = registry.register("logs-acked", |(): ()| {
        let mut seen: Ack = (0, 0);
        Ok(logs::builder()
            .build_pushed()
            .emit(move |acc: &mut LogsPartial| {
                let ack = (acc.lines - seen.0, acc.rejected - seen.1);
                seen = (acc.lines, acc.rejected);
                vec![ack]
            }))
    });
    (registry, key)
}

#[tokio::main]
async fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);
    let mut lines: u64 = 1_000_000;
    let mut mode = Mode::Pipelined;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--lines" => match value.parse() {
                Ok(n) if n <= 1 << 40 => lines = n,
                _ => return usage("--lines must be a number of lines up to 2^40"),
            },
            "--mode" => {
                mode = match value.as_str() {
                    "serial" => Mode::Serial,
                    "pipeline" => Mode::Pipelined,
                    "multiprocess" => Mode::Multiprocess,
                    other => {
                        return usage(&format!("mode '{other}': serial, pipeline or multiprocess"))
                    }
                }
            }
            other => return usage(&format!("unknown flag '{other}'")),
        }
    }
    let config = RunConfig {
        mode,
        worker_command: WorkerCommand::current_exe().ok(),
        ..RunConfig::default()
    };
    let started = registry.start_with_outputs::<(), LineBatch, LogsPartial, LogsPartial, Ack>(
        &key,
        &(),
        &config,
    );
    let (run, mut acks) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("stream_from_channel: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The producer: generated lines, one message each, into a bounded channel.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4 * BATCH);
    let producer = tokio::spawn(async move {
        let mut generator = Generator::new(7, lines);
        let mut text = Vec::new();
        let (mut waited, started) = (Duration::ZERO, Instant::now());
        loop {
            text.clear();
            if generator.fill_text(&mut text, 1024) == 0 {
                break;
            }
            // The chunk ends with a line feed; empty lines are lines too.
            let body = text.strip_suffix(b"\n").unwrap_or(&text);
            for line in body.split(|&b| b == b'\n') {
                let t = Instant::now();
                if tx.send(line.to_vec()).await.is_err() {
                    return (waited, started.elapsed());
                }
                waited += t.elapsed();
            }
        }
        (waited, started.elapsed())
    });

    // The acknowledgements, read while lines still go in.
    let reader = tokio::spawn(async move {
        let (mut batches, mut acked, mut rejected) = (0u64, 0u64, 0u64);
        while let Some(per_batch) = acks.next().await {
            for (lines, bad) in per_batch {
                batches += 1;
                acked += lines;
                rejected += bad;
            }
        }
        (batches, acked, rejected)
    });

    let lines_in = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) });
    let fed = run
        .feed(lines_in, BATCH, Duration::from_millis(50), |lines| {
            let mut batch = LineBatch::new(0);
            for line in &lines {
                // Generated lines are far below the line limit.
                let _ = batch.push_line(line);
            }
            batch
        })
        .await;
    if let Err(e) = fed {
        eprintln!("stream_from_channel: {e}");
        return ExitCode::FAILURE;
    }
    let (waited, producing) = producer.await.unwrap_or_default();
    match run.finish().await {
        Ok(done) => {
            let (batches, acked, rejected) = reader.await.unwrap_or_default();
            print!("{}", done.result.summary().to_json());
            eprintln!(
                "acknowledged: {batches} batches, {acked} lines, {rejected} of them rejected"
            );
            eprintln!(
                "producer: {lines} lines in {:.2} s, waited {:.2} s for room ({:.0} %); \
                 pipeline wall {:.2} s",
                producing.as_secs_f64(),
                waited.as_secs_f64(),
                100.0 * waited.as_secs_f64() / producing.as_secs_f64().max(1e-9),
                done.report.wall_seconds,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stream_from_channel: {e}");
            ExitCode::FAILURE
        }
    }
}
