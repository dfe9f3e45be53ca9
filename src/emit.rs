//! Ordered per-batch outputs: what a pipeline emits for each batch, in
//! input order, as a [`Stream`](futures_util::Stream) for the caller of a
//! long-lived pipeline ([`BatchOutputs`], from
//! [`Pipeline::start_with_outputs`]).
//!
//! Emitted items travel inside the aggregate's partial, as rendered
//! records do for the `logs` workload: a stage or the aggregate puts them
//! there (in a worker process, too), and after each batch is folded in, in
//! input order, the coordinator takes them out with the function given to
//! [`Pipeline::emit`] and queues them for the stream. Nothing blocks on
//! the way: when the caller reads the stream more slowly than it pushes,
//! [`RunHandle::push`](crate::RunHandle::push) waits (the queue holds at most a few
//! batches' outputs), so memory stays bounded.

use crate::pipeline::{AnyData, DynSink, Pipeline};
use crate::stage::StageError;
use std::any::Any;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, Notify};

/// The queue between the sink and the [`BatchOutputs`] stream.
pub(crate) struct Port<T> {
    sender: Mutex<Option<mpsc::UnboundedSender<Vec<T>>>>,
    /// Batches queued and not yet taken by the stream.
    pending: AtomicUsize,
    /// Most batches that may wait before a push waits.
    bound: usize,
    /// Wakes pushes waiting for room.
    room: Notify,
    /// The stream was dropped: outputs are discarded, pushes never wait.
    unread: AtomicBool,
}

impl<T> Port<T> {
    fn send(&self, items: Vec<T>) {
        if self.unread.load(Ordering::Acquire) {
            return;
        }
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = sender.as_ref() {
            self.pending.fetch_add(1, Ordering::AcqRel);
            if tx.send(items).is_err() {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// The end of the stream (after the last batch, or a failure).
    fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.room.notify_waiters();
    }
}

/// What a handle needs of the port, whatever its item type.
pub(crate) trait Room: Send + Sync {
    /// Whether a push may go on now.
    fn has_room(&self) -> bool;
    /// Waits until [`has_room`](Self::has_room).
    fn wait(&self) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

impl<T: Send> Room for Port<T> {
    fn has_room(&self) -> bool {
        self.unread.load(Ordering::Acquire)
            || self.pending.load(Ordering::Acquire) < self.bound
            || self
                .sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
    }

    fn wait(&self) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                let notified = self.room.notified();
                tokio::pin!(notified);
                // Registered before the check, so no wake-up is missed.
                notified.as_mut().enable();
                if self.has_room() {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// The outputs of a running pipeline, one `Vec` per batch, in input order
/// (for a pushed pipeline: one per [`push`](crate::RunHandle::push), so the
/// n-th item answers the n-th push). The stream ends once the run has
/// finished or failed (the error comes from
/// [`finish`](crate::RunHandle::finish)). Dropping it discards later outputs.
pub struct BatchOutputs<T> {
    rx: mpsc::UnboundedReceiver<Vec<T>>,
    port: Arc<Port<T>>,
}

impl<T> BatchOutputs<T> {
    /// The next batch's outputs; `None` at the end of the run.
    pub async fn next_batch(&mut self) -> Option<Vec<T>> {
        let got = self.rx.recv().await;
        self.took(got.is_some());
        got
    }

    fn took(&self, some: bool) {
        if some {
            self.port.pending.fetch_sub(1, Ordering::AcqRel);
            self.port.room.notify_waiters();
        }
    }
}

impl<T> futures_util::Stream for BatchOutputs<T> {
    type Item = Vec<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<T>>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(got) = &polled {
            self.took(got.is_some());
        }
        polled
    }
}

impl<T> Drop for BatchOutputs<T> {
    fn drop(&mut self) {
        self.port.unread.store(true, Ordering::Release);
        self.port.room.notify_waiters();
    }
}

impl<T> std::fmt::Debug for BatchOutputs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOutputs")
            .field("pending", &self.port.pending.load(Ordering::Relaxed))
            .finish()
    }
}

/// A new port and its stream; at most `bound` batches' outputs wait.
pub(crate) fn port<T: Send + 'static>(bound: usize) -> (Arc<Port<T>>, BatchOutputs<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = Arc::new(Port {
        sender: Mutex::new(Some(tx)),
        pending: AtomicUsize::new(0),
        bound: bound.max(1),
        room: Notify::new(),
        unread: AtomicBool::new(false),
    });
    let outputs = BatchOutputs {
        rx,
        port: Arc::clone(&port),
    };
    (port, outputs)
}

/// A sink that first lets `take` move each batch's outputs out of the
/// running partial, then does what the pipeline's sink does.
struct EmitSink<P, T, F> {
    inner: Box<dyn DynSink>,
    take: F,
    port: Option<Arc<Port<T>>>,
    _partial: PhantomData<fn(&mut P)>,
}

