//! The same program under three kinds of `main`: plain, `#[tokio::main]`
//! and `#[actix_web::main]` (built here by hand, as those macros do, so one
//! binary shows all three). Under each it dispatches workers, runs a
//! pipeline to completion in serial, pipeline and multiprocess mode, and
//! pushes into a long-lived handle, printing what each gave back.
//!
//! Run: `cargo run --example any_runtime -- --main tokio` (or `plain`,
//! `actix`). Workers are this binary; they inherit `ANY_RUNTIME_MAIN`, so
//! they dispatch from the same kind of `main`.

use parpipe::{
    Aggregate, BatchInfo, Key, Mode, Pipeline, Registry, RunConfig, Source, StageError,
    WorkerCommand,
};
use std::process::ExitCode;

struct Numbers(std::ops::Range<u64>);

impl Source for Numbers {
    type Out = Vec<u64>;
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
        let batch: Vec<u64> = self.0.by_ref().take(max).collect();
        Ok((!batch.is_empty()).then_some(batch))
    }
}

#[derive(Clone)]
struct Sum;

impl Aggregate for Sum {
    type In = Vec<u64>;
    type Partial = u64;
    fn empty(&self) -> u64 {
        0
    }
    fn add(&mut self, acc: &mut u64, b: Vec<u64>, _: &BatchInfo) -> Result<(), StageError> {
        *acc += b.iter().sum::<u64>();
        Ok(())
    }
    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
}

fn registry() -> (Registry, Key<u64, u64>, Key<(), u64>) {
    let mut r = Registry::new();
    let pulled = r.register("sum", |n: u64| {
        Ok(Pipeline::builder("sum", "numbers", Numbers(1..n + 1)).collect("sum", Sum))
    });
    let pushed = r.register("sum-pushed", |(): ()| {
        Ok(Pipeline::input::<Vec<u64>>("sum-pushed", "pushed").collect("sum", Sum))
    });
    (r, pulled, pushed)
}

fn config(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        batch_size: 1000,
        workers: Some(2),
        worker_command: WorkerCommand::current_exe().ok(),
        ..RunConfig::default()
    }
}

/// Everything, from async code on whatever runtime this is.
async fn work(main: &str) -> Result<(), parpipe::Error> {
    let (registry, pulled, pushed) = registry();
    parpipe::worker::dispatch_if_worker(&registry);
    for mode in [Mode::Serial, Mode::Pipelined, Mode::Multiprocess] {
        let c = config(mode);
        let run = registry.run(&pulled, &100_000, &c)?.result;
        let execute = registry.execute(&pulled, &100_000, &c).await?.result;
        let handle = registry.start::<(), Vec<u64>, u64, u64>(&pushed, &(), &c)?;
        for i in 0..100u64 {
            handle
                .push((i * 1000 + 1..=(i + 1) * 1000).collect())
                .await
                .map_err(|e| parpipe::Error::config(format!("push: {e}")))?;
        }
        let snapshot = handle.snapshot().await?;
        let finished = handle.finish().await?.result;
        println!(
            "{main:>5} main, {:>12}: run {run}, execute {execute}, push snapshot {snapshot}, finish {finished}",
            mode.as_str()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let main = std::env::args()
        .skip_while(|a| a != "--main")
        .nth(1)
        .or_else(|| std::env::var("ANY_RUNTIME_MAIN").ok())
        .unwrap_or_else(|| "plain".into());
    // Workers started by the coordinator get the same kind of main.
    std::env::set_var("ANY_RUNTIME_MAIN", &main);
    let result = match main.as_str() {
        // A plain main: no runtime; `run` blocks, async calls get one of their own.
        "plain" => {
            let (registry, ..) = registry();
            parpipe::worker::dispatch_if_worker(&registry);
            plain_main(&main)
        }
        // What #[tokio::main] expands to.
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| parpipe::Error::config(e.to_string()))
            .and_then(|rt| rt.block_on(work(&main))),
        // What #[actix_web::main] expands to.
        "actix" => actix_web::rt::System::new().block_on(work(&main)),
        other => {
            eprintln!("any_runtime: --main plain|tokio|actix, not '{other}'");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("any_runtime ({main}): {e}");
            ExitCode::FAILURE
        }
    }
}

/// A plain main: blocking calls first, then the async ones (the handle
/// needs async code) on a current-thread runtime that is not an actix System.
fn plain_main(main: &str) -> Result<(), parpipe::Error> {
    let (registry, pulled, _) = registry();
    for mode in [Mode::Serial, Mode::Pipelined, Mode::Multiprocess] {
        let run = registry.run(&pulled, &100_000, &config(mode))?.result;
        println!("{main:>5} main, {:>12}: run {run}", mode.as_str());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| parpipe::Error::config(e.to_string()))?;
    rt.block_on(work(main))
}
