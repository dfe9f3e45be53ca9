//! The coordinator actor: starts every actor of a pipeline-mode run on its
//! own [`Arbiter`], wires each one to its neighbours, watches the cancel
//! flag, and ends the run: on success it collects every actor's stats; on
//! a failure or cancellation it has the sink actor abort (temporary outputs
//! removed) and reports the error. Either way it hands its arbiters back to
//! [`execute`](super::execute), which stops and joins them.

use super::credits::{Batch, Grant};
use super::sink_actor::{Abort, ConnectSink, SinkActor, SinkStart};
use super::source_actor::{ConnectSource, SourceActor, SourceStart};
use super::stage_actor::{ConnectStage, StageActor};
use super::TakeStats;
use crate::error::RunError;
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::metrics::StageStats;
use crate::mode::Cancel;
use crate::pipeline::{DynAggregate, DynSink, DynSource, DynStage, Named};
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::oneshot;

/// An actor reports that the run cannot go on.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct Failed {
    /// Why.
    pub(crate) error: RunError,
}

/// The sink actor wrote the result.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Finished;

/// The aggregate, the sink, and where they start.
pub(crate) type SinkParts = (
    Named<Box<dyn DynAggregate>>,
    Named<Box<dyn DynSink>>,
    SinkStart,
);

/// A layer of stage actors: the stages each actor runs (one, or a lane of
/// neighbours run one after the other), and how many replicas it has.
pub(crate) type Layer = (Vec<Named<Box<dyn DynStage>>>, usize);

/// Everything the coordinator needs to start the actors.
pub(crate) struct Setup {
    /// The source and where it starts.
    pub(crate) source: (Named<Box<dyn DynSource>>, StageStats, SourceStart),
    /// The stage actors' layers, in order: the stages each actor of the
    /// layer runs (one, or a lane of neighbours), and the replica count.
    pub(crate) stages: Vec<Layer>,
    /// The aggregate, the sink, and where they start.
    pub(crate) sink: SinkParts,
    /// Batches that may wait before each actor.
    pub(crate) depth: usize,
    /// Raised to stop the run.
    pub(crate) cancel: Cancel,
    /// Where to publish the numbers so far, if the run has a live view.
    pub(crate) live: Option<LiveView>,
}

/// What the coordinator needs to publish the numbers so far.
pub(crate) struct LiveView {
    /// Publishes on the run's board.
    pub(crate) publisher: LivePublisher,
    /// The rows the actors' numbers add to (the `auto` probe's, or zeros).
    pub(crate) base: Vec<StageStats>,
    /// Replicas per stage.
    pub(crate) counts: Vec<usize>,
}

/// How the run ended, and the arbiters to stop and join.
pub(crate) struct Outcome {
    /// Stats of the source, every stage replica (in order) and the
    /// aggregate and sink; or why the run failed.
    pub(crate) result: Result<Vec<StageStats>, RunError>,
    /// Every arbiter the coordinator started.
    pub(crate) arbiters: Vec<Arbiter>,
}

/// The coordinator actor.
pub(crate) struct Coordinator {
    setup: Option<Setup>,
    cancel: Cancel,
    arbiters: Vec<Arbiter>,
    source: Option<Addr<SourceActor>>,
    stages: Vec<Addr<StageActor>>,
    /// Per layer of stage actors: the stages each runs, and the replicas.
    layout: Vec<(usize, usize)>,
    sink: Option<Addr<SinkActor>>,
    done: Option<oneshot::Sender<Outcome>>,
    ending: bool,
    live: Option<LiveView>,
    /// A live collection is under way (they never overlap).
    collecting: bool,
}

impl Coordinator {
    /// A coordinator that reports on `done`.
    pub(crate) fn new(setup: Setup, done: oneshot::Sender<Outcome>) -> Self {
        Coordinator {
            cancel: setup.cancel.clone(),
            setup: Some(setup),
            arbiters: Vec::new(),
            source: None,
            stages: Vec::new(),
            layout: Vec::new(),
            sink: None,
            done: Some(done),
            ending: false,
            live: None,
            collecting: false,
        }
    }

    /// Starts an actor on a new arbiter with a mailbox of `depth`.
    fn spawn<A>(&mut self, depth: usize, actor: A) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Send,
    {
        let arbiter = Arbiter::new();
        let addr = A::start_in_arbiter(&arbiter.handle(), move |ctx| {
            // Documents the bound; the credits are what enforce it.
            ctx.set_mailbox_capacity(depth);
            actor
        });
        self.arbiters.push(arbiter);
        addr
    }

