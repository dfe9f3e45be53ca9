//! Starting a long-lived pipeline: from a [`Pipeline`] (serial and pipeline
//! mode) or a [`Registry`] key (any mode), with or without the stream of
//! its per-batch outputs; the run's task on the actix `System`, and what it
//! leaves in the shared state once it is over.

use super::feed::Feed;
use super::{Ending, LastHandle, Outcome, RunHandle, RunHandleWithOutputs, Shared};
use crate::error::Error;
use crate::mode::RunConfig;
use crate::pipeline::{Key, Pipeline, Registry};
use crate::run::spawn_on_system;
use crate::stage::Records;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// Starts `pipeline` (its source must be a feed of `B`) and returns its
/// handle; `job` names it for multiprocess workers.
fn start<B, P, O>(
    mut pipeline: Pipeline,
    job: Option<crate::JobSpec>,
    config: &RunConfig,
    outputs: Option<Arc<dyn crate::emit::Room>>,
) -> Result<RunHandle<B, P, O>, Error>
where
    B: Records,
    P: Send + 'static,
    O: Send + 'static,
{
    config.validate()?;
    if !pipeline.aggregate.part.partial_is::<P>() {
        return Err(Error::config(format!(
            "the snapshot type {} is not the aggregate's partial",
            std::any::type_name::<P>()
        )));
    }
    let feed = Arc::new(Feed::<B>::new(config.queue_depth));
    if !pipeline.source.part.attach_feed(&feed) {
        return Err(Error::config(format!(
            "pipeline '{}' does not take pushed batches of type {}: build it with Pipeline::input",
            pipeline.name,
            std::any::type_name::<B>()
        )));
    }
    // The handle's own cancel flag (`abort` and dropping raise it); the
    // caller's flag, shared by the configs cloned from it, is relayed.
    let mut config = config.clone();
    // The caller's board if it gave one (for its dashboard), else our own.
    let board = config.live.get_or_insert_with(Default::default).clone();
    let caller = std::mem::take(&mut config.cancel);
    let cancel = config.cancel.clone();
    let (tx, rx) = oneshot::channel::<Outcome>();
    let (ended_tx, ended) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        feed: Arc::clone(&feed),
        outputs,
        board,
        cancel: cancel.clone(),
        started: Instant::now(),
        outcome: tokio::sync::Mutex::new(Ending::Running(rx)),
        failure: Mutex::new(None),
        ended,
    });
    let watcher = Arc::downgrade(&shared);
    let own = cancel.clone();
    let run = async move {
        let execute = crate::mode::execute_pipeline(pipeline, job.as_ref(), &config);
        tokio::pin!(execute);
        let outcome = tokio::select! {
            outcome = &mut execute => outcome,
            () = caller.cancelled() => {
                own.cancel();
                execute.await
            }
        };
        let outcome: Outcome = outcome.map_err(Error::from);
        // No more room: pushes fail fast from now on, with the error.
        if let Some(shared) = watcher.upgrade() {
            if let Err(e) = &outcome {
                *shared.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            }
            shared.feed.space.close();
            let mut q = shared.feed.lock();
            // Pending snapshot requests are dropped: their callers see the
            // end; later ones are refused at once.
            q.items.clear();
            q.over = true;
        }
        let _ = ended_tx.send(true);
        let _ = tx.send(outcome);
    };
    spawn_on_system(move || run)?;
    Ok(RunHandle {
        last: Arc::new(LastHandle(shared)),
        _types: PhantomData,
    })
}

