//! Pushing through the handle against `run` on the same input: the `logs`
//! pipeline over the same generated lines, once pulled from its own
//! source (`build_collect` + `run`), once pushed batch by batch from the
//! caller (`build_pushed` + `start` + `push`), interleaved round by round so
//! that both see the same machine. Prints each round and the median ratio.
//!
//! Run: `cargo bench --bench push_vs_run -- [LINES] [ROUNDS] [MODE]`.

use parpipe::sources::{BatchPool, LineBatch};
use parpipe::workloads::logs::{self, Generator, LogsInput};
use parpipe::{Mode, RunConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let lines: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let mode = match args.get(2).map(String::as_str) {
        Some("serial") => Mode::Serial,
        _ => Mode::Pipelined,
    };
    let config = RunConfig {
        mode,
        ..RunConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut pulls, mut pushes) = (Vec::new(), Vec::new());
    let mut summaries = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        let done = logs::builder()
            .build_collect(LogsInput::Generate {
                records: lines,
                seed: 42,
            })
            .run(&config)
            .expect("run");
        let pulled = t.elapsed().as_secs_f64();
        summaries.push(done.result.summary().to_json());

        let t = Instant::now();
        let pushed_result = rt.block_on(async {
            // Batches come from the pool `metrics` gives their buffers back to.
            let pool = BatchPool::new();
            let run = logs::builder()
                .with_pool(pool.clone())
                .build_pushed()
                .start::<LineBatch, logs::metrics::LogsPartial>(&config)
                .expect("start");
            let mut generator = Generator::new(42, lines);
            loop {
                let mut batch = pool.batch(0);
                if generator.fill(&mut batch, config.batch_size) == 0 {
                    break;
                }
                run.push(batch).await.expect("push");
            }
            run.finish().await.expect("finish")
        });
        let pushed = t.elapsed().as_secs_f64();
        summaries.push(pushed_result.result.summary().to_json());
        println!(
            "round {round}: run {pulled:.3} s, push {pushed:.3} s ({:.0} vs {:.0} lines/s)",
            lines as f64 / pulled,
            lines as f64 / pushed
        );
        pulls.push(pulled);
        pushes.push(pushed);
    }
    assert!(
        summaries.windows(2).all(|w| w[0] == w[1]),
        "push and run gave different summaries"
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Ratios taken within a round (both runs saw the same machine), then
    // their median: what this noisy machine lets us quote.
    let mut ratios: Vec<f64> = pulls.iter().zip(&pushes).map(|(p, q)| p / q).collect();
    let ratio = median(&mut ratios);
    let (p, q) = (median(&mut pulls), median(&mut pushes));
    println!(
        "{} mode, {lines} lines, median of {rounds}: run {p:.3} s, push {q:.3} s; \
         push throughput = {ratio:.2} x run (median of per-round ratios, {:.2} to {:.2})",
        mode.as_str(),
        ratios[0],
        ratios[ratios.len() - 1],
    );
}