    fn wire(&mut self, setup: Setup, ctx: &mut Context<Self>) {
        let depth = setup.depth;
        let failed = ctx.address().recipient::<Failed>();
        let (aggregate, sink, sink_start) = setup.sink;
        let sink_actor = SinkActor::new(
            aggregate,
            sink,
            sink_start,
            failed.clone(),
            ctx.address().recipient(),
        );
        let sink_addr = self.spawn(depth, sink_actor);
        let (source, source_stats, start) = setup.source;
        let first_seq = start.numbering.seq;
        let source_addr = self.spawn(
            depth,
            SourceActor::new(source, source_stats, start, failed.clone()),
        );
        let mut layers: Vec<Vec<Addr<StageActor>>> = Vec::new();
        for (stages, replicas) in setup.stages {
            self.layout.push((stages.len(), replicas));
            let layer: Vec<Addr<StageActor>> = (0..replicas)
                .map(|r| {
                    // Replica r takes the batches with seq % replicas == r.
                    let offset = (r as u64 + replicas as u64 - first_seq % replicas as u64)
                        % replicas as u64;
                    let named = stages
                        .iter()
                        .map(|stage| Named {
                            name: stage.name.clone(),
                            part: stage.part.clone_box(),
                        })
                        .collect();
                    let actor =
                        StageActor::new(named, first_seq + offset, replicas, depth, failed.clone());
                    self.spawn(depth, actor)
                })
                .collect();
            layers.push(layer);
        }
        let grants_of_source = vec![source_addr.clone().recipient::<Grant>()];
        for i in 0..layers.len() {
            let upstream = match i {
                0 => grants_of_source.clone(),
                _ => layers[i - 1]
                    .iter()
                    .map(|a| a.clone().recipient())
                    .collect(),
            };
            let downstream: Vec<Recipient<Batch>> = match layers.get(i + 1) {
                Some(next) => next.iter().map(|a| a.clone().recipient()).collect(),
                None => vec![sink_addr.clone().recipient()],
            };
            for actor in &layers[i] {
                // do_send is bounded: one wiring message per actor.
                actor.do_send(ConnectStage {
                    upstream: upstream.clone(),
                    downstream: downstream.clone(),
                });
            }
        }
        let (first, last) = match (layers.first(), layers.last()) {
            (Some(first), Some(last)) => (
                first.iter().map(|a| a.clone().recipient()).collect(),
                last.iter().map(|a| a.clone().recipient()).collect(),
            ),
            _ => (vec![sink_addr.clone().recipient()], grants_of_source),
        };
        // do_send is bounded: one wiring message per actor.
        sink_addr.do_send(ConnectSink { upstream: last });
        // do_send is bounded: one wiring message per actor.
        source_addr.do_send(ConnectSource {
            downstream: first,
            end: sink_addr.clone().recipient(),
            snapshots: sink_addr.clone().recipient(),
        });
        self.source = Some(source_addr);
        self.stages = layers.into_iter().flatten().collect();
        self.sink = Some(sink_addr);
    }

    /// Every actor, for a stats collection.
    fn stats_recipients(&self) -> Vec<Recipient<TakeStats>> {
        let mut actors: Vec<Recipient<TakeStats>> = Vec::new();
        actors.extend(self.source.iter().map(|a| a.clone().recipient()));
        actors.extend(self.stages.iter().map(|a| a.clone().recipient()));
        actors.extend(self.sink.iter().map(|a| a.clone().recipient()));
        actors
    }

    /// Collects every actor's numbers (each answers between two batches)
    /// and publishes them, unless the run is ending.
    fn publish_live(&mut self, ctx: &mut Context<Self>) {
        if self.ending || self.collecting || self.live.is_none() {
            return;
        }
        self.collecting = true;
        let actors = self.stats_recipients();
        let layout = self.layout.clone();
        let collect = async move {
            let mut rows = Vec::new();
            for actor in actors {
                rows.extend(actor.send(TakeStats).await.ok()?);
            }
            Some(stage_major(rows, &layout))
        };
        // Spawned, not waited on: the coordinator keeps handling failures.
        ctx.spawn(collect.into_actor(self).map(|rows, act, _| {
            act.collecting = false;
            if let (Some(rows), Some(live), false) = (rows, &act.live, act.ending) {
                let stats = super::combine(live.base.clone(), &live.counts, rows);
                live.publisher.publish(&stats, Vec::new(), Vec::new());
            }
        }));
    }

