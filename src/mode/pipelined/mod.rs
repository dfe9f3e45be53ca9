//! Pipeline mode: every part of the pipeline is an actor on its own
//! [`actix::Arbiter`] thread — the source, each replica of each
//! stage, and the aggregate with the sink — wired by a coordinator actor.
//!
//! Batches flow downstream only on credit (see `credits.rs`): no actor ever
//! has more than `queue_depth` batches queued, and a slow stage slows the
//! source down. A stage may run as several replicas ([`Replicas`]); batch
//! `seq` goes to replica `seq % n`, and the receivers put batches back in
//! order through their bounded reorder buffers.
//!
//! Over plain files that it can read by byte ranges (unless `--replicas
//! STAGE=N` asks for the actors), the mode runs reading lanes instead of
//! actors: one thread per core reads its own chunks and runs every part on
//! them (`lanes.rs`). With `--replicas auto` on the actors, a probe sets
//! the replica counts, or packs cheap stages onto the source's or the
//! sink's actor ([`replicas::pack`]).
//!
//! Files: `coordinator.rs` (wiring, failure, shutdown), `source_actor.rs`,
//! `stage_actor.rs`, `sink_actor.rs` (aggregate + sink), `credits.rs` (flow
//! control), [`reorder`](crate::mode::reorder) (the bounded reorder buffer), [`replicas`] (the
//! `--replicas` setting and the `auto` planner), `probe.rs` (the serial
//! probe `auto` measures with), `lanes.rs` (the reading lanes).

pub(crate) mod coordinator;
pub(crate) mod credits;
pub(crate) mod lanes;
pub(crate) mod probe;
pub mod replicas;
pub(crate) mod sink_actor;
pub(crate) mod source_actor;
pub(crate) mod stage_actor;

pub use replicas::Replicas;

use super::inline::run_sink_finish;
use super::RunConfig;
use crate::error::RunError;
use crate::live::publisher::LivePublisher;
use crate::metrics::{ProcessSampler, RunReport, StageKind, StageStats};
use crate::pipeline::{Named, Pipeline};
use crate::plan::{Engine, Plan};
use crate::stage::Numbering;
use actix::prelude::*;
use coordinator::{Coordinator, Outcome, Setup};
use sink_actor::SinkStart;
use source_actor::SourceStart;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A stage of the pipeline, as the actors run it.
type Stage = Named<Box<dyn crate::pipeline::DynStage>>;

/// Asks an actor for its stats (one row per part it runs).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<StageStats>")]
pub(crate) struct TakeStats;

/// The stages an actor runs, each with its row of the report.
pub(crate) type StagesWithStats = Vec<(Named<Box<dyn crate::pipeline::DynStage>>, StageStats)>;

/// `stages`, each with a fresh row.
pub(crate) fn with_stats(
    stages: Vec<Named<Box<dyn crate::pipeline::DynStage>>>,
) -> StagesWithStats {
    stages
        .into_iter()
        .map(|stage| {
            let stats = StageStats::new(&stage.name, StageKind::Stage);
            (stage, stats)
        })
        .collect()
}

/// The rows of the stages an actor runs: each gets the actor's idle and
/// blocked time; the first, which the actor's queue feeds, the queue's
/// numbers.
pub(crate) fn stage_rows(
    stages: &StagesWithStats,
    inbox: &credits::Inbox,
    blocked: Duration,
) -> Vec<StageStats> {
    stages
        .iter()
        .enumerate()
        .map(|(i, (_, stats))| {
            let mut stats = stats.clone();
            stats.idle = inbox.idle();
            stats.blocked = blocked;
            if i == 0 {
                stats.queue_high_water = inbox.high_water();
                stats.queue_length = inbox.queued();
            }
            stats
        })
        .collect()
}

