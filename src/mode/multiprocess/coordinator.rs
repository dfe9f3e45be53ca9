//! The coordinator actor: drives the chunk engine's scheduler
//! ([`crate::mode::engine`]) over the workers' connections. It asks its
//! reading thread for chunks (only as far as the workers' grants and the
//! reorder window allow), deals chunks to connections, sends an overdue
//! chunk to a second worker, merges the returned partials in sequence
//! order exactly once, feeds the sink, re-queues the chunks of lost
//! workers, and fails the run clearly when a chunk fails or no worker is
//! left.
//!
//! When the source can give its chunks as byte ranges of files (see
//! [`file_range`](crate::file_range)) and local workers were started, each
//! chunk is cut as ranges: a local worker is sent the ranges and reads the
//! bytes itself, while a worker elsewhere is sent the bytes, read for it
//! (`coordinator/reader.rs`: the source on its own thread, cutting, sizing
//! and framing chunks; `coordinator/chunks.rs`: the frame each worker is
//! sent, and the bytes of a chunk a worker could not read;
//! `coordinator/results.rs`: merging the partials that come back, and
//! failed chunks; `coordinator/membership.rs`: workers joining and
//! leaving; `coordinator/wire.rs`: the connections as the engine's
//! transport; `coordinator/held.rs`: workers that hold one partial each,
//! asked for it at the end).

mod checks;
mod chunks;
mod held;
mod membership;
mod reader;
mod results;
mod wire;

use super::connection::{Close, Connection};
use crate::error::RunError;
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::live::WorkerLiveness;
use crate::metrics::{StageStats, WorkerReport};
use crate::mode::engine::schedule::{ChunkInfo, Policy, Scheduler};
use crate::mode::engine::transport::pump;
use crate::mode::inline::run_sink_finish;
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline};
use crate::plan::{ChunkSizing, Chunking, Plan};
use crate::protocol::PeerHello;
use actix::prelude::*;
use chunks::ChunkFrame;
pub(crate) use chunks::ChunkUnreadableMsg;
pub(crate) use held::HeldMsg;
use reader::Reader;
use results::Done;
pub(crate) use results::{ChunkDoneMsg, ChunkFailedMsg};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use wire::Wire;

/// Chunks read and not yet merged, per chunk of the workers' credit: a
/// read chunk's frame holds its bytes (or its ranges), so the read-ahead
/// stays close to what the workers hold.
const WINDOW_PER_CREDIT: usize = 2;

/// What a successful run hands back.
pub(crate) struct Outcome {
    pub(crate) stats: Vec<StageStats>,
    pub(crate) workers: Vec<WorkerReport>,
    /// Process ids (as the workers announced them) of the workers told to
    /// shut down: the others never got a job and need no time to exit.
    pub(crate) closed_pids: Vec<u64>,
}

/// A worker connected and authenticated.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Joined {
    pub(crate) id: u64,
    pub(crate) addr: Addr<Connection>,
    pub(crate) peer: String,
    /// It connected from this machine: from loopback, or from the address
    /// it connected to.
    pub(crate) same_host: bool,
    pub(crate) hello: PeerHello,
    /// It was told to hold its partial (see `coordinator/held.rs`).
    pub(crate) holds: bool,
}

/// A worker's connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Left {
    pub(crate) id: u64,
    pub(crate) reason: String,
}

struct WorkerRow {
    report: WorkerReport,
    joined: Instant,
    /// Its last frame (a heartbeat or a result), for the live view.
    last_heard: Instant,
    /// `HOST/PID`, its name in metrics (see [`WorkerLiveness::name`]).
    name: String,
}

/// A worker's heartbeat arrived (for the live view's "last heard").
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Heard {
    /// The connection's id.
    pub(crate) id: u64,
}

