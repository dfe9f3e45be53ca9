//! The feed: the bounded queue between a [`RunHandle`](super::RunHandle)'s handles
//! and its pipeline's source, and that source ([`FeedSource`]). The mode
//! pulls from it like from any source; an empty feed answers `Pending`
//! with a wake-up that the next push completes, so no thread blocks.

use crate::pipeline::{
    AnyData, DynChunkDecoder, DynSource, Pipeline, Pulled, SnapshotReq, Wake, WholeBatch,
};
use crate::stage::{Records, StageError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Notify, Semaphore};

/// What waits in the feed.
pub(super) enum Item<B> {
    Batch(B),
    Snapshot(oneshot::Sender<AnyData>),
}

#[derive(Default)]
pub(super) struct Queue<B> {
    pub(super) items: VecDeque<Item<B>>,
    /// `finish` was called: the input ends after what is queued.
    pub(super) closed: bool,
    /// Every handle was dropped (or `abort` called): stop.
    pub(super) dropped: bool,
    /// The run is over (ended, failed or panicked): nothing reads the
    /// queue any more, so a request put in it would never be answered.
    pub(super) over: bool,
}

/// The queue between the handles and the pipeline's source.
pub(super) struct Feed<B> {
    queue: Mutex<Queue<B>>,
    /// Free slots of the queue; closed when the run is over.
    pub(super) space: Semaphore,
    /// Wakes the waiting source (one consumer: `notify_one` keeps a permit
    /// when it is not waiting yet, so no push is missed).
    pub(super) ready: Notify,
    pub(super) pushed_batches: AtomicU64,
    pub(super) pushed_records: AtomicU64,
    pub(super) taken: AtomicU64,
}

impl<B> Feed<B> {
    pub(super) fn new(depth: usize) -> Self {
        Feed {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
                dropped: false,
                over: false,
            }),
            space: Semaphore::new(depth),
            ready: Notify::new(),
            pushed_batches: AtomicU64::new(0),
            pushed_records: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Queue<B>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the next item, or says why there is none.
    fn take(self: &Arc<Self>) -> Pulled<Item<B>>
    where
        B: Send + 'static,
    {
        let mut q = self.lock();
        if q.dropped {
            return Pulled::Cancelled;
        }
        match q.items.pop_front() {
            Some(item) => {
                if matches!(item, Item::Batch(_)) {
                    self.taken.fetch_add(1, Ordering::Relaxed);
                    self.space.add_permits(1);
                }
                Pulled::Data(item, 0)
            }
            None if q.closed => Pulled::End,
            None => {
                let feed = Arc::clone(self);
                let wake: Wake = Box::pin(async move { feed.ready.notified().await });
                Pulled::Pending(wake)
            }
        }
    }
}

/// The source of a pipeline built with [`Pipeline::input`](crate::Pipeline::input): the feed, once
/// [`Pipeline::start`] attached it. In a worker it only decodes chunks.
struct FeedSource<B> {
    feed: Option<Arc<Feed<B>>>,
}

impl<B: Records + Serialize + DeserializeOwned> FeedSource<B> {
    fn pull(&mut self) -> Result<Pulled<B>, StageError> {
        let Some(feed) = &self.feed else {
            return Err(StageError::new(
                "this pipeline takes pushed batches: start it with Pipeline::start \
                 (or Registry::start), not run",
            ));
        };
        Ok(match feed.take() {
            Pulled::Data(Item::Batch(b), _) => {
                let n = b.record_count();
                Pulled::Data(b, n)
            }
            Pulled::Data(Item::Snapshot(tx), _) => Pulled::Snapshot(SnapshotReq(tx)),
            Pulled::End => Pulled::End,
            Pulled::Pending(w) => Pulled::Pending(w),
            Pulled::Snapshot(r) => Pulled::Snapshot(r),
            Pulled::Cancelled => Pulled::Cancelled,
        })
    }
}

impl<B: Records + Serialize + DeserializeOwned> DynSource for FeedSource<B> {
    fn next_batch(&mut self, _max: usize) -> Result<Pulled<AnyData>, StageError> {
        // A pushed batch goes on as the caller made it.
        Ok(self.pull()?.map(|b| Box::new(b) as AnyData))
    }

    fn size_hint(&self) -> Option<u64> {
        None
    }

    fn remaining_estimate(&self) -> Option<u64> {
        None
    }

    fn next_chunk(&mut self, _max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        let pulled = self.pull()?;
        if let Pulled::Data(b, _) = &pulled {
            crate::stage::encode_batch(b, out)?;
        }
        Ok(pulled.map(drop))
    }

    /// A pushed batch crosses to workers in bincode, one batch a chunk.
    fn chunk_decoder(&self) -> Option<Box<dyn DynChunkDecoder>> {
        Some(Box::new(WholeBatch::<B>::new()))
    }

    fn attach_feed(&mut self, feed: &dyn Any) -> bool {
        match feed.downcast_ref::<Arc<Feed<B>>>() {
            Some(feed) => {
                self.feed = Some(Arc::clone(feed));
                true
            }
            None => false,
        }
    }
}

impl Pipeline {
    /// Starts a pipeline whose input is pushed through a [`RunHandle`](crate::RunHandle) handle
    /// (see [`Pipeline::start`]); in multiprocess mode the batches cross to
    /// workers in bincode.
    pub fn input<B>(
        name: impl Into<String>,
        source_name: impl Into<String>,
    ) -> crate::PipelineBuilder<B>
    where
        B: Records + Serialize + DeserializeOwned,
    {
        crate::pipeline::builder_from(name, source_name, Box::new(FeedSource::<B> { feed: None }))
    }
}
