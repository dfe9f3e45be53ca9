//! The coordinator actor: reads the source chunk by chunk (only as far as
//! the workers' credits and the reorder window allow), encodes each chunk
//! once, deals chunks to connections, merges the returned partials in
//! sequence order exactly once, feeds the sink, re-queues the chunks of lost
//! workers, and fails the run clearly when a chunk fails or no worker is left.
//!
//! When the source can give its chunks as byte ranges of files (see
//! [`file_range`](crate::file_range)) and local workers were started, each
//! chunk is cut as ranges: a local worker is sent the ranges and reads the
//! bytes itself, while a worker elsewhere is sent the bytes, read here.

use super::connection::{Close, Connection, SendFrame};
use super::scheduler::{ChunkInfo, Completion, Scheduler};
use crate::error::RunError;
use crate::file_range::{read_ranges, FileRange};
use crate::metrics::{StageStats, WorkerReport};
use crate::mode::inline::{pull_chunk, pull_chunk_ranges, run_sink_absorb, run_sink_finish};
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline};
use crate::protocol::{
    encode_frame, seal_chunk_frame, ChunkStats, Message, PeerHello, CHUNK_HEADER_ROOM,
};
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
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

/// A chunk ready to send.
#[derive(Clone)]
pub(crate) enum ChunkFrame {
    /// The frame of a `Chunk`, payload included.
    Bytes(bytes::Bytes),
    /// The frame of a `ChunkInFiles`, for local workers, and its ranges,
    /// for the others.
    InFiles {
        frame: bytes::Bytes,
        ranges: Arc<Vec<FileRange>>,
    },
}

/// A worker returned a chunk's partial.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChunkDoneMsg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
    pub(crate) partial: Vec<u8>,
    pub(crate) stats: ChunkStats,
}

/// A worker could not process a chunk.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChunkFailedMsg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
    pub(crate) error: String,
}

struct WorkerRow {
    report: WorkerReport,
    joined: Instant,
}

/// The coordinator.
pub(crate) struct Coordinator {
    pipeline: Pipeline,
    config: RunConfig,
    sched: Scheduler<ChunkFrame, AnyData>,
    conns: HashMap<u64, Addr<Connection>>,
    /// Announced process id of each connected worker.
    pids: HashMap<u64, u64>,
    /// Connected workers that came from this machine.
    same_host: HashSet<u64>,
    /// Process ids of the workers this run started: if any, chunks are cut
    /// as file ranges when the source can (decided at the first chunk).
    local_pids: HashSet<u64>,
    /// The source gives chunks as file ranges.
    in_files: Option<bool>,
    rows: BTreeMap<u64, WorkerRow>,
    stats: Vec<StageStats>,
    acc: Option<AnyData>,
    next_line: u64,
    /// Capacity to allocate for the next chunk's frame (from the last one).
    chunk_capacity: usize,
    /// Since when no worker is connected (`None` while some are).
    alone_since: Option<Instant>,
    last_loss: Option<String>,
    done: Option<oneshot::Sender<Result<Outcome, RunError>>>,
}

