//! One replica of a transforming stage: takes granted batches off its
//! queue in sequence order, runs the stage on each (timed, panics caught),
//! returns a credit upstream, and holds the output until the next actor
//! grants it.

use super::coordinator::Failed;
use super::credits::{Batch, Grant, Inbox, Outbox};
use super::TakeStats;
use crate::metrics::{StageKind, StageStats};
use crate::mode::inline::run_stage;
use crate::pipeline::{DynStage, Named};
use actix::prelude::*;

/// A stage replica actor.
pub(crate) struct StageActor {
    stage: Named<Box<dyn DynStage>>,
    inbox: Inbox,
    outbox: Outbox,
    stats: StageStats,
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
    /// Replica `replica` of `replicas` of `stage`, whose first batch is
    /// `first_seq`; at most `depth` batches may wait in its queue.
    pub(crate) fn new(
        stage: Named<Box<dyn DynStage>>,
        first_seq: u64,
        replicas: usize,
        depth: usize,
        coordinator: Recipient<Failed>,
    ) -> Self {
        let stats = StageStats::new(&stage.name, StageKind::Stage);
        StageActor {
            stage,
            inbox: Inbox::new(first_seq, replicas as u64, depth),
            outbox: Outbox::new(),
            stats,
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
            match run_stage(
                &mut self.stage,
                batch.data,
                batch.records,
                &info,
                &mut self.stats,
            ) {
                Ok((data, records)) => {
                    self.inbox.processed();
                    self.outbox.hold(Batch {
                        info,
                        data,
                        records,
                    });
                }
                Err(error) => {
                    self.failed = true;
                    // do_send is bounded: one failure report per actor.
                    self.coordinator.do_send(Failed { error });
                }
            }
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
        if let Err(error) = self.inbox.receive(batch, &self.stage.name) {
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

    fn handle(&mut self, _: TakeStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = self.stats.clone();
        stats.idle = self.inbox.idle();
        stats.blocked = self.outbox.blocked();
        stats.queue_high_water = self.inbox.high_water();
        stats.queue_length = self.inbox.queued();
        MessageResult(vec![stats])
    }
}
