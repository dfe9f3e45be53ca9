//! The sink actor: runs the stages packed onto its thread (`--replicas
//! auto` may put cheap stages here, see [`pack`](super::replicas::pack)) on
//! each batch and folds it into the aggregate's partial strictly in
//! input order (its inbox is the bounded reorder buffer), lets the sink
//! stream its parts after each batch, and writes the result once the source
//! has said how many batches there were and all of them are folded in. On
//! failure or cancellation it aborts the sink, so no half-written output
//! is left.

use super::coordinator::{Failed, Finished};
use super::credits::{Batch, Grant, Inbox};
use super::TakeStats;
use crate::error::RunError;
use crate::metrics::{StageKind, StageStats};
use crate::mode::inline::{run_aggregate, run_sink_absorb, run_sink_finish, run_stages};
use crate::pipeline::{AnyData, DynAggregate, DynSink, DynStage, Named, SnapshotReq};
use actix::prelude::*;

/// The aggregate-and-sink actor.
pub(crate) struct SinkActor {
    /// Stages run on this thread before the aggregate, with their numbers.
    stages: super::StagesWithStats,
    aggregate: Named<Box<dyn DynAggregate>>,
    sink: Named<Box<dyn DynSink>>,
    acc: Option<AnyData>,
    inbox: Inbox,
    aggregate_stats: StageStats,
    sink_stats: StageStats,
    batches: Option<u64>,
    coordinator: Recipient<Failed>,
    finished: Option<Recipient<Finished>>,
    over: bool,
    /// Snapshot requests waiting for their batches, in input order.
    snapshots: std::collections::VecDeque<SnapshotAt>,
}

/// Answer `req` once the first `after` batches are folded in.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SnapshotAt {
    /// How many batches the source had sent before the request.
    pub(crate) after: u64,
    /// Where the copy goes.
    pub(crate) req: SnapshotReq,
}

/// The input ended after `batches` batches.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct End {
    /// How many batches the source produced in all.
    pub(crate) batches: u64,
}

/// The run failed or was cancelled: remove anything half-written.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Abort;

/// Wires the sink actor to the last stage's replicas (or the source).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectSink {
    /// Batch `seq` comes from `upstream[seq % len]`.
    pub(crate) upstream: Vec<Recipient<Grant>>,
}

/// Where the sink actor starts.
pub(crate) struct SinkStart {
    /// The partial so far (of the probe's batches, or empty).
    pub(crate) acc: AnyData,
    /// The first batch it has not seen.
    pub(crate) first_seq: u64,
    /// Queue depth.
    pub(crate) depth: usize,
    /// Stats of the aggregate and the sink so far.
    pub(crate) stats: (StageStats, StageStats),
    /// The stages it runs on each batch before the aggregate (none unless
    /// `--replicas auto` packed them here).
    pub(crate) stages: Vec<Named<Box<dyn DynStage>>>,
}

impl SinkActor {
    /// A sink actor that reports to `coordinator`.
    pub(crate) fn new(
        aggregate: Named<Box<dyn DynAggregate>>,
        sink: Named<Box<dyn DynSink>>,
        start: SinkStart,
        coordinator: Recipient<Failed>,
        finished: Recipient<Finished>,
    ) -> Self {
        debug_assert_eq!(start.stats.0.kind, StageKind::Aggregate);
        SinkActor {
            stages: super::with_stats(start.stages),
            aggregate,
            sink,
            acc: Some(start.acc),
            inbox: Inbox::new(start.first_seq, 1, start.depth),
            aggregate_stats: start.stats.0,
            sink_stats: start.stats.1,
            batches: None,
            coordinator,
            finished: Some(finished),
            over: false,
            snapshots: std::collections::VecDeque::new(),
        }
    }

    fn fail(&mut self, error: RunError) {
        self.abort();
        // do_send is bounded: one failure report per actor.
        self.coordinator.do_send(Failed { error });
    }

    fn abort(&mut self) {
        if !self.over {
            self.over = true;
            self.sink.part.abort();
        }
    }