impl<O: Send + 'static> Pipeline<O> {
    /// Starts a long-lived pipeline built with [`Pipeline::input`] (serial
    /// or pipeline mode; multiprocess through [`Registry::start`]) and
    /// returns its handle. On the caller's actix `System` when there is
    /// one (an actix-web app's), else on a `System` thread of its own.
    ///
    /// ```
    /// use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, StageError};
    ///
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
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let config = RunConfig { mode: Mode::Pipelined, ..RunConfig::default() };
    /// let run = Pipeline::input::<Vec<u64>>("sum", "pushed")
    ///     .collect("sum", Sum)
    ///     .start::<Vec<u64>, u64>(&config)?;
    /// run.push(vec![1, 2, 3]).await.unwrap();
    /// assert_eq!(run.snapshot().await?, 6); // read-your-writes
    /// run.push(vec![4]).await.unwrap();
    /// let done = run.finish().await?;
    /// assert_eq!(done.result, 10);
    /// # Ok::<(), parpipe::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn start<B, P>(self, config: &RunConfig) -> Result<RunHandle<B, P, O>, Error>
    where
        B: Records,
        P: Send + 'static,
    {
        refuse_unregistered(config, "Registry::start")?;
        start(self.erase(), None, config, None)
    }

    /// Like [`start`](Self::start), for a pipeline that [`emit`](Pipeline::emit)s
    /// items of type `T`: also returns the stream of each batch's outputs,
    /// in input order. A push waits while the stream's reader is more than
    /// a few batches behind (twice the queue depth), so memory stays
    /// bounded; dropping the stream lifts that.
    ///
    /// # Errors
    /// As [`start`](Self::start); a config error when the pipeline does not
    /// emit items of type `T`.
    pub fn start_with_outputs<B, P, T>(
        self,
        config: &RunConfig,
    ) -> Result<RunHandleWithOutputs<B, P, O, T>, Error>
    where
        B: Records,
        P: Send + 'static,
        T: Send + 'static,
    {
        refuse_unregistered(config, "Registry::start_with_outputs")?;
        let mut pipeline = self.erase();
        let (room, outputs) = attach_outputs::<T>(&mut pipeline, config)?;
        Ok((start(pipeline, None, config, Some(room))?, outputs))
    }
}

/// Multiprocess mode needs a registered pipeline: workers rebuild it by
/// name. `instead` names the call to use.
fn refuse_unregistered(config: &RunConfig, instead: &str) -> Result<(), Error> {
    if config.mode == crate::Mode::Multiprocess {
        return Err(Error::config(format!(
            "multiprocess mode needs a registered pipeline (workers rebuild it by name): \
             start it with {instead}"
        )));
    }
    Ok(())
}

/// A port for the per-batch outputs of `pipeline`, attached to its sink.
fn attach_outputs<T: Send + 'static>(
    pipeline: &mut Pipeline,
    config: &RunConfig,
) -> Result<(Arc<dyn crate::emit::Room>, crate::BatchOutputs<T>), Error> {
    let (port, outputs) = crate::emit::port::<T>(2 * config.queue_depth.max(1));
    if !pipeline.sink.part.attach_outputs(&port) {
        return Err(Error::config(format!(
            "pipeline '{}' emits no items of type {}: add Pipeline::emit",
            pipeline.name,
            std::any::type_name::<T>()
        )));
    }
    Ok((port, outputs))
}

impl Registry {
    /// Starts the registered pipeline `key` (built with [`Pipeline::input`])
    /// with `params`, in any mode, and returns its handle (see
    /// [`Pipeline::start`]).
    pub fn start<Params, B, P, O>(
        &self,
        key: &Key<Params, O>,
        params: &Params,
        config: &RunConfig,
    ) -> Result<RunHandle<B, P, O>, Error>
    where
        Params: Serialize,
        B: Records,
        P: Send + 'static,
        O: Send + 'static,
    {
        let job = key.job(params)?;
        let pipeline = self.build(&job)?;
        start(pipeline, Some(job), config, None)
    }

    /// [`start`](Self::start) with the stream of per-batch outputs (see
    /// [`Pipeline::start_with_outputs`]), in any mode.
    ///
    /// # Errors
    /// As [`start`](Self::start); a config error when the pipeline does not
    /// emit items of type `T`.
    pub fn start_with_outputs<Params, B, P, O, T>(
        &self,
        key: &Key<Params, O>,
        params: &Params,
        config: &RunConfig,
    ) -> Result<RunHandleWithOutputs<B, P, O, T>, Error>
    where
        Params: Serialize,
        B: Records,
        P: Send + 'static,
        O: Send + 'static,
        T: Send + 'static,
    {
        let job = key.job(params)?;
        let mut pipeline = self.build(&job)?;
        let (room, outputs) = attach_outputs::<T>(&mut pipeline, config)?;
        Ok((start(pipeline, Some(job), config, Some(room))?, outputs))
    }
}
