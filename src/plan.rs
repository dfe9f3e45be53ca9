//! How a run executes, decided once, before it starts: [`plan`] takes what
//! the pipeline says about itself ([`PipelineFacts`]), the run's settings
//! ([`RunConfig`]) and the machine ([`Machine`]), and gives a [`Plan`]: the
//! engine, the transport, how chunks are cut and sized, the batch size, the
//! worker or lane count, and why. The modes then execute the plan; none of
//! them decides any of this again. The plan is logged once, written to
//! `report.json` as `plan`, and shown under the report table.
//!
//! `plan` is pure: the same facts, settings and machine give the same plan
//! (the unit tests build facts by hand). What the plan cannot know before
//! the run — which remote workers join and whether they can read the
//! inputs, what each stage costs per record — is measured while the run
//! goes: the plan says where that happens (the `--replicas auto` probe,
//! the coordinator's first chunk).
//!
//! Files: [`facts`] (what a pipeline and this machine say), [`sizing`]
//! (the one chunk-sizing rule), [`limits`] (the small-input limits, flags
//! with documented defaults), `tests.rs`.

pub mod facts;
pub mod limits;
pub mod sizing;

pub use facts::{Machine, PipelineFacts};
pub use limits::InlineLimits;
pub use sizing::ChunkSizing;

use crate::mode::{Mode, Replicas, RunConfig};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What runs the pipeline's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Every part on one thread, batch after batch, as serial mode runs.
    Inline,
    /// An actor per stage (or per replica) with credit backpressure
    /// (pipeline mode); with `--replicas auto`, counts measured by a
    /// probe of the first batches.
    StageActors,
    /// One thread per lane, each reading its own byte ranges of the input
    /// and running every part on them (pipeline mode, `--replicas auto`).
    ReadingLanes,
    /// Worker processes run chunks; a coordinator merges their partials
    /// in order (multiprocess mode).
    WorkerProcesses,
}

/// Where the chunks or batches travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Threads of this process.
    Threads,
    /// Worker processes this run starts on this machine, over loopback.
    LocalWorkers,
    /// Local workers, and remote ones that may join (a token, an address
    /// others can reach, or a fixed port).
    LocalAndRemoteWorkers,
    /// Remote workers only (`--workers 0`).
    RemoteWorkers,
}

/// How the input is cut into the units the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chunking {
    /// Batches pulled from the source in this process.
    Records,
    /// Byte ranges of the input files whose records were counted when cut
    /// (the coordinator numbers each chunk's first record).
    CountedRanges,
    /// Byte ranges cut at about a chunk's worth of bytes, moved to a
    /// record's end; the reader counts their records, and the aggregate
    /// renumbers each partial when it is merged.
    UncountedRanges,
    /// Chunks in the source's wire form (its text, for lines), read and
    /// framed by the coordinator and shipped to the workers.
    ShippedText,
}

impl Chunking {
    /// Whether chunks are byte ranges of files that their reader opens.
    pub fn is_ranges(self) -> bool {
        matches!(self, Chunking::CountedRanges | Chunking::UncountedRanges)
    }
}

