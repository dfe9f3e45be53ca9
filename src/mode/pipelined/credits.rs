//! Credit-based flow control between pipeline-mode actors, and the two
//! messages it moves: [`Batch`] (downstream) and [`Grant`] (upstream).
//!
//! The receiver owns the credits. An [`Inbox`] grants its upstream senders
//! the right to send it specific sequence numbers: the next `queue_depth`
//! ones it expects, then one more each time it has taken a batch off its
//! queue and processed it. Batches it was not granted are refused. So the
//! queue (received − processed) never exceeds `queue_depth`, however many
//! senders there are (actix's mailbox alone does not guarantee this: see
//! actix issue 515), and the queue doubles as a bounded reorder buffer.
//!
//! An [`Outbox`] holds at most one processed batch until the receiver's
//! grant for its sequence number has arrived; the time spent holding it is
//! the sender's *blocked* time. A sender that is blocked processes nothing,
//! so a slow stage slows everything before it down to the source.

use crate::error::RunError;
use crate::mode::reorder::{Refused, ReorderBuffer};
use crate::pipeline::AnyData;
use crate::stage::BatchInfo;
use actix::prelude::*;
use rustc_hash::FxHashSet;
use std::time::{Duration, Instant};

/// One batch travelling to the next actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Batch {
    /// Where it sits in the input.
    pub(crate) info: BatchInfo,
    /// The payload.
    pub(crate) data: AnyData,
    /// Records in the payload.
    pub(crate) records: usize,
}

/// A receiver's permission to send it batch `seq`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Grant {
    /// The batch it may receive.
    pub(crate) seq: u64,
}

/// The receiving side: a window of granted sequence numbers and the batches
/// that arrived in it.
pub(crate) struct Inbox {
    queue: ReorderBuffer<Batch>,
    upstream: Vec<Recipient<Grant>>,
    depth: usize,
    stride: u64,
    next_grant: u64,
    received: u64,
    processed: u64,
    high_water: usize,
    idle_since: Option<Instant>,
    idle: Duration,
}

impl Inbox {
    /// An inbox expecting `first`, `first + stride`, … with `depth` slots.
    pub(crate) fn new(first: u64, stride: u64, depth: usize) -> Self {
        Inbox {
            queue: ReorderBuffer::new(first, stride, depth),
            upstream: Vec::new(),
            depth,
            stride,
            next_grant: first,
            received: 0,
            processed: 0,
            high_water: 0,
            idle_since: Some(Instant::now()),
            idle: Duration::ZERO,
        }
    }

    /// Connects the senders (batch `seq` comes from `upstream[seq % len]`)
    /// and grants the first `depth` batches.
    pub(crate) fn connect(&mut self, upstream: Vec<Recipient<Grant>>) {
        self.upstream = upstream;
        for _ in 0..self.depth {
            self.grant_next();
        }
    }

    fn grant_next(&mut self) {
        let seq = self.next_grant;
        self.next_grant += self.stride;
        if self.upstream.is_empty() {
            return;
        }
        let to = &self.upstream[(seq % self.upstream.len() as u64) as usize];
        // do_send is bounded: at most `depth` grants of this inbox are outstanding.
        to.do_send(Grant { seq });
    }

    /// Queues an arriving batch; refuses one that was never granted.
    pub(crate) fn receive(&mut self, batch: Batch, who: &str) -> Result<(), RunError> {
        let seq = batch.info.seq;
        self.queue.insert(seq, batch).map_err(|why| {
            let why = match why {
                Refused::OutOfWindow => "was not granted credit",
                Refused::Duplicate => "arrived twice",
            };
            RunError::Runtime(format!("{who}: batch {seq} {why}"))
        })?;
        self.received += 1;
        let queued = (self.received - self.processed) as usize;
        self.high_water = self.high_water.max(queued);
        Ok(())
    }

    /// The next batch in order, if it has arrived; ends an idle period.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        let batch = self.queue.pop()?;
        if let Some(since) = self.idle_since.take() {
            self.idle += since.elapsed();
        }
        Some(batch)
    }

    /// The batch taken last is processed: grant the next one upstream.
    pub(crate) fn processed(&mut self) {
        self.processed += 1;
        self.grant_next();
    }

    /// The actor has nothing to do: idle time starts (if not already).
    pub(crate) fn wait(&mut self) {
        self.idle_since.get_or_insert_with(Instant::now);
    }

    /// The sequence number expected next.
    pub(crate) fn next_seq(&self) -> u64 {
        self.queue.next_seq()
    }

    /// Batches queued now (received, not yet processed).
    pub(crate) fn queued(&self) -> usize {
        (self.received - self.processed) as usize
    }

    /// Most batches ever queued.
    pub(crate) fn high_water(&self) -> usize {
        self.high_water
    }

    /// Idle time so far (including a running idle period).
    pub(crate) fn idle(&self) -> Duration {
        self.idle + self.idle_since.map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// The sending side: grants received, and at most one batch held back.
pub(crate) struct Outbox {
    downstream: Vec<Recipient<Batch>>,
    granted: FxHashSet<u64>,
    held: Option<Batch>,
    blocked_since: Option<Instant>,
    blocked: Duration,
}

impl Outbox {
    /// An outbox not yet connected.
    pub(crate) fn new() -> Self {
        Outbox {
            downstream: Vec::new(),
            granted: FxHashSet::default(),
            held: None,
            blocked_since: None,
            blocked: Duration::ZERO,
        }
    }

    /// Connects the receivers: batch `seq` goes to `downstream[seq % len]`.
    pub(crate) fn connect(&mut self, downstream: Vec<Recipient<Batch>>) {
        self.downstream = downstream;
    }

    /// Records a grant.
    pub(crate) fn grant(&mut self, seq: u64) {
        self.granted.insert(seq);
    }

    /// Holds a processed batch until it can be sent.
    pub(crate) fn hold(&mut self, batch: Batch) {
        debug_assert!(self.held.is_none(), "an outbox holds one batch");
        self.held = Some(batch);
    }

    /// Sends the held batch if its grant arrived. True when nothing is held
    /// afterwards; false when blocked (blocked time starts or goes on).
    pub(crate) fn flush(&mut self) -> bool {
        let Some(seq) = self.held.as_ref().map(|b| b.info.seq) else {
            return true;
        };
        if self.downstream.is_empty() || !self.granted.remove(&seq) {
            self.blocked_since.get_or_insert_with(Instant::now);
            return false;
        }
        if let Some(since) = self.blocked_since.take() {
            self.blocked += since.elapsed();
        }
        let to = &self.downstream[(seq % self.downstream.len() as u64) as usize];
        if let Some(batch) = self.held.take() {
            // do_send is bounded: we hold the receiver's grant for this very batch.
            to.do_send(batch);
        }
        true
    }

    /// Time spent holding a batch without a grant.
    pub(crate) fn blocked(&self) -> Duration {
        self.blocked + self.blocked_since.map_or(Duration::ZERO, |s| s.elapsed())
    }
}