/// The coordinator.
pub(crate) struct Coordinator {
    pipeline: Pipeline,
    config: RunConfig,
    sched: Scheduler<ChunkFrame, Done>,
    conns: HashMap<u64, Addr<Connection>>,
    /// Announced process id of each connected worker.
    pids: HashMap<u64, u64>,
    /// Directories each connected worker announced it reads chunks from
    /// (`--allow-read`); absent: none.
    roots: HashMap<u64, Vec<String>>,
    /// Files each connected worker said it cannot read: their chunks go
    /// to it as bytes.
    unreadable: HashMap<u64, HashSet<std::path::PathBuf>>,
    /// (worker, seq) of the chunks sent as file ranges and not yet
    /// answered: only those may come back `ChunkUnreadable`.
    sent_in_files: HashSet<(u64, u64)>,
    /// How many workers this run starts itself, and how chunks are cut
    /// and sized (the plan's: as file ranges when a worker reads them,
    /// decided at the first chunk).
    local_workers: usize,
    chunking: (Chunking, ChunkSizing),
    /// The thread that pulls the source and cuts chunks (from `started`).
    reader: Option<Reader>,
    /// Chunks are cut by bytes, their records not counted by the reader:
    /// each worker counts its chunk's, and partials are renumbered at the
    /// merge.
    uncounted: bool,
    /// Records of the chunks merged so far.
    merged_records: u64,
    rows: BTreeMap<u64, WorkerRow>,
    stats: Vec<StageStats>,
    acc: Option<AnyData>,
    /// Since when no worker is connected (`None` while some are).
    alone_since: Option<Instant>,
    last_loss: Option<String>,
    /// Publishes the numbers so far, when the run has a live view.
    live: Option<(LivePublisher, Instant)>,
    done: Option<oneshot::Sender<Result<Outcome, RunError>>>,
    /// Snapshot requests and the number of chunks before each, in order.
    snapshots: std::collections::VecDeque<(u64, crate::pipeline::SnapshotReq)>,
    /// Chunks merged so far.
    merged: u64,
    /// The workers told to shut down at the end (their process ids), once
    /// every chunk is merged: the run is finishing.
    closed_pids: Option<Vec<u64>>,
    /// What each worker that holds its partial holds (`held.rs`).
    holding: HashMap<u64, held::Holding>,
    /// Whether workers hold their partials, once measured (`held.rs`).
    hold_decided: Option<bool>,
    /// The partials merged until then, and their encoded bytes.
    overlap: (u32, usize),
    /// Chunks of partials that were lost, to run again once the source is done.
    rerun: Vec<ChunkInfo<std::sync::Arc<Vec<crate::file_range::FileRange>>>>,
}

impl Coordinator {
    pub(crate) fn new(
        pipeline: Pipeline,
        config: RunConfig,
        plan: &Plan,
        done: oneshot::Sender<Result<Outcome, RunError>>,
    ) -> Self {
        let stats = pipeline.fresh_stats();
        let acc = Some(pipeline.aggregate.part.empty());
        // Before `pipeline` moves into the struct.
        let live = config.live.clone().map(|board| {
            let publisher = LivePublisher::new(board, &pipeline.name, crate::Mode::Multiprocess, 0);
            (publisher, Instant::now())
        });
        Coordinator {
            live,
            sched: Scheduler::new(Policy {
                inflight: config.inflight,
                window_per_credit: WINDOW_PER_CREDIT,
                // A worker process may go silent: its chunks are copied.
                copies: true,
            }),
            pipeline,
            config,
            conns: HashMap::new(),
            pids: HashMap::new(),
            roots: HashMap::new(),
            unreadable: HashMap::new(),
            sent_in_files: HashSet::new(),
            local_workers: plan.workers,
            chunking: (plan.chunking, plan.chunk_sizing),
            reader: None,
            uncounted: false,
            merged_records: 0,
            rows: BTreeMap::new(),
            stats,
            acc,
            alone_since: Some(Instant::now()),
            last_loss: None,
            done: Some(done),
            snapshots: std::collections::VecDeque::new(),
            merged: 0,
            closed_pids: None,
            holding: HashMap::new(),
            hold_decided: None,
            overlap: (0, 0),
            rerun: Vec::new(),
        }
    }