/// How the run executes, and why (see the module text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The mode asked for (the report's `mode`).
    pub mode: Mode,
    /// What runs the parts.
    pub engine: Engine,
    /// Where chunks travel.
    pub transport: Transport,
    /// How the input is cut.
    pub chunking: Chunking,
    /// Multiprocess mode over ranges: a worker that cannot read a range's
    /// file (one not allowed to read its directory, a remote one) gets the
    /// ranges' bytes from the coordinator instead (shipped ranges).
    pub ships_ranges: bool,
    /// How many records a chunk holds (multiprocess chunks, reading lanes'
    /// chunks; for the other engines a chunk is a batch).
    pub chunk_sizing: ChunkSizing,
    /// Records per batch the parts are given.
    pub batch_size: usize,
    /// The source caps its batches at this many records (by bytes, see
    /// [`ParsedLines::with_batch_bytes`](crate::sources::ParsedLines::with_batch_bytes)),
    /// below `batch_size`: the batches every engine runs (and stage actors
    /// hand on) hold at most this many. `None`: batches of `batch_size`.
    #[serde(default)]
    pub source_batch_records: Option<usize>,
    /// Worker processes this run starts (multiprocess mode), else 0.
    pub workers: usize,
    /// Reading lanes (threads), else 0.
    pub lanes: usize,
    /// `--replicas auto` on the stage actors: counts come from a probe.
    pub probe: bool,
    /// Cores this process may use.
    pub cores: usize,
    /// Records run one at a time from their bytes to the fold, with no
    /// batch between the parts: the pipeline has a record chain (see
    /// [`PipelineFacts::record_chain`]) and the engine reads the source's
    /// bytes itself (inline, reading lanes, workers); stage actors hand
    /// batches on.
    #[serde(default)]
    pub record_by_record: bool,
    /// Reading lanes, record by record, of a fold that commutes
    /// ([`Fold::commutes`](crate::Fold::commutes)): each lane folds every
    /// chunk it reads into one partial of its own, and the lanes' partials
    /// are merged once at the end, instead of a partial per chunk merged
    /// in input order.
    #[serde(default)]
    pub partial_per_lane: bool,
    /// Worker processes, record by record, of a fold that commutes, over
    /// chunks that are byte ranges of files: each worker of one thread
    /// folds the chunks it runs after its first into one partial of its
    /// own, sent when the coordinator asks at the end (`Flush`), instead of
    /// a partial per chunk. The coordinator measures on the first two
    /// partials whether that pays (their merge, encoded, at most two
    /// thirds of the two) and otherwise ends it (`Unhold`). A worker whose
    /// partial does not come back (it left, or holds a chunk another
    /// worker answered first) has its chunks run again elsewhere.
    #[serde(default)]
    pub partial_per_worker: bool,
    /// The source's estimate of its records, when it gives one.
    pub records_estimate: Option<u64>,
    /// Why this engine (and, when it differs from the one asked for, why
    /// not that one), for people.
    pub why: String,
}

impl Plan {
    /// Whether a parallel mode's run is done inline.
    pub fn inline(&self) -> bool {
        self.engine == Engine::Inline && self.mode != Mode::Serial
    }

    /// A few lines for under the report table.
    pub fn to_lines(&self) -> String {
        format!("{self}")
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut engine = name(&self.engine);
        match self.engine {
            Engine::ReadingLanes => engine = format!("{engine} ({})", self.lanes),
            Engine::WorkerProcesses => engine = format!("{engine} ({} local)", self.workers),
            Engine::StageActors if self.probe => engine = format!("{engine} (replicas probed)"),
            _ => {}
        }
        writeln!(
            f,
            "plan: engine {engine}; transport {}; {} core{}",
            name(&self.transport),
            self.cores,
            plural(self.cores as u64)
        )?;
        let capped = match self.source_batch_records {
            Some(n) => format!(", capped by the source at {n} (by bytes)"),
            None => String::new(),
        };
        writeln!(
            f,
            "plan: chunks {}{}, {}; batches of {} records{capped}",
            name(&self.chunking),
            if self.ships_ranges {
                " (their bytes shipped to a worker that cannot read them)"
            } else {
                ""
            },
            self.chunk_sizing,
            self.batch_size
        )?;
        if self.record_by_record {
            writeln!(
                f,
                "plan: record by record: each record runs from its bytes to the fold before the next is decoded{}",
                if self.partial_per_lane {
                    "; one partial per lane (the fold commutes), merged at the end"
                } else if self.partial_per_worker {
                    "; one partial per worker after its first chunk while that pays (the fold commutes), sent and merged at the end"
                } else {
                    ""
                }
            )?;
        }
        writeln!(f, "plan: why: {}", self.why)
    }
}

/// "s" unless `n` is 1.
fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A unit enum's name as `report.json` spells it, with spaces, for the table.
fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