    fn fold(&mut self, batch: Batch) -> Result<(), RunError> {
        let acc = self
            .acc
            .as_mut()
            .ok_or_else(|| RunError::Runtime("sink actor lost its partial".into()))?;
        let stages = self.stages.iter_mut().map(|(stage, stats)| (stage, stats));
        let (data, records) = run_stages(stages, (batch.data, batch.records), &batch.info, |_| {})?;
        run_aggregate(
            &mut self.aggregate,
            acc,
            data,
            records,
            &batch.info,
            &mut self.aggregate_stats,
        )?;
        run_sink_absorb(&mut self.sink, acc, &mut self.sink_stats)
    }

    /// Answers the snapshot requests whose batches are all folded in.
    fn answer_snapshots(&mut self) {
        while self
            .snapshots
            .front()
            .is_some_and(|s| s.after <= self.inbox.next_seq())
        {
            let Some(s) = self.snapshots.pop_front() else {
                break;
            };
            if let Some(acc) = &self.acc {
                s.req.answer(self.aggregate.part.as_ref(), acc);
            }
        }
    }

    fn pump(&mut self) {
        while !self.over {
            let Some(batch) = self.inbox.take() else {
                break;
            };
            if let Err(e) = self.fold(batch) {
                return self.fail(e);
            }
            self.inbox.processed();
            self.answer_snapshots();
        }
        if self.over {
            return;
        }
        if self.batches == Some(self.inbox.next_seq()) {
            let Some(acc) = self.acc.take() else {
                return self.fail(RunError::Runtime("sink actor lost its partial".into()));
            };
            if let Err(e) = run_sink_finish(&mut self.sink, acc, &mut self.sink_stats) {
                return self.fail(e);
            }
            self.over = true;
            if let Some(done) = self.finished.take() {
                // do_send is bounded: sent once.
                done.do_send(Finished);
            }
        } else {
            self.inbox.wait();
        }
    }
}

impl Actor for SinkActor {
    type Context = Context<Self>;
}

impl Handler<ConnectSink> for SinkActor {
    type Result = ();

    fn handle(&mut self, msg: ConnectSink, _: &mut Context<Self>) {
        self.inbox.connect(msg.upstream);
    }
}

impl Handler<Batch> for SinkActor {
    type Result = ();

    fn handle(&mut self, batch: Batch, _: &mut Context<Self>) {
        if self.over {
            return;
        }
        if let Err(e) = self.inbox.receive(batch, &self.aggregate.name) {
            return self.fail(e);
        }
        self.pump();
    }
}

impl Handler<End> for SinkActor {
    type Result = ();

    fn handle(&mut self, end: End, _: &mut Context<Self>) {
        self.batches = Some(end.batches);
        self.pump();
    }
}

impl Handler<SnapshotAt> for SinkActor {
    type Result = ();

    fn handle(&mut self, msg: SnapshotAt, _: &mut Context<Self>) {
        self.snapshots.push_back(msg);
        self.answer_snapshots();
    }
}

impl Handler<Abort> for SinkActor {
    type Result = ();

    fn handle(&mut self, _: Abort, _: &mut Context<Self>) {
        self.abort();
    }
}

impl Handler<TakeStats> for SinkActor {
    type Result = MessageResult<TakeStats>;

    /// One row per stage it runs (the first, which its queue feeds, with
    /// the queue's numbers), then the aggregate's and the sink's.
    fn handle(&mut self, _: TakeStats, _: &mut Context<Self>) -> Self::Result {
        let mut rows = super::stage_rows(&self.stages, &self.inbox, std::time::Duration::ZERO);
        let mut aggregate = self.aggregate_stats.clone();
        aggregate.idle += self.inbox.idle();
        aggregate.queue_high_water = self.inbox.high_water();
        aggregate.queue_length = self.inbox.queued();
        let mut sink = self.sink_stats.clone();
        sink.idle += self.inbox.idle();
        rows.extend([aggregate, sink]);
        MessageResult(rows)
    }
}