    /// Deals chunks while workers have credit (overdue ones first), asks
    /// the reader for more while the scheduler wants them, and finishes
    /// when all is merged: the engine's [`pump`] over the workers' wire.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.queue_reruns();
        match pump(&mut Wire { coord: self, ctx }, Instant::now()) {
            Ok(true) => self.finish(ctx),
            Ok(false) => {}
            Err(e) => self.fail(ctx, e),
        }
    }

    /// A worker as errors name it: its id and address.
    fn worker_label(&self, id: u64) -> String {
        match self.rows.get(&id) {
            Some(r) => format!("{id} ({})", r.report.address),
            None => id.to_string(),
        }
    }

    fn close_all(&mut self) {
        for conn in self.conns.values() {
            // Bounded: one per connection.
            conn.do_send(Close);
        }
    }

    /// Every chunk is merged: tells the workers to shut down, then writes
    /// the outputs once this thread has sent them that (the connections
    /// run on it, so they send only when it yields), so that the workers
    /// exit while the sink writes, and are gone when the run reaps them.
    fn finish(&mut self, ctx: &mut Context<Self>) {
        if self.closed_pids.is_some() || self.flush_held() {
            return;
        }
        self.closed_pids = Some(self.pids.values().copied().collect());
        self.close_all();
        ctx.spawn(
            tokio::task::yield_now()
                .into_actor(self)
                .map(|(), act, ctx| act.write_outputs(ctx)),
        );
    }

    /// The sink's outputs, then the run's outcome.
    fn write_outputs(&mut self, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            // The run failed (or was interrupted) in the meantime.
            return;
        }
        let n = self.stats.len();
        let acc = self
            .acc
            .take()
            .unwrap_or_else(|| self.pipeline.aggregate.part.empty());
        if let Err(e) = run_sink_finish(&mut self.pipeline.sink, acc, &mut self.stats[n - 1]) {
            return self.fail(ctx, e);
        }
        let replicas = self.rows.values().filter(|r| r.report.chunks > 0).count();
        for s in &mut self.stats[1..n - 1] {
            s.replicas = replicas.max(1);
        }
        let workers = self.worker_reports();
        if let Some(done) = self.done.take() {
            let _ = done.send(Ok(Outcome {
                stats: std::mem::take(&mut self.stats),
                workers,
                closed_pids: self.closed_pids.clone().unwrap_or_default(),
            }));
        }
        ctx.stop();
    }

    /// The workers' rows, CPU seconds turned into a percentage of the time
    /// each has been connected.
    fn worker_reports(&self) -> Vec<WorkerReport> {
        self.rows
            .values()
            .map(|r| {
                let mut w = r.report.clone();
                // Until now the row holds the CPU seconds the worker reported.
                w.cpu_seconds = w.cpu_percent;
                let alive = r.joined.elapsed().as_secs_f64().max(1e-9);
                w.cpu_percent = (w.cpu_percent / alive * 100.0).min(100.0 * 1024.0);
                w
            })
            .collect()
    }

    /// Publishes the numbers so far, at most every [`PUBLISH_EVERY`].
    fn publish_live(&mut self) {
        let due = match &self.live {
            Some((_, last)) => last.elapsed() >= PUBLISH_EVERY,
            None => false,
        };
        if !due {
            return;
        }
        let liveness = self
            .rows
            .iter()
            .map(|(id, r)| WorkerLiveness {
                id: *id,
                name: r.name.clone(),
                last_heard_seconds_ago: r.last_heard.elapsed().as_secs_f64(),
                connected: self.conns.contains_key(id),
            })
            .collect();
        let workers = self.worker_reports();
        let mut stats = self.stats.clone();
        let n = stats.len();
        let replicas = self.conns.len().max(1);
        for s in &mut stats[1..n - 1] {
            s.replicas = replicas;
        }
        if let Some((publisher, last)) = &mut self.live {
            *last = Instant::now();
            publisher.publish(&stats, workers, liveness);
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, error: RunError) {
        self.pipeline.sink.part.abort();
        self.close_all();
        if let Some(done) = self.done.take() {
            let _ = done.send(Err(error));
        }
        ctx.stop();
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let source = std::mem::replace(
            &mut self.pipeline.source,
            crate::pipeline::Named {
                name: String::new(),
                part: Box::new(reader::Moved),
            },
        );
        let (chunking, sizing) = self.chunking;
        match Reader::start(
            source,
            &self.config,
            (chunking, sizing, self.local_workers),
            ctx.address(),
        ) {
            Ok(reader) => self.reader = Some(reader),
            Err(e) => {
                let e =
                    RunError::Runtime(format!("cannot start the coordinator's input thread: {e}"));
                return self.fail(ctx, e);
            }
        }
        ctx.run_interval(Duration::from_millis(50), |act, ctx| {
            if act.config.cancel.is_cancelled() {
                return act.fail(ctx, RunError::Interrupted);
            }
            act.publish_live();
            if !act.holding.is_empty() {
                act.check_flush_deadline();
                // A partial lost: its chunks wait to be sent.
                act.pump(ctx);
            }
            if act.sched.deadline().is_some() {
                // Chunks go overdue with time, not with a message.
                act.pump(ctx);
            }
            if let Some(since) = act.alone_since {
                if since.elapsed() > act.config.worker_wait_timeout {
                    let why = match &act.last_loss {
                        Some(r) => format!(
                            "every worker is gone (last: {r}) and none joined within {:?}",
                            act.config.worker_wait_timeout
                        ),
                        None => format!(
                            "no worker connected within {:?}",
                            act.config.worker_wait_timeout
                        ),
                    };
                    act.fail(ctx, RunError::NoWorkers(why));
                }
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(done) = self.done.take() {
            self.pipeline.sink.part.abort();
            let _ = done.send(Err(RunError::Runtime("coordinator stopped early".into())));
        }
    }
}
