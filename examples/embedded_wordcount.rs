//! An outside application using multiprocess mode with its own pipeline.
//!
//! It defines its own source, stage, aggregate and sink (a word count over
//! generated sentences), registers the pipeline under its own name, and runs
//! it with worker processes that are *this example binary itself*: when
//! started as `embedded_wordcount worker --connect ADDR …`, the first line
//! of `main` (`parpipe::worker::dispatch_if_worker`) serves the job with the
//! same registry. The pipeline has no sink: `Registry::run` gives the
//! counts back, typed, through the key `register` returned.
//!
//! Run: `cargo run --release --example embedded_wordcount -- 200000 3`
//! (sentences, worker processes, and optionally the mode: `multiprocess`
//! by default, or `serial` / `pipeline` to compare).
//!
//! `--fail-at N` (anywhere among the arguments) makes the tokenize stage
//! fail on the batch holding sentence `N` (1-based), to see how a chunk
//! that fails because of its data fails the run in each mode: the value
//! travels in the job's [`Params`], so the worker processes see it too.

use parpipe::WorkerCommand;
use parpipe::{
    Aggregate, BatchInfo, Key, Mode, Pipeline, Registry, RunConfig, Source, Stage, StageError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::process::ExitCode;

const WORDS: &[&str] = &[
    "actor", "pipeline", "chunk", "worker", "socket", "frame", "token", "merge", "stage", "batch",
    "rust", "tokio",
];

/// The job's parameters: they cross the wire to the workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Params {
    sentences: u64,
    /// Fail the batch holding this sentence (1-based), if any.
    #[serde(default)]
    fail_at: Option<u64>,
}

/// Makes sentences deterministically (no I/O at construction).
struct Sentences {
    next: u64,
    total: u64,
}

impl Source for Sentences {
    type Out = Vec<String>;

    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<String>>, StageError> {
        let end = self.total.min(self.next + max as u64);
        let batch: Vec<String> = (self.next..end)
            .map(|i| {
                let n = 3 + (i % 5) as usize;
                (0..n)
                    .map(|k| WORDS[((i * 7 + k as u64 * 13) % WORDS.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        self.next = end;
        Ok((!batch.is_empty()).then_some(batch))
    }
}

/// Splits sentences into upper-cased words; fails on the batch holding
/// sentence `fail_at`, when set.
#[derive(Clone)]
struct Tokenize {
    fail_at: Option<u64>,
}

impl Stage for Tokenize {
    type In = Vec<String>;
    type Out = Vec<String>;

    fn process(&mut self, input: Vec<String>, info: &BatchInfo) -> Result<Vec<String>, StageError> {
        if let Some(line) = self.fail_at {
            let last = info.first_line + input.len() as u64;
            if (info.first_line..last).contains(&line) {
                return Err(StageError::new(format!(
                    "sentence {line} is poisoned (--fail-at)"
                )));
            }
        }
        Ok(input
            .iter()
            .flat_map(|s| s.split(' ').map(str::to_uppercase))
            .collect())
    }
}

/// Counts words; partials merge by adding counts.
#[derive(Clone)]
struct Count;

impl Aggregate for Count {
    type In = Vec<String>;
    type Partial = BTreeMap<String, u64>;

    fn empty(&self) -> Self::Partial {
        BTreeMap::new()
    }

    fn add(
        &mut self,
        acc: &mut Self::Partial,
        input: Vec<String>,
        _: &BatchInfo,
    ) -> Result<(), StageError> {
        for w in input {
            *acc.entry(w).or_insert(0) += 1;
        }
        Ok(())
    }

    fn merge(&self, acc: &mut Self::Partial, later: Self::Partial) {
        for (w, n) in later {
            *acc.entry(w).or_insert(0) += n;
        }
    }
}

/// The registry: workers (this binary, started with `worker`) rebuild the
/// pipeline from it; the key names it, typed, for the coordinator.
fn registry() -> (Registry, Key<Params, BTreeMap<String, u64>>) {
    let mut r = Registry::new();
    let key = r.register("wordcount", |p: Params| {
        Ok(Pipeline::builder(
            "wordcount",
            "sentences",
            Sentences {
                next: 0,
                total: p.sentences,
            },
        )
        .stage("tokenize", Tokenize { fail_at: p.fail_at })
        // No sink: the run gives the counts back to `main`.
        .collect("count", Count))
    });
    (r, key)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    // Started by the coordinator as a worker: serve the job and exit.
    parpipe::worker::dispatch_if_worker(&registry);
    // Optional: reuse batch-sized buffers instead of refaulting them.
    parpipe::allocator::tune_for_batches();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--fail-at N`, then the positional arguments.
    let mut fail_at = None;
    if let Some(i) = args.iter().position(|a| a == "--fail-at") {
        match args.get(i + 1).and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => fail_at = Some(n),
            None => {
                eprintln!("--fail-at needs a sentence number");
                return ExitCode::from(2);
            }
        }
        args.drain(i..i + 2);
    }
    let sentences = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let workers = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let mode = match args.get(2).map(String::as_str) {
        None | Some("multiprocess") => Mode::Multiprocess,
        Some("pipeline") => Mode::Pipelined,
        Some("serial") => Mode::Serial,
        Some(other) => {
            eprintln!("unknown mode '{other}' (expected serial, pipeline or multiprocess)");
            return ExitCode::from(2);
        }
    };
    let config = RunConfig {
        mode,
        workers: Some(workers),
        batch_size: 10_000,
        // This very binary, with `worker` first: the default, spelled out.
        worker_command: WorkerCommand::current_exe().ok(),
        ..RunConfig::default()
    };
    match registry.run(&key, &Params { sentences, fail_at }, &config) {
        Ok(done) => {
            for (word, n) in &done.result {
                println!("{word:<10} {n}");
            }
            eprint!("{}", done.report.to_table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            if let (Some(stage), Some(batch)) = (e.stage(), e.batch()) {
                eprintln!(
                    "kind {:?}, stage '{stage}', first line {}, worker {}",
                    e.kind(),
                    batch.first_line,
                    e.worker().unwrap_or("-")
                );
            }
            ExitCode::FAILURE
        }
    }
}
