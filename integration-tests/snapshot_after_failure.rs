//! `RunHandle::snapshot()` after the run failed — a stage error or a stage
//! panic — returns the run's error at once, as `finish()` does, in every
//! mode. A program of its own (no test harness): multiprocess workers are
//! this same program, started as `PROGRAM worker --connect …`, as in an
//! embedding application.
//!
//! A snapshot that hangs is caught by a generous bound (20 s) on each
//! call; the assertion is the error it returns, not how fast.

use parpipe::{
    Aggregate, BatchInfo, Key, Mode, Pipeline, PushError, Registry, RunConfig, Stage, StageError,
    WorkerCommand,
};
use std::process::ExitCode;
use std::time::Duration;

/// Fails on a batch holding 7; panics on one holding 13.
#[derive(Clone)]
struct Trap;

impl Stage for Trap {
    type In = Vec<u64>;
    type Out = Vec<u64>;
    fn process(&mut self, b: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        if b.contains(&7) {
            return Err(StageError::new("7 is refused"));
        }
        if b.contains(&13) {
            panic!("13 is unlucky");
        }
        Ok(b)
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

fn registry() -> (Registry, Key<(), u64>) {
    let mut registry = Registry::new();
    let key = registry.register("trap", |(): ()| {
        Ok(Pipeline::input::<Vec<u64>>("trap", "pushed")
            .stage("trap", Trap)
            .collect("sum", Sum))
    });
    (registry, key)
}

/// Bounds one call that must not hang.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .map_err(|_| format!("{what} still had no answer after 20 s"))
}

/// Starts the pipeline in `mode`, makes it fail with `bad`, waits until
/// pushes say so, then asks for a snapshot.
async fn scenario(
    registry: &Registry,
    key: &Key<(), u64>,
    mode: Mode,
    bad: u64,
) -> Result<(), String> {
    let config = RunConfig {
        mode,
        workers: Some(1),
        worker_command: Some(WorkerCommand::current_exe().map_err(|e| e.to_string())?),
        ..RunConfig::default()
    };
    let run = registry
        .start::<(), Vec<u64>, u64, u64>(key, &(), &config)
        .map_err(|e| format!("start: {e}"))?;
    run.push(vec![1, 2])
        .await
        .map_err(|e| format!("first push: {e}"))?;
    let snap = bounded("a snapshot before the failure", run.snapshot()).await?;
    if !matches!(snap, Ok(3)) {
        return Err(format!("the snapshot before the failure was {snap:?}"));
    }
    let _ = run.push(vec![bad]).await;
    // The run has failed once a push says so (a push waits for room, so
    // this also awaits the failure rather than sleeping).
    let pushed = bounded("the pushes after the failure", async {
        loop {
            match run.push(vec![1]).await {
                Ok(()) => tokio::task::yield_now().await,
                Err(e) => break e,
            }
        }
    })
    .await?;
    let PushError::Failed(_, pushed) = pushed else {
        return Err(format!("a push after the failure said: {pushed}"));
    };
    for attempt in 0..3 {
        let error = match bounded("a snapshot after the failure", run.snapshot()).await? {
            Ok(v) => return Err(format!("a snapshot after the failure gave {v}")),
            Err(e) => e,
        };
        if error.kind() != pushed.kind() || error.to_string() != pushed.to_string() {
            return Err(format!(
                "snapshot {attempt} said '{error}' ({:?}), the push '{pushed}' ({:?})",
                error.kind(),
                pushed.kind()
            ));
        }
    }
    let finished = bounded("finish", run.finish()).await?;
    match finished {
        Ok(f) => Err(format!("finish gave {}", f.result)),
        Err(e) if e.to_string() == pushed.to_string() => Ok(()),
        Err(e) => Err(format!("finish said '{e}', the push '{pushed}'")),
    }
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut failed = 0;
    for mode in [Mode::Serial, Mode::Pipelined, Mode::Multiprocess] {
        for (bad, what) in [(7, "a stage error"), (13, "a stage panic")] {
            let outcome = runtime.block_on(scenario(&registry, &key, mode, bad));
            match outcome {
                Ok(()) => println!("{mode:?}, after {what}: snapshot() returned the run's error"),
                Err(e) => {
                    failed += 1;
                    println!("FAILED {mode:?}, after {what}: {e}");
                }
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