/// Decides how `facts`'s pipeline runs in `config` on `machine` (see the
/// module text and docs/plan.md for each rule).
pub fn plan(facts: &PipelineFacts, config: &RunConfig, machine: &Machine) -> Plan {
    let cores = machine.cores.max(1);
    let batch_size = smaller_batch(facts, config).unwrap_or(config.batch_size.max(1));
    let mut plan = Plan {
        mode: config.mode,
        engine: Engine::Inline,
        transport: Transport::Threads,
        chunking: Chunking::Records,
        ships_ranges: false,
        chunk_sizing: ChunkSizing::batches(batch_size),
        batch_size,
        source_batch_records: facts.batch_records.filter(|&n| n < batch_size),
        workers: 0,
        lanes: 0,
        probe: false,
        cores,
        records_estimate: facts.records,
        record_by_record: false,
        partial_per_lane: false,
        partial_per_worker: false,
        why: String::new(),
    };
    match config.mode {
        Mode::Serial => {
            plan.why = "serial mode runs every part inline, batch after batch".into();
        }
        Mode::Pipelined => plan_pipeline(&mut plan, facts, config),
        Mode::Multiprocess => plan_multiprocess(&mut plan, facts, config),
    }
    plan.record_by_record = facts.record_chain && plan.engine != Engine::StageActors;
    plan.partial_per_lane =
        plan.record_by_record && facts.fold_commutes && plan.engine == Engine::ReadingLanes;
    // Workers started here make the coordinator cut every chunk as file
    // ranges: a chunk whose result is lost with a worker's partial is cut
    // again from its ranges, never kept as bytes.
    plan.partial_per_worker = plan.record_by_record
        && facts.fold_commutes
        && plan.engine == Engine::WorkerProcesses
        && plan.chunking.is_ranges()
        && plan.workers > 0;
    if config.mode == Mode::Serial && plan.record_by_record {
        plan.why = "serial mode runs every part inline, record by record".into();
    }
    if plan.engine != Engine::Inline || config.mode == Mode::Serial {
        return plan;
    }
    // The parallel engine chosen above was not worth starting: the run is
    // done inline, with the reason.
    plan.transport = Transport::Threads;
    plan.chunking = Chunking::Records;
    plan.ships_ranges = false;
    plan.chunk_sizing = ChunkSizing::batches(batch_size);
    plan.workers = 0;
    plan.lanes = 0;
    plan.probe = false;
    plan
}

/// Pipeline mode: reading lanes, or stage actors, or inline for a small input.
///
/// Unless `--replicas STAGE=N` fixed the actors, a pipeline the lanes can
/// read runs on them: each lane reads, decodes and runs every part on its
/// own chunks, so a record is freed on the thread that made it and no
/// batch crosses cores. The stage actors hand every batch to another
/// thread, whose frees of the records another thread allocated are the
/// costliest part of a job of small owned records (docs/plan.md,
/// "Why reading lanes without flags").
fn plan_pipeline(plan: &mut Plan, facts: &PipelineFacts, config: &RunConfig) {
    let auto = config.replicas == Replicas::Auto;
    let fixed = matches!(config.replicas, Replicas::Fixed(_));
    if !fixed && plan.cores > 1 && facts.lanes_can_read() {
        plan.engine = Engine::ReadingLanes;
        plan.chunking = Chunking::UncountedRanges;
        plan.lanes = plan.cores;
        plan.chunk_sizing = ChunkSizing::for_ranges(
            plan.batch_size,
            true,
            plan.lanes,
            Chunking::UncountedRanges,
            config.max_frame,
        );
        plan.why = format!(
            "plain files cut by bytes, stages that do not read record numbers and an \
             aggregate that renumbers: one reading lane per core ({}), each running every \
             part on its own chunks (--replicas STAGE=N for the stage actors)",
            plan.cores
        );
        return;
    }
    plan.engine = Engine::StageActors;
    plan.probe = auto;
    plan.why = match (&config.replicas, auto) {
        (Replicas::Fixed(_), _) => "stage actors with the replica counts given".into(),
        (_, true) if plan.cores == 1 => {
            "--replicas auto on one core: the stage actors, one replica each (no lanes)".into()
        }
        (_, true) => format!(
            "--replicas auto: the stage actors, replica counts from a probe of the first \
             batches ({})",
            facts.why_no_lanes()
        ),
        _ if plan.cores == 1 => "an actor per stage, with credit backpressure".into(),
        _ => format!(
            "an actor per stage, with credit backpressure ({})",
            facts.why_no_lanes()
        ),
    };
    if let Replicas::Fixed(_) = config.replicas {
        return;
    }
    if let Some(why) = inline_reason(
        facts,
        config,
        plan.batch_size,
        config.inline_limits.pipeline_batches,
        "stage actors",
    ) {
        plan.engine = Engine::Inline;
        plan.why = why;
    } else if plan.batch_size < config.batch_size {
        plan.why = format!(
            "{}; a small input (about {} records) in batches of {} rather than {}, so \
             that the stages overlap (from --smaller-batches-from {})",
            plan.why,
            facts.records.unwrap_or(0),
            plan.batch_size,
            config.batch_size,
            config.inline_limits.smaller_batches_from
        );
    }
}

