//! The source actor: pulls batches from the pipeline's source, numbers
//! them, runs the stages packed onto its thread (`--replicas auto` may put
//! cheap stages here, see [`pack`](super::replicas::pack)), and sends each
//! batch as soon as the next actor has granted it. It
//! pulls a new batch only when the previous one is sent, so a slow stage
//! downstream throttles the source (its blocked time). It checks the cancel
//! flag between batches, and tells the sink actor how many batches there
//! were when the input ends.

use super::coordinator::Failed;
use super::credits::{Batch, Grant, Outbox};
use super::sink_actor::{End, SnapshotAt};
use super::TakeStats;
use crate::error::RunError;
use crate::metrics::{Progress, StageKind, StageStats};
use crate::mode::inline::{pull_source, run_stages};
use crate::mode::Cancel;
use crate::pipeline::{DynSource, DynStage, Named, Pulled};
use crate::stage::Numbering;
use actix::prelude::*;

/// The source actor.
pub(crate) struct SourceActor {
    source: Named<Box<dyn DynSource>>,
    outbox: Outbox,
    stats: StageStats,
    batch_size: usize,
    numbering: Numbering,
    cancel: Cancel,
    progress: Progress,
    coordinator: Recipient<Failed>,
    end: Option<Recipient<End>>,
    /// Where snapshot requests go (the sink actor answers them in order).
    snapshots: Option<Recipient<SnapshotAt>>,
    done: bool,
    /// Stages run on this thread after the source, each with its numbers.
    stages: super::StagesWithStats,
    /// The source is waiting for input; a wake-up is pending.
    waiting: bool,
}

/// Wires the source to the first actor(s) and the sink actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectSource {
    /// Batch `seq` goes to `downstream[seq % len]`.
    pub(crate) downstream: Vec<Recipient<Batch>>,
    /// Told the number of batches when the input ends.
    pub(crate) end: Recipient<End>,
    /// Answers snapshot requests once the batches before them are folded.
    pub(crate) snapshots: Recipient<SnapshotAt>,
}

/// Where the source starts (after a probe, not at zero) and how it reads.
pub(crate) struct SourceStart {
    /// Numbering of the first batch it pulls.
    pub(crate) numbering: Numbering,
    /// Records per batch.
    pub(crate) batch_size: usize,
    /// Checked between batches.
    pub(crate) cancel: Cancel,
    /// Counts records read.
    pub(crate) progress: Progress,
    /// The stages it runs on each batch before sending it (none unless
    /// `--replicas auto` packed them here).
    pub(crate) stages: Vec<Named<Box<dyn DynStage>>>,
}

impl SourceActor {
    /// A source actor that reports failures to `coordinator`.
    pub(crate) fn new(
        source: Named<Box<dyn DynSource>>,
        stats: StageStats,
        start: SourceStart,
        coordinator: Recipient<Failed>,
    ) -> Self {
        debug_assert_eq!(stats.kind, StageKind::Source);
        SourceActor {
            source,
            outbox: Outbox::new(),
            stats,
            batch_size: start.batch_size,
            numbering: start.numbering,
            cancel: start.cancel,
            progress: start.progress,
            coordinator,
            end: None,
            snapshots: None,
            done: false,
            stages: super::with_stats(start.stages),
            waiting: false,
        }
    }

    fn fail(&mut self, error: RunError) {
        self.done = true;
        // do_send is bounded: one failure report per actor.
        self.coordinator.do_send(Failed { error });
    }

    /// Pulls and sends batches while the downstream grants them. Does
    /// nothing before [`ConnectSource`]: a grant can arrive first (the first
    /// stage is wired, and grants, before this actor is), and pulling then
    /// could reach the end of an empty input with no one to tell — the sink
    /// would wait for `End` forever.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(end) = self.end.clone() else {
            return;
        };
        while !self.done && !self.waiting && self.outbox.flush() {
            if self.cancel.is_cancelled() {
                return self.fail(RunError::Interrupted);
            }
            let pulled = pull_source(
                &mut self.source,
                self.batch_size,
                &mut self.stats,
                &self.progress,
            );
            match pulled {
                Ok(Pulled::Data(data, records)) => {
                    let info = self.numbering.next(records);
                    let stages = self.stages.iter_mut().map(|(stage, stats)| (stage, stats));
                    let (data, records) = match run_stages(stages, (data, records), &info, |_| {}) {
                        Ok(out) => out,
                        Err(error) => return self.fail(error),
                    };
                    self.outbox.hold(Batch {
                        info,
                        data,
                        records,
                    });
                }
                Ok(Pulled::Pending(wake)) => {
                    // Never block the actor: come back when there is input.
                    self.waiting = true;
                    let wake = self.cancel.or_cancelled(wake);
                    ctx.spawn(wake.into_actor(self).map(|(), act, ctx| {
                        act.waiting = false;
                        act.pump(ctx);
                    }));
                }
                Ok(Pulled::Snapshot(req)) => match &self.snapshots {
                    // do_send is bounded: one per snapshot the caller awaits.
                    Some(to) => to.do_send(SnapshotAt {
                        after: self.numbering.seq,
                        req,
                    }),
                    None => {
                        return self.fail(RunError::Runtime(
                            "snapshot before the pipeline was wired".into(),
                        ))
                    }
                },
                Ok(Pulled::Cancelled) => self.fail(RunError::Interrupted),
                Ok(Pulled::End) => {
                    self.done = true;
                    // do_send is bounded: sent once.
                    end.do_send(End {
                        batches: self.numbering.seq,
                    });
                }
                Err(error) => self.fail(error),
            }
        }
    }
}

impl Actor for SourceActor {
    type Context = Context<Self>;
}

impl Handler<ConnectSource> for SourceActor {
    type Result = ();

    fn handle(&mut self, msg: ConnectSource, ctx: &mut Context<Self>) {
        self.outbox.connect(msg.downstream);
        self.end = Some(msg.end);
        self.snapshots = Some(msg.snapshots);
        // Grants may have come before the wiring (and were only recorded):
        // send what they allow.
        self.pump(ctx);
    }
}

impl Handler<Grant> for SourceActor {
    type Result = ();

    fn handle(&mut self, grant: Grant, ctx: &mut Context<Self>) {
        self.outbox.grant(grant.seq);
        // Before the wiring, pump() only leaves the grant recorded.
        self.pump(ctx);
    }
}

impl Handler<TakeStats> for SourceActor {
    type Result = MessageResult<TakeStats>;

    /// The source's row, then one per stage it runs.
    fn handle(&mut self, _: TakeStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = self.stats.clone();
        stats.blocked = self.outbox.blocked();
        let mut rows = vec![stats];
        rows.extend(self.stages.iter().map(|(_, stats)| {
            let mut stats = stats.clone();
            stats.blocked = self.outbox.blocked();
            stats
        }));
        MessageResult(rows)
    }
}
