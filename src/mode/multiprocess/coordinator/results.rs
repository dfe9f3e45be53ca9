//! The coordinator's side of a worker's answers: a chunk's partial
//! decoded, put in the reorder window, renumbered when its chunk was cut
//! by bytes (its records counted by the worker) and merged in sequence
//! order exactly once; a failed chunk reported with where its lines are,
//! as far as that is known.

use super::held::Kept;
use super::Coordinator;
use crate::error::RunError;
use crate::mode::chunked::merge_in_order;
use crate::mode::engine::schedule::{Answer, ChunkInfo, Completion};
use crate::mode::inline::run_sink_absorb;
use crate::mode::multiprocess::connection::Close;
use crate::pipeline::AnyData;
use crate::protocol::ChunkStats;
use actix::prelude::*;
use std::time::{Duration, Instant};

/// A worker returned a chunk's partial.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChunkDoneMsg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
    pub(crate) partial: Vec<u8>,
    pub(crate) stats: ChunkStats,
    /// `ChunkHeld`: the chunk's records are in the partial its worker
    /// holds, and `partial` is empty.
    pub(crate) held: bool,
}

/// A worker could not process a chunk.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChunkFailedMsg {
    pub(crate) id: u64,
    pub(crate) seq: u64,
    pub(crate) error: String,
    /// The stage it failed in, when it reached one.
    pub(crate) failure: Option<crate::protocol::ChunkFailure>,
}

/// A decoded partial waiting for its turn to be merged, with where it came from.
pub(crate) struct Done {
    partial: AnyData,
    worker: u64,
    chunk: ChunkInfo<()>,
    /// The chunk's records (the worker's count for an uncounted chunk).
    records: u64,
    /// The partial's encoded size (0: a chunk held by its worker).
    bytes: usize,
}

impl Coordinator {
    /// Merges every partial that is next in sequence and lets the sink absorb it.
    fn merge_ready(&mut self) -> Result<(), RunError> {
        let n = self.stats.len();
        while let Some((_seq, done)) = self.sched.pop_ready() {
            let acc = self
                .acc
                .as_mut()
                .ok_or_else(|| RunError::Runtime("coordinator lost its partial".into()))?;
            let started = Instant::now();
            let mut chunk = done.chunk;
            // An uncounted chunk's records were numbered from 1: they move
            // to their place now that every chunk before it is merged. A
            // worker's numbers: a count or a merge that would overflow (or
            // break the aggregate's invariants) fails the run, naming the
            // chunk.
            if self.uncounted {
                chunk.first_line = self.merged_records.saturating_add(1);
                chunk.records = done.records;
            }
            let merged = merge_in_order(
                self.pipeline.aggregate.part.as_ref(),
                acc,
                done.partial,
                (done.records, self.uncounted),
                &mut self.merged_records,
            );
            if let Err(error) = merged {
                return Err(RunError::Chunk {
                    seq: chunk.seq,
                    first_line: chunk.first_line,
                    last_line: chunk.last_line(),
                    worker: self.worker_label(done.worker),
                    failure: None,
                    error,
                });
            }
            self.stats[n - 2].busy += started.elapsed();
            run_sink_absorb(&mut self.pipeline.sink, acc, &mut self.stats[n - 1])?;
            if done.bytes > 0 {
                self.measure_overlap(done.bytes);
            }
            self.merged += 1;
            self.answer_snapshots();
        }
        Ok(())
    }

    /// Answers the snapshot requests whose chunks are all merged.
    pub(super) fn answer_snapshots(&mut self) {
        while self
            .snapshots
            .front()
            .is_some_and(|(after, _)| *after <= self.merged)
        {
            let Some((_, req)) = self.snapshots.pop_front() else {
                break;
            };
            if let Some(acc) = &self.acc {
                req.answer(self.pipeline.aggregate.part.as_ref(), acc);
            }
        }
    }
}