impl Coordinator {
    pub(crate) fn new(
        pipeline: Pipeline,
        config: RunConfig,
        local_pids: Vec<u64>,
        done: oneshot::Sender<Result<Outcome, RunError>>,
    ) -> Self {
        let stats = pipeline.fresh_stats();
        let acc = Some(pipeline.aggregate.part.empty());
        Coordinator {
            sched: Scheduler::new(config.inflight),
            pipeline,
            config,
            conns: HashMap::new(),
            pids: HashMap::new(),
            same_host: HashSet::new(),
            local_pids: local_pids.into_iter().collect(),
            in_files: None,
            rows: BTreeMap::new(),
            stats,
            acc,
            next_line: 1,
            chunk_capacity: 1 << 16,
            alone_since: Some(Instant::now()),
            last_loss: None,
            done: Some(done),
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
                let info = chunk.info();
                let frame = match chunk.frame {
                    ChunkFrame::Bytes(frame) => frame,
                    ChunkFrame::InFiles { frame, .. } if self.is_local(worker) => frame,
                    ChunkFrame::InFiles { ranges, .. } => match self.resolve(&info, &ranges) {
                        Ok(frame) => frame,
                        Err(e) => return self.fail(ctx, e),
                    },
                };
                // Bounded by credits: a connection holds at most `inflight` chunks.
                conn.do_send(SendFrame(frame));
                continue;
            }
            if self.sched.wants_new_chunk() {
                if let Err(e) = self.read_chunk() {
                    return self.fail(ctx, e);
                }
                continue;
            }
            break;
        }
        if self.sched.is_finished() {
            self.finish(ctx);
        }
    }

    /// Whether `worker` is one this run started on this machine: it
    /// connected from this machine and announced the process id of one of
    /// our children.
    fn is_local(&self, worker: u64) -> bool {
        self.same_host.contains(&worker)
            && self
                .pids
                .get(&worker)
                .is_some_and(|pid| self.local_pids.contains(pid))
    }

    /// The `Chunk` frame of a chunk cut as file ranges: the bytes are read
    /// here, for a worker that cannot read them itself.
    fn resolve(
        &self,
        chunk: &ChunkInfo<()>,
        ranges: &[FileRange],
    ) -> Result<bytes::Bytes, RunError> {
        let mut buf = vec![0; CHUNK_HEADER_ROOM];
        read_ranges(ranges, &mut buf, self.config.max_frame)
            .map_err(|e| chunk_error(chunk, format!("cannot read the chunk: {e}")))?;
        seal_chunk_frame(
            buf,
            chunk.seq,
            chunk.first_line,
            chunk.records,
            self.config.max_frame,
        )
        .map_err(|e| chunk_error(chunk, format!("cannot send the chunk: {e}")))
    }

    /// Records in the next chunk (see [`RunConfig::grow_chunks`]): when
    /// the source can estimate what remains, a share of it ("guided"
    /// scheduling: large chunks first, smaller ones towards the end, so that
    /// the workers finish together), between an eighth of the batch size
    /// and twice it (larger chunks measured no faster, and with
    /// `--emit-records` the partials waiting to be merged in order hold
    /// their rendered records: 4× took the coordinator from 43 to 69 MiB);
    /// else doubling once after two chunks per worker.
    fn chunk_records(&self) -> usize {
        let base = self.config.batch_size;
        if !self.config.grow_chunks {
            return base;
        }
        let workers = self.sched.workers().max(self.local_pids.len()).max(1) as u64;
        match self.pipeline.source.part.remaining_estimate() {
            Some(left) => {
                let share = left / (2 * workers);
                let (low, high) = ((base / 8).max(1) as u64, base.saturating_mul(2) as u64);
                share.clamp(low, high.max(low)) as usize
            }
            None => {
                let round = self.sched.next_seq() / (2 * workers);
                base.saturating_mul(1 << round.min(1))
            }
        }
    }

    /// Pulls one chunk from the source and queues its frame.
    fn read_chunk(&mut self) -> Result<(), RunError> {
        let in_files = match self.in_files {
            Some(known) => known,
            None => {
                let can =
                    !self.local_pids.is_empty() && self.pipeline.source.part.chunks_in_files();
                if can {
                    tracing::info!("chunks go to local workers as file ranges");
                }
                self.in_files = Some(can);
                can
            }
        };
        if in_files {
            self.read_chunk_ranges()
        } else {
            self.read_chunk_bytes()
        }
    }

    /// Pulls one chunk as file ranges and queues it as a `ChunkInFiles` frame.
    fn read_chunk_ranges(&mut self) -> Result<(), RunError> {
        let mut ranges = Vec::new();
        let max = self.chunk_records();
        let Some(n) = pull_chunk_ranges(
            &mut self.pipeline.source,
            max,
            &mut ranges,
            &mut self.stats[0],
            &self.config.progress,
        )?
        else {
            self.sched.set_exhausted();
            return Ok(());
        };
        let started = Instant::now();
        let info = ChunkInfo {
            seq: self.sched.next_seq(),
            first_line: self.next_line,
            records: n as u64,
            frame: (),
        };
        self.next_line += n as u64;
        // A few ranges (one per file the chunk touches): cloning is cheap.
        let msg = Message::ChunkInFiles {
            seq: info.seq,
            first_line: info.first_line,
            records: info.records,
            ranges: ranges.clone(),
        };
        let frame = encode_frame(&msg, self.config.max_frame)
            .map_err(|e| chunk_error(&info, format!("cannot send the chunk: {e}")))?;
        self.stats[0].busy += started.elapsed();
        self.sched.push_new(info.with_frame(ChunkFrame::InFiles {
            frame: frame.into(),
            ranges: Arc::new(ranges),
        }));
        Ok(())
    }

    /// Pulls one chunk from the source, already in wire form, and queues
    /// it as a frame. The source writes straight into the frame's buffer,
    /// after room for the header, so the chunk is not copied again here.
    fn read_chunk_bytes(&mut self) -> Result<(), RunError> {
        let max = self.chunk_records();
        let p = &mut self.pipeline;
        let mut buf = Vec::with_capacity(self.chunk_capacity);
        buf.resize(CHUNK_HEADER_ROOM, 0);
        let Some(n) = pull_chunk(
            &mut p.source,
            max,
            &mut buf,
            &mut self.stats[0],
            &self.config.progress,
        )?
        else {
            self.sched.set_exhausted();
            return Ok(());
        };
        // Chunks are alike in size: the next buffer is allocated once.
        self.chunk_capacity = (buf.len() + buf.len() / 8).min(self.config.max_frame + 64);
        let started = Instant::now();
        let seq = self.sched.next_seq();
        let first_line = self.next_line;
        self.next_line += n as u64;
        let info = ChunkInfo {
            seq,
            first_line,
            records: n as u64,
            frame: (),
        };
        let frame = seal_chunk_frame(buf, seq, first_line, n as u64, self.config.max_frame)
            .map_err(|e| chunk_error(&info, format!("cannot send the chunk: {e}")))?;
        self.stats[0].busy += started.elapsed();
        self.sched
            .push_new(info.with_frame(ChunkFrame::Bytes(frame)));
        Ok(())
    }

    /// Merges every partial that is next in sequence and lets the sink absorb it.
    fn merge_ready(&mut self) -> Result<(), RunError> {
        let n = self.stats.len();
        while let Some((_seq, partial)) = self.sched.pop_ready() {
            let acc = self
                .acc
                .as_mut()
                .ok_or_else(|| RunError::Runtime("coordinator lost its partial".into()))?;
            let started = Instant::now();
            self.pipeline.aggregate.part.merge(acc, partial);
            self.stats[n - 2].busy += started.elapsed();
            run_sink_absorb(&mut self.pipeline.sink, acc, &mut self.stats[n - 1])?;
        }
        Ok(())
    }

    fn close_all(&mut self) {
        for conn in self.conns.values() {
            // Bounded: one per connection.
            conn.do_send(Close);
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        let n = self.stats.len();
        let acc = self
            .acc
            .take()
            .unwrap_or_else(|| self.pipeline.aggregate.part.empty());
        if let Err(e) = run_sink_finish(&mut self.pipeline.sink, acc, &mut self.stats[n - 1]) {
            return self.fail(ctx, e);
        }
        self.close_all();
        let replicas = self.rows.values().filter(|r| r.report.chunks > 0).count();
        for s in &mut self.stats[1..n - 1] {
            s.replicas = replicas.max(1);
        }
        let workers = self
            .rows
            .values()
            .map(|r| {
                let mut w = r.report.clone();
                let alive = r.joined.elapsed().as_secs_f64().max(1e-9);
                w.cpu_percent = (w.cpu_percent / alive * 100.0).min(100.0 * 1024.0);
                w
            })
            .collect();
        if let Some(done) = self.done.take() {
            let _ = done.send(Ok(Outcome {
                stats: std::mem::take(&mut self.stats),
                workers,
                closed_pids: self.pids.values().copied().collect(),
            }));
        }
        ctx.stop();
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

/// A failure of the coordinator itself on a chunk.
fn chunk_error(chunk: &ChunkInfo<()>, error: String) -> RunError {
    RunError::Chunk {
        seq: chunk.seq,
        first_line: chunk.first_line,
        last_line: chunk.last_line(),
        worker: "coordinator".into(),
        error,
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(50), |act, ctx| {
            if act.config.cancel.is_cancelled() {
                return act.fail(ctx, RunError::Interrupted);
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

impl Handler<Joined> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Joined, ctx: &mut Context<Self>) {
        tracing::info!(
            worker = msg.id,
            peer = %msg.peer,
            pid = msg.hello.worker_id,
            cores = msg.hello.cores,
            "worker joined"
        );
        self.conns.insert(msg.id, msg.addr);
        self.pids.insert(msg.id, msg.hello.worker_id);
        if msg.same_host {
            self.same_host.insert(msg.id);
        }
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
            },
        );
        self.sched.add_worker(msg.id);
        self.alone_since = None;
        self.pump(ctx);
    }
}

impl Handler<Left> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: Left, ctx: &mut Context<Self>) {
        self.pids.remove(&msg.id);
        self.same_host.remove(&msg.id);
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

impl Handler<ChunkDoneMsg> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: ChunkDoneMsg, ctx: &mut Context<Self>) {
        let records = match self.sched.in_flight(msg.seq) {
            Some(c) => c.records,
            None => {
                tracing::debug!(worker = msg.id, seq = msg.seq, "ignoring a late duplicate");
                return;
            }
        };
        let partial = match self.pipeline.aggregate.part.decode(&msg.partial) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(worker = msg.id, seq = msg.seq, "undecodable partial: {e}");
                if let Some(conn) = self.conns.get(&msg.id) {
                    // Bounded: the connection closes on the first one.
                    conn.do_send(Close);
                }
                return;
            }
        };
        if self.sched.complete(msg.id, msg.seq, partial) == Completion::Ignored {
            tracing::debug!(
                worker = msg.id,
                seq = msg.seq,
                "ignoring a duplicate result"
            );
            return;
        }
        let n = self.stats.len();
        for (i, &(rin, rout, nanos)) in msg.stats.parts.iter().enumerate().take(n - 2) {
            self.stats[i + 1].record_batch(rin, rout, Duration::from_nanos(nanos));
        }
        if let Some(row) = self.rows.get_mut(&msg.id) {
            let r = &mut row.report;
            r.chunks += 1;
            r.records += records;
            r.busy_seconds += msg.stats.busy_nanos as f64 / 1e9;
            // Holds CPU seconds until `finish` turns it into a percentage.
            r.cpu_percent = msg.stats.process_cpu_seconds;
            r.peak_rss_bytes = r.peak_rss_bytes.max(msg.stats.process_peak_rss);
        }
        if let Err(e) = self.merge_ready() {
            return self.fail(ctx, e);
        }
        self.pump(ctx);
    }
}

impl Handler<ChunkFailedMsg> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: ChunkFailedMsg, ctx: &mut Context<Self>) {
        let Some(chunk) = self.sched.in_flight(msg.seq) else {
            return;
        };
        let peer = self
            .rows
            .get(&msg.id)
            .map_or_else(String::new, |r| format!(" ({})", r.report.address));
        let error = RunError::Chunk {
            seq: chunk.seq,
            first_line: chunk.first_line,
            last_line: chunk.last_line(),
            worker: format!("{}{peer}", msg.id),
            error: msg.error,
        };
        self.fail(ctx, error);
    }
}
