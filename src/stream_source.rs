//! A [`Source`] made of an async [`Stream`]: its items
//! are gathered into batches, and a batch leaves once it is full or
//! `max_batch_delay` after its first item, so a slow stream still flows.
//!
//! Like every source that may wait, it is pulled on a thread of its own
//! (see [`Source::may_wait`]); there it drives the stream on a small
//! runtime of its own (timers included), so the stream may come from any
//! runtime: a tokio channel's receiver, a socket's lines, a `futures`
//! channel.

use crate::stage::{Records, Source, StageError};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::time::Duration;

/// A source that batches the items of an async stream (see
/// [`StreamSource::new`]).
pub struct StreamSource<St, F> {
    stream: Pin<Box<St>>,
    make: F,
    max_batch_delay: Duration,
    /// Made at the first pull (construction does no I/O: workers build the
    /// pipeline too and never pull).
    runtime: Option<tokio::runtime::Runtime>,
    ended: bool,
}

impl<St, F, T, B> StreamSource<St, F>
where
    St: Stream<Item = T> + Send + 'static,
    F: FnMut(Vec<T>) -> B + Send + 'static,
    B: Records,
{
    /// Batches of `stream`'s items, each made by `make` from at most the
    /// engine's batch size of items; a partial batch leaves
    /// `max_batch_delay` after its first item. The input ends with the
    /// stream.
    ///
    /// ```
    /// use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, StageError, StreamSource};
    /// use std::time::Duration;
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
    /// let numbers = futures_util::stream::iter(1..=100u64);
    /// let source = StreamSource::new(numbers, |items: Vec<u64>| items, Duration::from_millis(50));
    /// let config = RunConfig { mode: Mode::Pipelined, ..RunConfig::default() };
    /// let done = Pipeline::builder("sum", "stream", source).collect("sum", Sum).run(&config)?;
    /// assert_eq!(done.result, 5050);
    /// # Ok::<(), parpipe::Error>(())
    /// ```
    pub fn new(stream: St, make: F, max_batch_delay: Duration) -> Self {
        StreamSource {
            stream: Box::pin(stream),
            make,
            max_batch_delay,
            runtime: None,
            ended: false,
        }
    }
}

impl<St, F, T, B> Source for StreamSource<St, F>
where
    St: Stream<Item = T> + Send + 'static,
    F: FnMut(Vec<T>) -> B + Send + 'static,
    B: Records,
{
    type Out = B;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<B>, StageError> {
        if self.ended {
            return Ok(None);
        }
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| StageError::new(format!("cannot start the stream's runtime: {e}")))?;
            self.runtime = Some(runtime);
        }
        let Some(runtime) = &self.runtime else {
            return Ok(None);
        };
        let max = max_records.max(1);
        let (stream, delay) = (&mut self.stream, self.max_batch_delay);
        let (items, ended) = runtime.block_on(async move {
            let mut items = Vec::with_capacity(max.min(1 << 16));
            let Some(first) = stream.next().await else {
                return (items, true);
            };
            items.push(first);
            let deadline = tokio::time::Instant::now() + delay;
            while items.len() < max {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(item)) => items.push(item),
                    Ok(None) => return (items, true),
                    // The delay is up: the partial batch leaves now.
                    Err(_) => break,
                }
            }
            (items, false)
        });
        self.ended = ended;
        if items.is_empty() {
            return Ok(None);
        }
        Ok(Some((self.make)(items)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_slow_stream_gives_partial_batches_after_the_delay() {
        let (tx, rx) = tokio::sync::mpsc::channel::<u32>(16);
        let items =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let mut source = StreamSource::new(items, |v: Vec<u32>| v, Duration::from_millis(50));
        tx.blocking_send(1).unwrap();
        tx.blocking_send(2).unwrap();
        // Far fewer than a batch, and no more coming for now: they leave
        // after the delay.
        let started = Instant::now();
        assert_eq!(source.next_batch(1000).unwrap(), Some(vec![1, 2]));
        assert!(started.elapsed() >= Duration::from_millis(50));
        for i in 0..5 {
            tx.blocking_send(10 + i).unwrap();
        }
        // A full batch leaves at once.
        assert_eq!(source.next_batch(3).unwrap(), Some(vec![10, 11, 12]));
        drop(tx);
        assert_eq!(source.next_batch(3).unwrap(), Some(vec![13, 14]));
        assert_eq!(source.next_batch(3).unwrap(), None);
        assert_eq!(source.next_batch(3).unwrap(), None);
    }
}