impl Handler<ChunkDoneMsg> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: ChunkDoneMsg, ctx: &mut Context<Self>) {
        self.sent_in_files.remove(&(msg.id, msg.seq));
        let (chunk, sent) = match self.sched.answer(msg.id, msg.seq) {
            Answer::First(c) => (c.info(), msg.held.then(|| c.clone())),
            Answer::Late => {
                // Another worker answered it first: merged once, from there.
                tracing::debug!(
                    worker = msg.id,
                    seq = msg.seq,
                    "dropping a late copy's result"
                );
                self.keep_late(msg.id, msg.seq);
                self.sched.release(msg.id, msg.seq);
                return self.pump(ctx);
            }
            Answer::Unknown => {
                tracing::debug!(
                    worker = msg.id,
                    seq = msg.seq,
                    "ignoring a chunk it does not hold"
                );
                return;
            }
        };
        // A held chunk's answer carries no partial: the chunk is in the
        // worker's own.
        let decoded = match msg.held {
            true => Ok(self.pipeline.aggregate.part.empty()),
            false => self.pipeline.aggregate.part.decode(&msg.partial),
        };
        let partial = match decoded {
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
        let counted = !self.uncounted;
        // A partial that does not account for its chunk's records is
        // treated as an undecodable one: the worker goes, its chunks with it.
        let records = match self.check_answer(msg.seq, &msg.stats, &partial) {
            Ok(records) => records,
            Err(why) => {
                let lines = match chunk.records {
                    0 => String::new(),
                    _ => format!(" (lines {}-{})", chunk.first_line, chunk.last_line()),
                };
                tracing::warn!(
                    "worker {}: chunk {}{lines}: wrong answer, dropping the worker: {why}",
                    self.worker_label(msg.id),
                    msg.seq
                );
                if let Some(conn) = self.conns.get(&msg.id) {
                    // Bounded: the connection closes on the first one.
                    conn.do_send(Close);
                }
                return;
            }
        };
        let done = Done {
            partial,
            worker: msg.id,
            chunk,
            records,
            bytes: if msg.held { 0 } else { msg.partial.len() },
        };
        if self.sched.complete(msg.id, msg.seq, done, Instant::now()) != Completion::Accepted {
            tracing::debug!(
                worker = msg.id,
                seq = msg.seq,
                "ignoring a duplicate result"
            );
            return self.pump(ctx);
        }
        if let Some(sent) = sent {
            match Kept::new(&sent, records, &msg.stats.parts) {
                Some(kept) => self.keep(msg.id, msg.seq, kept),
                None => {
                    let e = RunError::Runtime(format!(
                        "parpipe internal error: chunk {} is held by worker {} but was not \
                         cut as file ranges",
                        msg.seq,
                        self.worker_label(msg.id)
                    ));
                    return self.fail(ctx, e);
                }
            }
        }
        if !counted {
            // Read here as 0 records: the source's row learns them now.
            // Saturating: a worker's number (the merge checks it).
            self.stats[0].records_out = self.stats[0].records_out.saturating_add(records);
            self.config.progress.add_records(records);
        }
        let n = self.stats.len();
        for (i, &(rin, rout, nanos)) in msg.stats.parts.iter().enumerate().take(n - 2) {
            self.stats[i + 1].record_batch(rin, rout, Duration::from_nanos(nanos));
        }
        if let Some(row) = self.rows.get_mut(&msg.id) {
            row.last_heard = Instant::now();
            let r = &mut row.report;
            r.chunks += 1;
            r.records = r.records.saturating_add(records);
            r.busy_seconds += msg.stats.busy_nanos as f64 / 1e9;
            // Holds CPU seconds until `finish` turns it into a percentage.
            // Threads answer out of order: the latest sample is the largest.
            r.cpu_percent = r.cpu_percent.max(msg.stats.process_cpu_seconds);
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
        let chunk = match self.sched.answer(msg.id, msg.seq) {
            Answer::First(c) => c,
            Answer::Late => {
                // Another worker answered it first; that result stands.
                tracing::warn!(
                    worker = msg.id,
                    seq = msg.seq,
                    "a copy of chunk {} failed after another worker answered it: {}",
                    msg.seq,
                    msg.error
                );
                self.sched.release(msg.id, msg.seq);
                return self.pump(ctx);
            }
            Answer::Unknown if msg.failure.is_none() && self.holds_chunk(msg.id, msg.seq) => {
                // A holding worker that cannot send its partial (too large
                // for a frame): the run cannot finish without it.
                let e = RunError::Runtime(format!(
                    "worker {}: {}",
                    self.worker_label(msg.id),
                    msg.error
                ));
                return self.fail(ctx, e);
            }
            Answer::Unknown => return,
        };
        let (mut first_line, mut last_line) = (chunk.first_line, chunk.last_line());
        // An uncounted chunk's lines were numbered from 1 in the worker:
        // where they are is known once every chunk before it is merged.
        let lines_before = if !self.uncounted {
            Some(0)
        } else if self.merged == chunk.seq {
            (first_line, last_line) = (self.merged_records.saturating_add(1), 0);
            Some(self.merged_records)
        } else {
            (first_line, last_line) = (0, 0);
            None
        };
        let error = RunError::Chunk {
            seq: chunk.seq,
            first_line,
            last_line,
            worker: self.worker_label(msg.id),
            failure: msg.failure.map(|f| {
                let mut batch = f.batch;
                batch.first_line =
                    lines_before.map_or(0, |before| batch.first_line.saturating_add(before));
                Box::new(crate::error::StageFailure {
                    stage: f.stage,
                    batch,
                    panicked: f.panicked,
                })
            }),
            error: crate::StageError::new(msg.error),
        };
        self.fail(ctx, error);
    }
}
