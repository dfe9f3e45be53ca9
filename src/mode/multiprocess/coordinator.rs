//! The coordinator actor: reads the source chunk by chunk (only as far as
//! the workers' credits and the reorder window allow), encodes each chunk
//! once, deals chunks to connections, merges the returned partials in
//! sequence order exactly once, feeds the sink, re-queues the chunks of lost
//! workers, and fails the run clearly when a chunk fails or no worker is left.
//!
//! When the source can give its chunks as byte ranges of files (see
//! [`file_range`](crate::file_range)) and local workers were started, each
//! chunk is cut as ranges: a local worker is sent the ranges and reads the
//! bytes itself, while a worker elsewhere is sent the bytes, read here
//! (`coordinator/chunks.rs`: cutting, sizing and framing chunks;
//! `coordinator/results.rs`: merging the partials that come back, and
//! failed chunks).

mod checks;
mod chunks;
mod results;

use super::connection::{Close, Connection, SendFrame};
use super::scheduler::Scheduler;
use crate::error::RunError;
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::live::WorkerLiveness;
use crate::metrics::{StageStats, WorkerReport};
use crate::mode::inline::run_sink_finish;
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline};
use crate::protocol::PeerHello;
use actix::prelude::*;
use chunks::ChunkFrame;
use results::Done;
pub(crate) use results::{ChunkDoneMsg, ChunkFailedMsg};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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
    /// How many workers this run starts itself: if any (or if a worker
    /// announced roots), chunks are cut as file ranges when the source can
    /// (decided at the first chunk).
    local_workers: usize,
    /// The source gives chunks as file ranges.
    in_files: Option<bool>,
    /// Those ranges are cut by bytes, their records not counted here: each
    /// worker counts its chunk's, and partials are renumbered at the merge.
    uncounted: bool,
    /// Records of the chunks merged so far.
    merged_records: u64,
    rows: BTreeMap<u64, WorkerRow>,
    stats: Vec<StageStats>,
    acc: Option<AnyData>,
    next_line: u64,
    /// Capacity to allocate for the next chunk's frame (from the last one).
    chunk_capacity: usize,
    /// Since when no worker is connected (`None` while some are).
    alone_since: Option<Instant>,
    last_loss: Option<String>,
    /// Publishes the numbers so far, when the run has a live view.
    live: Option<(LivePublisher, Instant)>,
    done: Option<oneshot::Sender<Result<Outcome, RunError>>>,
    /// The source is waiting for input: this completes when it may have
    /// some (taken by `pump`, which then reads again after it).
    wake: Option<crate::pipeline::Wake>,
    /// The source is waiting; no chunk is read until it wakes.
    waiting: bool,
    /// Snapshot requests and the number of chunks before each, in order.
    snapshots: std::collections::VecDeque<(u64, crate::pipeline::SnapshotReq)>,
    /// Chunks merged so far.
    merged: u64,
    /// The workers told to shut down at the end (their process ids), once
    /// every chunk is merged: the run is finishing.
    closed_pids: Option<Vec<u64>>,
}

impl Coordinator {
    pub(crate) fn new(
        pipeline: Pipeline,
        config: RunConfig,
        local_workers: usize,
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
            sched: Scheduler::new(config.inflight),
            pipeline,
            config,
            conns: HashMap::new(),
            pids: HashMap::new(),
            roots: HashMap::new(),
            local_workers,
            in_files: None,
            uncounted: false,
            merged_records: 0,
            rows: BTreeMap::new(),
            stats,
            acc,
            next_line: 1,
            chunk_capacity: 1 << 16,
            alone_since: Some(Instant::now()),
            last_loss: None,
            done: Some(done),
            wake: None,
            waiting: false,
            snapshots: std::collections::VecDeque::new(),
            merged: 0,
            closed_pids: None,
        }
    }

    /// Reads and deals chunks while workers have credit; finishes when all is merged.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            if let Some((worker, chunk)) = self.sched.assign() {
                let Some(conn) = self.conns.get(&worker) else {
                    self.sched.remove_worker(worker);
                    continue;
                };
                let frame = match self.frame_for(worker, chunk) {
                    Ok(frame) => frame,
                    Err(e) => return self.fail(ctx, e),
                };
                // Bounded by credits: a connection holds at most `inflight` chunks.
                conn.do_send(SendFrame(frame));
                continue;
            }
            if !self.waiting && self.sched.wants_new_chunk() {
                if let Err(e) = self.read_chunk() {
                    return self.fail(ctx, e);
                }
                if let Some(wake) = self.wake.take() {
                    // The coordinator never blocks in its source: heartbeats,
                    // results and signals go on while it waits.
                    self.waiting = true;
                    let wake = self.config.cancel.or_cancelled(wake);
                    ctx.spawn(wake.into_actor(self).map(|(), act, ctx| {
                        act.waiting = false;
                        act.pump(ctx);
                    }));
                }
                self.answer_snapshots();
                continue;
            }
            break;
        }
        if self.sched.is_finished() {
            self.finish(ctx);
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
        if self.closed_pids.is_some() {
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
        ctx.run_interval(Duration::from_millis(50), |act, ctx| {
            if act.config.cancel.is_cancelled() {
                return act.fail(ctx, RunError::Interrupted);
            }
            act.publish_live();
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

impl Handler<Joined> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Joined, ctx: &mut Context<Self>) {
        tracing::info!(
            worker = msg.id,
            peer = %msg.peer,
            pid = msg.hello.worker_id,
            cores = msg.hello.cores,
            threads = msg.hello.threads,
            same_host = msg.same_host,
            allowed_roots = ?msg.hello.allowed_roots,
            "worker joined"
        );
        self.conns.insert(msg.id, msg.addr);
        self.pids.insert(msg.id, msg.hello.worker_id);
        if !msg.hello.allowed_roots.is_empty() {
            self.roots.insert(msg.id, msg.hello.allowed_roots.clone());
        }
        let name = crate::live::worker_name(&msg.peer, msg.same_host, msg.hello.worker_id);
        self.rows.insert(
            msg.id,
            WorkerRow {
                report: WorkerReport {
                    id: msg.id,
                    address: msg.peer,
                    chunks: 0,
                    records: 0,
                    busy_seconds: 0.0,
                    requeued_chunks: 0,
                    cpu_percent: 0.0,
                    peak_rss_bytes: 0,
                },
                joined: Instant::now(),
                last_heard: Instant::now(),
                name,
            },
        );
        self.sched.add_worker(msg.id, msg.hello.threads as usize);
        self.alone_since = None;
        self.pump(ctx);
    }
}

impl Handler<Left> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Left, ctx: &mut Context<Self>) {
        self.pids.remove(&msg.id);
        self.roots.remove(&msg.id);
        if self.conns.remove(&msg.id).is_none() {
            return;
        }
        let lost = self.sched.remove_worker(msg.id);
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.report.requeued_chunks += lost.len() as u64;
        }
        if lost.is_empty() {
            tracing::info!(worker = msg.id, "worker left: {}", msg.reason);
        } else {
            tracing::warn!(
                worker = msg.id,
                "worker lost ({}); re-queued chunks {:?}",
                msg.reason,
                lost
            );
        }
        if self.conns.is_empty() {
            self.alone_since = Some(Instant::now());
            self.last_loss = Some(format!("worker {}: {}", msg.id, msg.reason));
        }
        self.pump(ctx);
    }
}

impl Handler<Heard> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Heard, _: &mut Context<Self>) {
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.last_heard = Instant::now();
        }
    }
}