    fn report(&mut self, result: Result<Vec<StageStats>, RunError>, ctx: &mut Context<Self>) {
        if let Some(done) = self.done.take() {
            let arbiters = std::mem::take(&mut self.arbiters);
            let _ = done.send(Outcome { result, arbiters });
        }
        ctx.stop();
    }

    fn fail(&mut self, error: RunError, ctx: &mut Context<Self>) {
        // Only the first failure counts.
        if self.ending {
            return;
        }
        self.ending = true;
        let sink = self.sink.clone();
        let abort = async move {
            if let Some(sink) = sink {
                let _ = sink.send(Abort).timeout(Duration::from_secs(1)).await;
            }
        };
        ctx.wait(
            abort
                .into_actor(self)
                .map(move |(), act, ctx| act.report(Err(error), ctx)),
        );
    }
}

/// The actors' rows (the source's; per layer, each replica's rows for the
/// stages it runs; the aggregate's and the sink's) in the order
/// [`combine`](super::combine) takes them: each stage's replicas together.
fn stage_major(rows: Vec<StageStats>, layout: &[(usize, usize)]) -> Vec<StageStats> {
    let in_layers: usize = layout.iter().map(|&(k, n)| k * n).sum();
    if layout.iter().all(|&(k, _)| k == 1) || rows.len() < 1 + in_layers {
        return rows;
    }
    let mut rows: Vec<Option<StageStats>> = rows.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(rows.len());
    out.extend(rows[0].take());
    let mut at = 1;
    for &(k, n) in layout {
        for stage in 0..k {
            for replica in 0..n {
                out.extend(rows[at + replica * k + stage].take());
            }
        }
        at += k * n;
    }
    out.extend(rows[at..].iter_mut().filter_map(Option::take));
    out
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(mut setup) = self.setup.take() else {
            return;
        };
        self.live = setup.live.take();
        self.wire(setup, ctx);
        if self.live.is_some() {
            ctx.run_interval(PUBLISH_EVERY, |act, ctx| act.publish_live(ctx));
        }
        // Awaited, not polled: an idle long-lived pipeline costs nothing.
        let cancel = self.cancel.clone();
        ctx.spawn(
            async move { cancel.cancelled().await }
                .into_actor(self)
                .map(|(), act, ctx| act.fail(RunError::Interrupted, ctx)),
        );
    }
}

impl Handler<Failed> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Failed, ctx: &mut Context<Self>) {
        self.fail(msg.error, ctx);
    }
}

impl Handler<Finished> for Coordinator {
    type Result = ();

    fn handle(&mut self, _: Finished, ctx: &mut Context<Self>) {
        if self.ending {
            return;
        }
        self.ending = true;
        let actors = self.stats_recipients();
        let layout = self.layout.clone();
        let collect = async move {
            let mut stats = Vec::new();
            for actor in actors {
                let part = actor
                    .send(TakeStats)
                    .await
                    .map_err(|e| RunError::Runtime(format!("cannot collect stats: {e}")))?;
                stats.extend(part);
            }
            Ok(stage_major(stats, &layout))
        };
        ctx.wait(
            collect
                .into_actor(self)
                .map(|result, act, ctx| act.report(result, ctx)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::StageKind;

    fn row(name: &str, batches: u64) -> StageStats {
        let mut s = StageStats::new(name, StageKind::Stage);
        s.batches = batches;
        s
    }

    #[test]
    fn lane_rows_are_put_stage_by_stage_for_combine() {
        // source; a lane of parse+enrich in 2 replicas; a single tag stage; aggregate, sink.
        let rows = vec![
            row("read", 9),
            row("parse", 1),
            row("enrich", 1),
            row("parse", 2),
            row("enrich", 2),
            row("tag", 3),
            row("metrics", 9),
            row("write", 9),
        ];
        let got: Vec<(String, u64)> = stage_major(rows, &[(2, 2), (1, 1)])
            .into_iter()
            .map(|s| (s.name, s.batches))
            .collect();
        let want = [
            ("read", 9),
            ("parse", 1),
            ("parse", 2),
            ("enrich", 1),
            ("enrich", 2),
            ("tag", 3),
            ("metrics", 9),
            ("write", 9),
        ];
        let want: Vec<(String, u64)> = want.iter().map(|&(n, b)| (n.to_string(), b)).collect();
        assert_eq!(got, want);
        // One stage per actor: unchanged.
        let rows = vec![row("read", 1), row("a", 1), row("a", 2), row("w", 1)];
        let got: Vec<u64> = stage_major(rows, &[(1, 2)])
            .iter()
            .map(|s| s.batches)
            .collect();
        assert_eq!(got, vec![1, 1, 2, 1]);
    }
}
