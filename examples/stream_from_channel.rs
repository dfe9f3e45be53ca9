//! Feeding a long-lived pipeline from an async channel: a tokio task
//! produces access-log lines much faster than the `logs` pipeline parses
//! them and sends them into a bounded channel; the channel, as a stream,
//! is fed to the pipeline's handle in batches (a partial batch leaves after
//! 50 ms). The pipeline's credits reach the producer: when the pipeline is
//! full, `push` waits, the channel fills, and the producer's `send` waits
//! too, so memory stays bounded however many lines go through.
//!
//! Run: `cargo run --release --example stream_from_channel -- --lines 10000000`
//! Flags: `--lines N` (default 1 000 000), `--mode serial|pipeline`
//! (default pipeline). Prints the summary on stdout, and on stderr how long
//! the producer waited for room.

use futures_util::stream;
use parpipe::workloads::logs::{self, batch::LineBatch, generate::Generator};
use parpipe::{Mode, RunConfig};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Lines per batch pushed into the pipeline.
const BATCH: usize = 8192;

fn usage(message: &str) -> ExitCode {
    eprintln!("stream_from_channel: {message}");
    eprintln!("usage: stream_from_channel [--lines N] [--mode serial|pipeline]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut lines: u64 = 1_000_000;
    let mut mode = Mode::Pipeline;
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
                    "pipeline" => Mode::Pipeline,
                    other => return usage(&format!("mode '{other}': serial or pipeline")),
                }
            }
            other => return usage(&format!("unknown flag '{other}'")),
        }
    }
    let config = RunConfig {
        mode,
        ..RunConfig::default()
    };
    let run = match logs::builder()
        .build_pushed()
        .start::<LineBatch, logs::metrics::LogsPartial>(&config)
    {
        Ok(run) => run,
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
            print!("{}", done.result.summary().to_json());
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
