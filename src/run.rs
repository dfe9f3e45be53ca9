//! Running a pipeline to completion and getting its result back: the
//! typed entry points ([`Pipeline::run`], [`Pipeline::execute`],
//! [`Registry::run`], [`Registry::execute`]), [`Finished`], and the
//! runtime plumbing that lets them be called from an actix `System`, from
//! another async runtime or from a plain thread without panicking.

use crate::error::{Error, RunError};
use crate::metrics::RunReport;
use crate::mode::{execute_pipeline, RunConfig};
use crate::pipeline::{AnyData, Key, Pipeline, Registry};
use serde::Serialize;
use std::future::Future;

/// What a finished run gives back: the sink's output (the aggregate's
/// result for a pipeline built with
/// [`collect`](crate::PipelineBuilder::collect)) and the run's report.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished<O> {
    /// The sink's output.
    pub result: O,
    /// Per-stage counters and timings of the run.
    pub report: RunReport,
}

impl<O> Finished<O> {
    /// The output, without the report.
    pub fn into_result(self) -> O {
        self.result
    }
}

/// Turns an erased output into `O` (the key or the builder says what it is).
fn typed<O: 'static>(finished: Finished<AnyData>) -> Result<Finished<O>, Error> {
    match finished.result.downcast::<O>() {
        Ok(result) => Ok(Finished {
            result: *result,
            report: finished.report,
        }),
        Err(_) => Err(RunError::Runtime(format!(
            "the pipeline's output is not a {}",
            std::any::type_name::<O>()
        ))
        .into()),
    }
}

impl<O: Send + 'static> Pipeline<O> {
    /// Runs the pipeline to completion in `config.mode` (serial or
    /// pipeline: multiprocess workers rebuild a pipeline by name, so it
    /// runs through a [`Registry`] key) and gives back its output.
    ///
    /// On the caller's actix `System` when there is one; from any other
    /// async runtime it runs on a `System` thread of its own.
    pub async fn execute(self, config: &RunConfig) -> Result<Finished<O>, Error> {
        let config = config.clone();
        let pipeline = self.erase();
        let finished =
            on_system(move || async move { Ok(execute_pipeline(pipeline, None, &config).await?) })
                .await?;
        typed(finished)
    }

    /// [`execute`](Self::execute), blocking the caller.
    ///
    /// ```
    /// use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, Source, StageError};
    ///
    /// struct Numbers(std::ops::Range<u64>);
    /// impl Source for Numbers {
    ///     type Out = Vec<u64>;
    ///     fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
    ///         let batch: Vec<u64> = self.0.by_ref().take(max).collect();
    ///         Ok((!batch.is_empty()).then_some(batch))
    ///     }
    /// }
    /// #[derive(Clone)]
    /// struct Sum;
    /// impl Aggregate for Sum {
    ///     type In = Vec<u64>;
    ///     type Partial = u64;
    ///     fn empty(&self) -> u64 { 0 }
    ///     fn add(&mut self, acc: &mut u64, b: Vec<u64>, _: &BatchInfo) -> Result<(), StageError> {
    ///         *acc += b.iter().sum::<u64>();
    ///         Ok(())
    ///     }
    ///     fn merge(&self, acc: &mut u64, later: u64) { *acc += later; }
    /// }
    /// for mode in [Mode::Serial, Mode::Pipelined] {
    ///     let config = RunConfig { mode, batch_size: 100, ..RunConfig::default() };
    ///     let done = Pipeline::builder("sum", "numbers", Numbers(1..1001))
    ///         .collect("sum", Sum)
    ///         .run(&config)
    ///         .unwrap();
    ///     assert_eq!(done.result, 500_500);
    ///     assert_eq!(done.report.stages[0].records_out, 1000);
    /// }
    /// ```
    pub fn run(self, config: &RunConfig) -> Result<Finished<O>, Error> {
        let config = config.clone();
        let pipeline = self.erase();
        typed(blocking(move || async move {
            Ok(execute_pipeline(pipeline, None, &config).await?)
        })?)
    }
}

impl Registry {
    /// Runs the pipeline registered under `key` with `params`, in any mode
    /// (multiprocess workers rebuild it from this registry), and gives back
    /// its typed output. Where it runs: as [`Pipeline::execute`].
    pub async fn execute<P, O>(
        &self,
        key: &Key<P, O>,
        params: &P,
        config: &RunConfig,
    ) -> Result<Finished<O>, Error>
    where
        P: Serialize,
        O: Send + 'static,
    {
        let job = key.job(params)?;
        typed(crate::mode::execute(self, &job, config).await?)
    }

    /// [`execute`](Self::execute), blocking the caller.
    pub fn run<P, O>(
        &self,
        key: &Key<P, O>,
        params: &P,
        config: &RunConfig,
    ) -> Result<Finished<O>, Error>
    where
        P: Serialize,
        O: Send + 'static,
    {
        let job = key.job(params)?;
        typed(crate::mode::run(self, &job, &config.clone())?)
    }
}

/// Runs `work()` on the current actix `System` when there is one, else on
/// a `System` thread of its own (from `#[tokio::main]`, any executor): the
/// modes spawn actors, which need a `System` and a local task set.
pub(crate) async fn on_system<T, F, Fut>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_on_system(move || async move {
        let _ = tx.send(work().await);
    })?;
    rx.await
        .map_err(|_| RunError::Runtime("the run's System stopped before it ended".into()))?
}

/// Spawns `work()` on the caller's actix arbiter when this thread has a
/// live one (an actix or actix-web `main`, an actix-web worker), else on a
/// `System` thread of its own that ends with it. The future is made on the
/// arbiter's thread, inside its local task set, so it need not be `Send`.
pub(crate) fn spawn_on_system<F, Fut>(work: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    // A thread that once ran a System keeps its thread-locals after the
    // System is gone: the arbiter's queue tells whether it still runs.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(work)));
    if let Some(arbiter) = current_arbiter() {
        let on_arbiter = std::sync::Arc::clone(&slot);
        let sent = arbiter.spawn_fn(move || {
            let work = on_arbiter.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(work) = work {
                actix::spawn(work());
            }
        });
        if sent {
            return Ok(());
        }
    }
    let work = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(work) = work else {
        return Ok(());
    };
    std::thread::Builder::new()
        .name("parpipe-system".into())
        .spawn(move || {
            let system = actix::System::new();
            system.block_on(work());
        })
        .map_err(|e| RunError::Runtime(format!("cannot start a System thread: {e}")))?;
    Ok(())
}

/// The arbiter of this thread's actix `System`, when there is one.
fn current_arbiter() -> Option<actix::ArbiterHandle> {
    actix::System::try_current()?;
    actix::Arbiter::try_current()
}

/// Runs `work()` to completion on a fresh `System`, blocking the caller;
/// on a thread of its own when this one already drives an async runtime
/// (where starting another would panic).
pub(crate) fn blocking<T, F, Fut>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
{
    let run = move || {
        let system = actix::System::new();
        let result = system.block_on(work());
        // Dropping the system runner stops its arbiter; nothing else runs on it.
        drop(system);
        result
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::Builder::new()
        .name("parpipe-system".into())
        .spawn(run)
        .map_err(|e| RunError::Runtime(format!("cannot start a System thread: {e}")))?
        .join()
        .map_err(|_| RunError::Runtime("the run's System thread panicked".into()))?
}
