//! One replica of a transforming stage, or of a lane of neighbouring
//! stages that share an actor: takes granted batches off its queue in
//! sequence order, runs the stage (each stage of the lane in turn) on each
//! (timed, panics caught), returns a credit upstream, and holds the output
//! until the next actor grants it.

use super::coordinator::Failed;
use super::credits::{Batch, Grant, Inbox, Outbox};
use super::TakeStats;
use crate::mode::inline::run_stages;
use crate::pipeline::{DynStage, Named};
use actix::prelude::*;

/// A stage replica actor.
pub(crate) struct StageActor {
    /// The stages it runs, in order, each with its numbers.
    stages: super::StagesWithStats,
    inbox: Inbox,
    outbox: Outbox,
    coordinator: Recipient<Failed>,
    failed: bool,
}

/// Wires a stage replica to its neighbours.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectStage {
    /// Where grants go: batch `seq` comes from `upstream[seq % len]`.
    pub(crate) upstream: Vec<Recipient<Grant>>,
    /// Where outputs go: batch `seq` goes to `downstream[seq % len]`.
    pub(crate) downstream: Vec<Recipient<Batch>>,
}

impl StageActor {
    /// One of `replicas` replicas of `stages` (one stage, or a lane of
    /// neighbouring ones run one after the other on each batch), whose
    /// first batch is `first_seq`; at most `depth` batches may wait in its
    /// queue.
    pub(crate) fn new(
        stages: Vec<Named<Box<dyn DynStage>>>,
        first_seq: u64,
        replicas: usize,
        depth: usize,
        coordinator: Recipient<Failed>,
    ) -> Self {
        StageActor {
            stages: super::with_stats(stages),
            inbox: Inbox::new(first_seq, replicas as u64, depth),
            outbox: Outbox::new(),
            coordinator,
            failed: false,
        }
    }

    /// Works as long as there is input and room downstream.
    fn pump(&mut self) {
        while !self.failed && self.outbox.flush() {
            let Some(batch) = self.inbox.take() else {
                self.inbox.wait();
                return;
            };
            let info = batch.info;
            let stages = self.stages.iter_mut().map(|(stage, stats)| (stage, stats));
            let out = run_stages(stages, (batch.data, batch.records), &info, |_| {});
            let (data, records) = match out {
                Ok(out) => out,
                Err(error) => {
                    self.failed = true;
                    // do_send is bounded: one failure report per actor.
                    self.coordinator.do_send(Failed { error });
                    return;
                }
            };
            self.inbox.processed();
            self.outbox.hold(Batch {
                info,
                data,
                records,
            });
        }
    }
}

impl Actor for StageActor {
    type Context = Context<Self>;
}

impl Handler<ConnectStage> for StageActor {
    type Result = ();

    fn handle(&mut self, msg: ConnectStage, _: &mut Context<Self>) {
        self.outbox.connect(msg.downstream);
        self.inbox.connect(msg.upstream);
        // Grants may have come before the wiring: send what they allow.
        self.pump();
    }
}

impl Handler<Batch> for StageActor {
    type Result = ();

    fn handle(&mut self, batch: Batch, _: &mut Context<Self>) {
        // The queue feeds the first stage: its name is the actor's.
        let name = self.stages.first().map_or("", |(s, _)| s.name.as_str());
        if let Err(error) = self.inbox.receive(batch, name) {
            self.failed = true;
            // do_send is bounded: one failure report per actor.
            self.coordinator.do_send(Failed { error });
        }
        self.pump();
    }
}

impl Handler<Grant> for StageActor {
    type Result = ();

    fn handle(&mut self, grant: Grant, _: &mut Context<Self>) {
        self.outbox.grant(grant.seq);
        self.pump();
    }
}

impl Handler<TakeStats> for StageActor {
    type Result = MessageResult<TakeStats>;

    /// One row per stage it runs: each gets the actor's idle and blocked
    /// time; the first, which the queue feeds, its queue's numbers.
    fn handle(&mut self, _: TakeStats, _: &mut Context<Self>) -> Self::Result {
        let rows = super::stage_rows(&self.stages, &self.inbox, self.outbox.blocked());
        MessageResult(rows)
    }
}