impl<P, T, F> EmitSink<P, T, F>
where
    P: 'static,
    T: Send + 'static,
    F: FnMut(&mut P) -> Vec<T> + Send + 'static,
{
    fn emit(&mut self, acc: &mut AnyData) -> Result<(), StageError> {
        let partial = acc.downcast_mut::<P>().ok_or_else(|| {
            StageError::new(format!(
                "emit: the aggregate's partial is not a {}",
                std::any::type_name::<P>()
            ))
        })?;
        let items = (self.take)(partial);
        if let Some(port) = &self.port {
            port.send(items);
        }
        Ok(())
    }
}

impl<P, T, F> DynSink for EmitSink<P, T, F>
where
    P: 'static,
    T: Send + 'static,
    F: FnMut(&mut P) -> Vec<T> + Send + 'static,
{
    fn absorb(&mut self, acc: &mut AnyData) -> Result<(), StageError> {
        self.emit(acc)?;
        self.inner.absorb(acc)
    }

    fn finish(&mut self, mut result: AnyData) -> Result<(), StageError> {
        // Every batch was absorbed: anything left is emitted only if there
        // is something (so that outputs stay one per batch).
        if let Some(partial) = result.downcast_mut::<P>() {
            let rest = (self.take)(partial);
            if let (false, Some(port)) = (rest.is_empty(), &self.port) {
                port.send(rest);
            }
        }
        let finished = self.inner.finish(result);
        if let Some(port) = &self.port {
            port.close();
        }
        finished
    }

    fn abort(&mut self) {
        if let Some(port) = &self.port {
            port.close();
        }
        self.inner.abort()
    }

    fn attach_outputs(&mut self, port: &dyn Any) -> bool {
        match port.downcast_ref::<Arc<Port<T>>>() {
            Some(port) => {
                self.port = Some(Arc::clone(port));
                true
            }
            None => false,
        }
    }
}

impl<O: Send + 'static> Pipeline<O> {
    /// Streams per-batch outputs: after each batch is folded into the
    /// aggregate, in input order, `take` moves that batch's outputs out of
    /// the running partial `P` (the aggregate's `add` put them there, in
    /// whichever process ran it). A handle started with
    /// [`start_with_outputs`](Pipeline::start_with_outputs) reads them as
    /// a stream; a plain run drops them. `take` runs where the sink runs.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, StageError};
    ///
    /// /// Counts the words it saw and keeps each batch's lengths to emit.
    /// #[derive(Clone)]
    /// struct Lengths;
    /// impl Aggregate for Lengths {
    ///     type In = Vec<String>;
    ///     type Partial = (u64, Vec<usize>);
    ///     fn empty(&self) -> (u64, Vec<usize>) { (0, Vec::new()) }
    ///     fn add(&mut self, acc: &mut (u64, Vec<usize>), words: Vec<String>, _: &BatchInfo)
    ///         -> Result<(), StageError> {
    ///         acc.0 += words.len() as u64;
    ///         acc.1.extend(words.iter().map(|w| w.len()));
    ///         Ok(())
    ///     }
    ///     fn merge(&self, acc: &mut (u64, Vec<usize>), later: (u64, Vec<usize>)) {
    ///         acc.0 += later.0;
    ///         acc.1.extend(later.1);
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let config = RunConfig { mode: Mode::Pipelined, ..RunConfig::default() };
    /// let (run, mut outputs) = Pipeline::input::<Vec<String>>("lengths", "pushed")
    ///     .collect("lengths", Lengths)
    ///     .emit(|acc: &mut (u64, Vec<usize>)| std::mem::take(&mut acc.1))
    ///     .start_with_outputs::<Vec<String>, (u64, Vec<usize>), usize>(&config)?;
    /// run.push(vec!["a".into(), "bcd".into()]).await.unwrap();
    /// assert_eq!(outputs.next().await, Some(vec![1, 3])); // the first push's outputs
    /// run.push(vec!["ef".into()]).await.unwrap();
    /// assert_eq!(outputs.next().await, Some(vec![2]));
    /// let done = run.finish().await?;
    /// assert_eq!(done.result.0, 3);
    /// assert_eq!(outputs.next().await, None); // the run is over
    /// # Ok::<(), parpipe::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn emit<P, T, F>(mut self, take: F) -> Pipeline<O>
    where
        P: 'static,
        T: Send + 'static,
        F: FnMut(&mut P) -> Vec<T> + Send + 'static,
    {
        let inner = std::mem::replace(&mut self.sink.part, Box::new(NoSink));
        self.sink.part = Box::new(EmitSink {
            inner,
            take,
            port: None,
            _partial: PhantomData,
        });
        self
    }
}

/// The place a sink was moved out of, for the instant before its wrapper
/// takes it (never used).
struct NoSink;

impl DynSink for NoSink {
    fn absorb(&mut self, _acc: &mut AnyData) -> Result<(), StageError> {
        Ok(())
    }

    fn finish(&mut self, _result: AnyData) -> Result<(), StageError> {
        Err(StageError::new("the sink was moved"))
    }

    fn abort(&mut self) {}
}

#[cfg(test)]
mod tests;