/// Multiprocess mode: worker processes, how chunks reach them, or inline.
fn plan_multiprocess(plan: &mut Plan, facts: &PipelineFacts, config: &RunConfig) {
    plan.engine = Engine::WorkerProcesses;
    plan.workers = config.workers.unwrap_or(plan.cores);
    // Loopback on a port of the system's choosing, no token: no one else
    // can be expected to join.
    let private = config
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback() && a.port() == 0)
        && config.token.is_none();
    plan.transport = match (plan.workers, private) {
        (0, _) => Transport::RemoteWorkers,
        (_, true) => Transport::LocalWorkers,
        (_, false) => Transport::LocalAndRemoteWorkers,
    };
    // Ranges need a reader: local workers (allowed to read the inputs by
    // the worker command), or a remote one that announced it reads them
    // (known only when it joins: the coordinator's first chunk decides,
    // and without such a worker chunks are shipped as text).
    // Uncounted needs the aggregate to renumber; the reader confirms at
    // its first chunk that the source cuts by bytes (else it counts them).
    plan.chunking = match (facts.in_files, facts.renumbers) {
        (false, _) => Chunking::ShippedText,
        (true, true) => Chunking::UncountedRanges,
        (true, false) => Chunking::CountedRanges,
    };
    plan.ships_ranges = plan.chunking.is_ranges();
    plan.chunk_sizing = ChunkSizing::for_ranges(
        plan.batch_size,
        config.grow_chunks,
        plan.workers.max(1),
        plan.chunking,
        config.max_frame,
    );
    let workers = format!(
        "{} worker process{}",
        plan.workers,
        if plan.workers == 1 { "" } else { "es" }
    );
    plan.why = match plan.chunking {
        Chunking::UncountedRanges => format!(
            "{workers} reading their own byte ranges of the input and counting their \
             records; the aggregate renumbers the partials"
        ),
        Chunking::CountedRanges => format!(
            "{workers} reading their own byte ranges of the input, counted when cut: \
             a stage reads record numbers, or the aggregate cannot renumber its partials"
        ),
        _ => format!(
            "{workers}; the coordinator reads the input and ships each chunk: {}",
            facts.why_shipped()
        ),
    };
    if !private || config.workers.is_some() || !facts.registered {
        // An engine shape the user chose, remote workers expected, or a
        // pipeline the workers cannot rebuild (the run fails, whatever
        // its size).
        return;
    }
    let limit = if plan.chunking.is_ranges() {
        config.inline_limits.reader_batches
    } else {
        config.inline_limits.shipped_batches
    };
    if let Some(why) = inline_reason(facts, config, plan.batch_size, limit, "worker processes") {
        plan.engine = Engine::Inline;
        plan.why = why;
    }
}

/// Why a parallel engine should not start for an input of `batch_size`
/// batches no more than `limit`, or `None` (unknown size, a source that
/// may wait, small inputs not to be run inline).
fn inline_reason(
    facts: &PipelineFacts,
    config: &RunConfig,
    batch_size: usize,
    limit: u64,
    engine: &str,
) -> Option<String> {
    if !config.inline_small || facts.may_wait {
        return None;
    }
    let records = facts.records?;
    let batch = batch_size.max(1) as u64;
    let batches = records.div_ceil(batch);
    (batches <= limit).then(|| {
        format!(
            "about {records} records ({batches} batch{} of {batch}, at most {limit} run inline): \
             too few for {engine} to pay for their start-up, so this run was done inline, \
             as serial mode does it",
            if batches == 1 { "" } else { "es" }
        )
    })
}

/// Pipeline mode over a small input that its stage actors would run
/// inline, but large enough (`--smaller-batches-from`) for them to win in
/// smaller batches: the input cut into three times the inline limit's
/// batches, of at least an eighth of the batch size. `None` when the batch
/// size was given, the engine's shape was chosen, or the rule does not
/// apply.
fn smaller_batch(facts: &PipelineFacts, config: &RunConfig) -> Option<usize> {
    let limits = &config.inline_limits;
    let shape_left = matches!(config.replicas, Replicas::None | Replicas::Auto);
    if config.mode != Mode::Pipelined
        || !config.inline_small
        || !config.grow_chunks
        || !shape_left
        || facts.may_wait
    {
        return None;
    }
    let records = facts.records?;
    let batch = config.batch_size.max(1) as u64;
    let small = records.div_ceil(batch) <= limits.pipeline_batches;
    (small && records >= limits.smaller_batches_from).then(|| {
        let batches = limits.pipeline_batches.saturating_mul(3).max(1);
        (records / batches).max(batch / 8).clamp(1, batch) as usize
    })
}

#[cfg(test)]
mod tests;
