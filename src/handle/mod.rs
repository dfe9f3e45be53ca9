//! The long-lived handle: a pipeline that runs until its caller finishes
//! it, fed by [`RunHandle::push`] (which waits while the pipeline is full), read
//! by [`RunHandle::snapshot`] without stopping it, and ended by [`RunHandle::finish`].
//!
//! It is the same engine as a run to completion: the pipeline's source is
//! a *feed*, a queue of at most `queue_depth` batches that the mode pulls
//! from like any source. An empty feed tells the mode to wait (never to
//! block: the actor stays free, heartbeats go on) until a push wakes it.
//! Credits therefore reach the caller: the mode pulls only when its first
//! stage (or a worker) has room, so the feed fills, and `push` waits on a
//! free slot of the feed. A snapshot request travels in the feed, in input
//! order, and is answered once every batch before it is folded in.

mod feed;
mod start;

use crate::error::{Error, RunError};
use crate::pipeline::AnyData;
use crate::run::Finished;
use crate::stage::Records;
use feed::{Feed, Item};
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// Why a batch was not pushed; the batch comes back.
#[derive(Debug)]
#[non_exhaustive]
pub enum PushError<B> {
    /// The pipeline is full ([`RunHandle::try_push`] only): try again later.
    Full(B),
    /// The pipeline was finished or aborted.
    Closed(B),
    /// The pipeline failed (a stage error, …): the error is the run's.
    Failed(B, Error),
}

impl<B> PushError<B> {
    /// The batch that was not pushed.
    pub fn into_batch(self) -> B {
        match self {
            PushError::Full(b) | PushError::Closed(b) | PushError::Failed(b, _) => b,
        }
    }
}

impl<B> std::fmt::Display for PushError<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("the pipeline is full"),
            PushError::Closed(_) => f.write_str("the pipeline is finished"),
            PushError::Failed(_, e) => write!(f, "the pipeline failed: {e}"),
        }
    }
}

impl<B: std::fmt::Debug> std::error::Error for PushError<B> {}

/// Live counters of a running pipeline (see [`RunHandle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveStats {
    /// Batches pushed so far.
    pub batches_pushed: u64,
    /// Records pushed so far.
    pub records_pushed: u64,
    /// Batches the pipeline has taken from the feed.
    pub batches_taken: u64,
    /// Batches waiting in the feed (at most the queue depth).
    pub queued: u64,
    /// Milliseconds since the pipeline started.
    pub uptime_ms: u64,
}

/// A started pipeline and the stream of its per-batch outputs.
pub type RunHandleWithOutputs<B, P, O, T> = (RunHandle<B, P, O>, crate::BatchOutputs<T>);

/// What the run's task leaves behind.
type Outcome = Result<Finished<AnyData>, Error>;

/// State shared by every clone of a handle.
struct Shared<B> {
    feed: Arc<Feed<B>>,
    /// The per-batch outputs' queue, when the caller reads them: a push
    /// also waits for room there.
    outputs: Option<Arc<dyn crate::emit::Room>>,
    /// Where the run publishes its report so far.
    board: crate::live::LiveBoard,
    cancel: crate::Cancel,
    started: Instant,
    /// The run's result, once it is over (taken by `finish`).
    outcome: tokio::sync::Mutex<Ending>,
    /// The failure, once the run failed (for `push` and `snapshot`).
    failure: Mutex<Option<Error>>,
    /// Becomes true once the run is over (its failure, if any, recorded).
    ended: tokio::sync::watch::Receiver<bool>,
}

enum Ending {
    Running(oneshot::Receiver<Outcome>),
    Taken,
}

impl<B> Shared<B> {
    fn failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why the run stopped, once it has (a snapshot request can be dropped
    /// by a failing actor before the run records its error).
    async fn stopped(&self) -> Error {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|&over| over).await;
        self.failure()
            .unwrap_or_else(|| RunError::Interrupted.into())
    }
}

/// Dropping the last handle without [`RunHandle::finish`] stops the pipeline:
/// the sink aborts, actors and worker processes stop.
struct LastHandle<B>(Arc<Shared<B>>);

impl<B> Drop for LastHandle<B> {
    fn drop(&mut self) {
        self.0.feed.lock().dropped = true;
        self.0.feed.ready.notify_one();
        self.0.cancel.cancel();
    }
}

/// A running pipeline: push batches of type `B`, read snapshots of the
/// aggregate's partial `P`, finish to get the output `O` and the report.
/// Cloneable and `Send`; the pipeline stops when the last clone is dropped.
pub struct RunHandle<B, P, O> {
    last: Arc<LastHandle<B>>,
    _types: PhantomData<fn() -> (P, O)>,
}