/// Runs `pipeline` in pipeline mode, on the engine `plan` chose (reading
/// lanes or stage actors). Must be called inside an actix `System`.
pub async fn execute(
    mut pipeline: Pipeline,
    config: &RunConfig,
    plan: &Plan,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    if plan.engine == Engine::ReadingLanes {
        lanes::take(&mut pipeline)?;
        return lanes::execute(pipeline, config, plan, started).await;
    }
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let name = pipeline.name.clone();
    let stage_names: Vec<String> = pipeline.stages.iter().map(|s| s.name.clone()).collect();
    let others = vec![
        pipeline.source.name.clone(),
        pipeline.aggregate.name.clone(),
        pipeline.sink.name.clone(),
    ];
    let mut counts = config.replicas.counts(&stage_names, &others)?;
    if let Some(total) = pipeline.source.part.size_hint() {
        config.progress.set_total(total);
    }
    let mut stats = pipeline.fresh_stats();
    let mut acc = pipeline.aggregate.part.empty();
    let mut numbering = Numbering::new();
    // Parts per actor, when `auto` packs them (see `replicas::pack`).
    let mut packing = None;
    if plan.probe {
        let probed = match probe::probe(&mut pipeline, config, &mut acc, &mut stats) {
            Ok(p) => p,
            Err(e) => {
                pipeline.sink.part.abort();
                return Err(e);
            }
        };
        if probed.exhausted {
            // The whole input fitted in the probe: finish as serial mode would.
            let n = stats.len();
            if let Err(e) = run_sink_finish(&mut pipeline.sink, acc, &mut stats[n - 1]) {
                pipeline.sink.part.abort();
                return Err(e);
            }
            let wall = started.elapsed();
            return Ok(report(&name, wall, stats, sampler));
        }
        numbering = probed.numbering;
        let m = &probed.measured;
        let n = counts.len();
        let costs: Vec<f64> = m[1..=n].iter().map(Duration::as_secs_f64).collect();
        // The other actors: the source, and the aggregate with the sink.
        let others = [m[0].as_secs_f64(), (m[n + 1] + m[n + 2]).as_secs_f64()];
        counts = replicas::plan_auto(&costs, &others, plan.cores);
        if counts.iter().all(|&c| c == 1) {
            // No stage got a spare core: fewer actors, cut where the
            // measured costs balance.
            let parts: Vec<f64> = std::iter::once(others[0])
                .chain(costs.iter().copied())
                .chain(std::iter::once(others[1]))
                .collect();
            packing = Some(replicas::pack(&parts, plan.cores));
        }
        tracing::info!(
            ?counts,
            ?costs,
            ?others,
            ?packing,
            "replicas auto: measured {} batches",
            numbering.seq
        );
    }
    let (source_stages, layers, sink_stages) = match &packing {
        Some(sizes) => packed(pipeline.stages, sizes),
        None => (
            Vec::new(),
            layers(pipeline.stages, &counts, config.replicas == Replicas::Auto),
            Vec::new(),
        ),
    };
    let n_stages = counts.len();
    let base = stats;
    let setup = Setup {
        source: (
            pipeline.source,
            StageStats::new(&base[0].name, StageKind::Source),
            SourceStart {
                numbering,
                batch_size: config.batch_size,
                cancel: config.cancel.clone(),
                progress: config.progress.clone(),
                stages: source_stages,
            },
        ),
        stages: layers,
        sink: (
            pipeline.aggregate,
            pipeline.sink,
            SinkStart {
                acc,
                first_seq: numbering.seq,
                depth: config.queue_depth,
                stats: (
                    StageStats::new(&base[n_stages + 1].name, StageKind::Aggregate),
                    StageStats::new(&base[n_stages + 2].name, StageKind::Sink),
                ),
                stages: sink_stages,
            },
        ),
        depth: config.queue_depth,
        cancel: config.cancel.clone(),
        live: config.live.clone().map(|board| coordinator::LiveView {
            publisher: LivePublisher::new(board, &name, super::Mode::Pipelined, config.queue_depth),
            base: base.clone(),
            counts: counts.clone(),
        }),
    };
    let (tx, rx) = oneshot::channel();
    Coordinator::new(setup, tx).start();
    let outcome = rx.await;
    let wall = started.elapsed();
    let (result, arbiters) = match outcome {
        Ok(Outcome { result, arbiters }) => (result, arbiters),
        Err(_) => (
            Err(RunError::Runtime("the coordinator vanished".into())),
            Vec::new(),
        ),
    };
    for arbiter in &arbiters {
        arbiter.stop();
    }
    let _ = tokio::task::spawn_blocking(move || {
        for arbiter in arbiters {
            let _ = arbiter.join();
        }
    })
    .await;
    let rows = result?;
    Ok(report(&name, wall, combine(base, &counts, rows), sampler))
}

/// The stage actors' layers for `stages` with `counts` replicas each: one
/// actor per stage, except that with `lanes` (`--replicas auto`)
/// neighbouring stages with the same count above one share their actors —
/// a lane of stages runs on each replica's thread, so a batch stays in one
/// core's cache from one stage to the next instead of crossing to
/// another thread.
fn layers(
    stages: Vec<Named<Box<dyn crate::pipeline::DynStage>>>,
    counts: &[usize],
    lanes: bool,
) -> Vec<coordinator::Layer> {
    let mut out: Vec<coordinator::Layer> = Vec::new();
    for (stage, &n) in stages.into_iter().zip(counts) {
        match out.last_mut() {
            Some((lane, m)) if lanes && n > 1 && *m == n => lane.push(stage),
            _ => out.push((vec![stage], n)),
        }
    }
    out
}

/// The stages split as [`replicas::pack`] grouped the parts (`sizes`
/// parts per actor: the source's first, the sink's last): the stages the
/// source's actor runs, the layers of stage actors between (one replica
/// each), and the stages the sink's actor runs.
fn packed(
    stages: Vec<Stage>,
    sizes: &[usize],
) -> (Vec<Stage>, Vec<coordinator::Layer>, Vec<Stage>) {
    let mut stages = stages.into_iter();
    let (first, middle) = match sizes {
        [first, middle @ .., _] => (*first, middle),
        _ => (1, &[][..]),
    };
    let at_source: Vec<_> = stages.by_ref().take(first.saturating_sub(1)).collect();
    let layers = middle
        .iter()
        .map(|&n| (stages.by_ref().take(n).collect(), 1))
        .collect();
    // The rest: the sink's.
    (at_source, layers, stages.collect())
}

/// One row per part from the actors' rows (source, each replica of each
/// stage in order, aggregate, sink) added to `base` (the probe's numbers,
/// or zeros), with `counts` replicas per stage.
pub(crate) fn combine(
    mut stats: Vec<StageStats>,
    counts: &[usize],
    rows: Vec<StageStats>,
) -> Vec<StageStats> {
    let n_stages = counts.len();
    let mut rows = rows.into_iter();
    let mut take = |into: &mut StageStats, replicas: usize| {
        for _ in 0..replicas {
            if let Some(row) = rows.next() {
                into.absorb(&row);
            }
        }
        into.replicas = replicas;
    };
    take(&mut stats[0], 1);
    for (i, &n) in counts.iter().enumerate() {
        take(&mut stats[i + 1], n);
    }
    take(&mut stats[n_stages + 1], 1);
    take(&mut stats[n_stages + 2], 1);
    stats
}

fn report(
    name: &str,
    wall: Duration,
    stats: Vec<StageStats>,
    sampler: ProcessSampler,
) -> RunReport {
    RunReport::new(name, super::Mode::Pipelined, wall, &stats, sampler.finish())
}