impl<B, P, O> std::fmt::Debug for RunHandle<B, P, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let feed = &self.last.0.feed;
        f.debug_struct("RunHandle")
            .field(
                "batches_pushed",
                &feed.pushed_batches.load(Ordering::Relaxed),
            )
            .field("batches_taken", &feed.taken.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<B, P, O> Clone for RunHandle<B, P, O> {
    fn clone(&self) -> Self {
        RunHandle {
            last: Arc::clone(&self.last),
            _types: PhantomData,
        }
    }
}

impl<B, P, O> RunHandle<B, P, O>
where
    B: Records,
    P: Send + 'static,
    O: Send + 'static,
{
    fn shared(&self) -> &Shared<B> {
        &self.last.0
    }

    /// Pushes one batch, waiting while the pipeline is full (so memory
    /// stays bounded however fast the caller is).
    ///
    /// # Errors
    /// [`PushError::Closed`] after `finish` or `abort`,
    /// [`PushError::Failed`] once the pipeline failed; the batch comes back.
    ///
    /// # Cancel safety
    /// If the returned future is dropped before it completes, the batch is
    /// dropped with it and was not pushed.
    pub async fn push(&self, batch: B) -> Result<(), PushError<B>> {
        let shared = self.shared();
        if let Some(outputs) = &shared.outputs {
            outputs.wait().await;
        }
        match shared.feed.space.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(self.closed(batch)),
        }
        self.enqueue(batch)
    }

    /// Pushes one batch if there is room now.
    ///
    /// # Errors
    /// [`PushError::Full`] when the pipeline is full; otherwise as
    /// [`push`](Self::push).
    ///
    /// ```
    /// use parpipe::{BatchInfo, Mode, Pipeline, PushError, RunConfig, Stage, StageError};
    /// # #[derive(Clone)] struct Len;
    /// # impl parpipe::Aggregate for Len {
    /// #     type In = Vec<u8>; type Partial = usize;
    /// #     fn empty(&self) -> usize { 0 }
    /// #     fn add(&mut self, a: &mut usize, b: Vec<u8>, _: &BatchInfo) -> Result<(), StageError> { *a += b.len(); Ok(()) }
    /// #     fn merge(&self, a: &mut usize, l: usize) { *a += l; }
    /// # }
    /// /// Holds every batch until the gate opens.
    /// #[derive(Clone)]
    /// struct Gate(std::sync::Arc<std::sync::Mutex<()>>);
    /// impl Stage for Gate {
    ///     type In = Vec<u8>;
    ///     type Out = Vec<u8>;
    ///     fn process(&mut self, b: Vec<u8>, _: &BatchInfo) -> Result<Vec<u8>, StageError> {
    ///         drop(self.0.lock());
    ///         Ok(b)
    ///     }
    /// }
    /// let gate = std::sync::Arc::new(std::sync::Mutex::new(()));
    /// let closed = gate.lock().unwrap();
    /// let config = RunConfig { mode: Mode::Pipelined, queue_depth: 1, ..RunConfig::default() };
    /// let run = Pipeline::input::<Vec<u8>>("gated", "pushed")
    ///     .stage("gate", Gate(gate.clone()))
    ///     .collect("len", Len)
    ///     .start::<Vec<u8>, usize>(&config)?;
    /// // The stage holds one batch, its queue one more, the feed one more: then Full.
    /// let full = loop {
    ///     match run.try_push(vec![0; 10]) {
    ///         Ok(()) => std::thread::yield_now(),
    ///         Err(PushError::Full(batch)) => break batch,
    ///         Err(e) => panic!("{e}"),
    ///     }
    /// };
    /// assert_eq!(full.len(), 10); // the batch comes back
    /// drop(closed);
    /// # Ok::<(), parpipe::Error>(())
    /// ```
    pub fn try_push(&self, batch: B) -> Result<(), PushError<B>> {
        if let Some(outputs) = &self.shared().outputs {
            if !outputs.has_room() {
                return Err(PushError::Full(batch));
            }
        }
        match self.shared().feed.space.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(PushError::Full(batch)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(self.closed(batch)),
        }
        self.enqueue(batch)
    }

    fn closed(&self, batch: B) -> PushError<B> {
        match self.shared().failure() {
            Some(e) => PushError::Failed(batch, e),
            None => PushError::Closed(batch),
        }
    }

    fn enqueue(&self, batch: B) -> Result<(), PushError<B>> {
        let shared = self.shared();
        let records = batch.record_count() as u64;
        {
            let mut q = shared.feed.lock();
            if q.closed || q.dropped {
                drop(q);
                shared.feed.space.add_permits(1);
                return Err(self.closed(batch));
            }
            q.items.push_back(Item::Batch(batch));
        }
        shared.feed.pushed_batches.fetch_add(1, Ordering::Relaxed);
        shared
            .feed
            .pushed_records
            .fetch_add(records, Ordering::Relaxed);
        shared.feed.ready.notify_one();
        Ok(())
    }

    /// A copy of the aggregate of every batch pushed before this call,
    /// merged in input order, taken without stopping the pipeline.
    ///
    /// # Errors
    /// The run's error once it failed; [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted)
    /// when it was finished or aborted first.
    pub async fn snapshot(&self) -> Result<P, Error> {
        let shared = self.shared();
        let (tx, rx) = oneshot::channel();
        {
            let mut q = shared.feed.lock();
            if q.over {
                // The failure was recorded before `over` was set.
                drop(q);
                return Err(shared
                    .failure()
                    .unwrap_or_else(|| RunError::Interrupted.into()));
            }
            if q.closed || q.dropped {
                drop(q);
                return Err(shared
                    .failure()
                    .unwrap_or_else(|| RunError::Interrupted.into()));
            }
            q.items.push_back(Item::Snapshot(tx));
        }
        shared.feed.ready.notify_one();
        match rx.await {
            Ok(partial) => partial.downcast::<P>().map(|p| *p).map_err(|_| {
                RunError::Runtime("the snapshot is not of the partial type".into()).into()
            }),
            Err(_) => Err(shared.stopped().await),
        }
    }

    /// The run's report so far, as the dashboard shows it: per stage its
    /// records in and out and its busy, idle and blocked time, queue fill,
    /// and in multiprocess mode one row per worker. Refreshed about every
    /// 250 ms while the run goes on; `None` before the first refresh.
    pub fn live(&self) -> Option<crate::live::LiveStatus> {
        self.shared().board.latest()
    }

    /// Live counters (pushed, taken, queued).
    pub fn stats(&self) -> LiveStats {
        let f = &self.shared().feed;
        LiveStats {
            batches_pushed: f.pushed_batches.load(Ordering::Relaxed),
            records_pushed: f.pushed_records.load(Ordering::Relaxed),
            batches_taken: f.taken.load(Ordering::Relaxed),
            queued: f.lock().items.len() as u64,
            uptime_ms: self.shared().started.elapsed().as_millis() as u64,
        }
    }

    /// Ends the input, waits for everything pushed to be processed, runs
    /// the sink and gives back its output with the report.
    ///
    /// # Errors
    /// The run's error, if it failed; a second `finish` (from a clone)
    /// fails with [`ErrorKind::Config`](crate::ErrorKind::Config).
    pub async fn finish(self) -> Result<Finished<O>, Error> {
        let shared = self.shared();
        shared.feed.lock().closed = true;
        shared.feed.ready.notify_one();
        let rx = {
            let mut ending = shared.outcome.lock().await;
            match std::mem::replace(&mut *ending, Ending::Taken) {
                Ending::Running(rx) => rx,
                Ending::Taken => {
                    return Err(Error::config("this pipeline was already finished"));
                }
            }
        };
        let finished = rx
            .await
            .map_err(|_| Error::from(RunError::Runtime("the pipeline stopped early".into())))??;
        match finished.result.downcast::<O>() {
            Ok(result) => Ok(Finished {
                result: *result,
                report: finished.report,
            }),
            Err(_) => {
                Err(RunError::Runtime("the pipeline's output is of another type".into()).into())
            }
        }
    }

    /// Pushes the items of an async `stream` as batches of at most
    /// `max_records` items (made by `make`), waiting while the pipeline is
    /// full; a partial batch leaves `max_batch_delay` after its first item,
    /// so a slow stream still flows. Returns the number of items pushed once
    /// the stream ends (the pipeline goes on: [`finish`](Self::finish) it).
    ///
    /// # Errors
    /// As [`push`](Self::push); the batch that was not pushed comes back.
    pub async fn feed<St, T>(
        &self,
        stream: St,
        max_records: usize,
        max_batch_delay: std::time::Duration,
        mut make: impl FnMut(Vec<T>) -> B,
    ) -> Result<u64, PushError<B>>
    where
        St: futures_util::Stream<Item = T>,
    {
        use futures_util::StreamExt;
        let max = max_records.max(1);
        let mut stream = std::pin::pin!(stream);
        let mut pushed = 0u64;
        let mut items = Vec::with_capacity(max);
        loop {
            let Some(first) = stream.next().await else {
                return Ok(pushed);
            };
            items.push(first);
            let deadline = tokio::time::Instant::now() + max_batch_delay;
            let mut ended = false;
            while items.len() < max {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(item)) => items.push(item),
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    // The delay is up: the partial batch leaves now.
                    Err(_) => break,
                }
            }
            pushed += items.len() as u64;
            let batch = make(std::mem::replace(&mut items, Vec::with_capacity(max)));
            self.push(batch).await?;
            if ended {
                return Ok(pushed);
            }
        }
    }

    /// Stops the pipeline without a result: the sink aborts.
    pub fn abort(&self) {
        let shared = self.shared();
        shared.feed.lock().dropped = true;
        shared.feed.ready.notify_one();
        shared.cancel.cancel();
    }
}
