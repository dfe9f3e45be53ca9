//! Workers that hold their partial (the plan's `partial_per_worker`: a
//! fold that commutes, chunks cut as file ranges, a worker of one thread).
//! Such a worker answers its first chunk with its own partial, then each
//! chunk it folded into one partial of its own with `ChunkHeld`; the
//! coordinator keeps, per worker, the chunks whose records that partial
//! holds (their ranges: cheap), and asks for it with `Flush` once every
//! chunk is answered. Whether holding pays is measured once, on the first
//! two partials merged ([`Coordinator::measure_overlap`]); when it does
//! not, every worker is told `Unhold`, answered with `Held`. A holding
//! worker's chunks are not copied when overdue, nor others' sent to it
//! (the scheduler's `set_holds`): a copy answered by two workers would put
//! its records in two partials, and the one not merged takes every chunk
//! in it along.
//!
//! The partial is merged only when it holds exactly the chunks this
//! worker answered first. It is not merged, and those chunks run again
//! elsewhere under new sequence numbers, when:
//! - the worker leaves before its `Held` comes (its partial left with it);
//! - its `Held` names other chunks: a chunk it answered after another
//!   worker did (a copy made before it began to hold, counted from
//!   there), or fewer chunks (a chunk failed to be read after its records
//!   began to fold in);
//! - its `Held` does not come within the flush deadline (the larger of the
//!   heartbeat timeout and the run's overdue deadline): it is dropped.
//!
//! A `Held` naming a chunk it was never sent drops the worker as well.
//! Counts taken for a chunk that runs again (its records, its stages'
//! records, the worker's row) are taken back first, so the report counts
//! every record once.

use super::chunks::ChunkFrame;
use super::Coordinator;
use crate::error::RunError;
use crate::file_range::FileRange;
use crate::mode::engine::schedule::ChunkInfo;
use crate::mode::inline::run_sink_absorb;
use crate::mode::multiprocess::connection::{AskHeld, Close};
use crate::protocol::{encode_frame, Message};
use actix::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A holding worker's partial (sent after `Flush`).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct HeldMsg {
    pub(crate) id: u64,
    pub(crate) seqs: Vec<u64>,
    pub(crate) partial: Vec<u8>,
}

/// What one holding worker's partial holds, as far as the coordinator knows.
#[derive(Default)]
pub(super) struct Holding {
    /// Chunks it answered first: their records are in its partial.
    chunks: BTreeMap<u64, Kept>,
    /// Chunks it answered after another worker: in its partial as well,
    /// which is then not merged.
    late: HashSet<u64>,
    /// When it was sent `Flush`, until its `Held` comes.
    asked: Option<Instant>,
}

/// A chunk in a held partial: where it is, and what was counted for it.
pub(super) struct Kept {
    chunk: ChunkInfo<Arc<Vec<FileRange>>>,
    records: u64,
    parts: Vec<(u64, u64, u64)>,
}

impl Kept {
    /// `chunk` (as it was sent), answered with `records` and the stages'
    /// `parts`; `None` for a chunk not cut as file ranges (the plan holds
    /// partials only where every chunk is).
    pub(super) fn new(
        chunk: &ChunkInfo<ChunkFrame>,
        records: u64,
        parts: &[(u64, u64, u64)],
    ) -> Option<Kept> {
        let ChunkFrame::InFiles { ranges, .. } = &chunk.frame else {
            return None;
        };
        Some(Kept {
            chunk: chunk.info().with_frame(Arc::clone(ranges)),
            records,
            parts: parts.to_vec(),
        })
    }
}

impl Coordinator {
    /// The partials merged, one at a time (`bytes`: its encoded size),
    /// until it is decided whether holding pays: a holding worker answers
    /// its first chunk with its own partial, and once two such are merged
    /// (the chunks between them are held: they merge as empty ones), the
    /// merge is measured against the two. Partials that overlap (a bounded
    /// set of keys, such as customers or status codes) merge into much
    /// less than their sum, and each worker holding one partial then
    /// spares this process the decoding and merging of every chunk's.
    /// Partials that hardly overlap (distinct users per day) would only
    /// move that work to the run's end, where nothing else runs beside it:
    /// every worker is then told `Unhold`. Decided once, for the whole run.
    pub(super) fn measure_overlap(&mut self, bytes: usize) {
        if self.holding.is_empty() || self.hold_decided.is_some() {
            return;
        }
        self.overlap.0 += 1;
        self.overlap.1 = self.overlap.1.saturating_add(bytes);
        if self.overlap.0 < 2 {
            return;
        }
        let Some(acc) = self.acc.as_ref() else {
            return;
        };
        let merged = self
            .pipeline
            .aggregate
            .part
            .encoded_len(acc)
            .unwrap_or(usize::MAX);
        let sum = self.overlap.1;
        // At least a third saved.
        let hold = merged.saturating_mul(3) <= sum.saturating_mul(2);
        tracing::info!(
            merged,
            sum,
            hold,
            "the first two partials, encoded, against their merge: workers {} their partials",
            if hold { "hold" } else { "do not hold" }
        );
        self.hold_decided = Some(hold);
        if !hold {
            let workers: Vec<u64> = self.holding.keys().copied().collect();
            for id in workers {
                self.unhold(id);
            }
        }
    }

    /// Tells `worker` to send what it holds and to hold no more: its
    /// chunks may be copied from then on, and others' sent to it.
    pub(super) fn unhold(&mut self, worker: u64) {
        self.sched.set_holds(worker, false);
        let (Some(conn), Some(h)) = (self.conns.get(&worker), self.holding.get_mut(&worker)) else {
            return;
        };
        h.asked = Some(Instant::now());
        // Bounded: once per worker.
        conn.do_send(AskHeld { unhold: true });
    }

    /// Whether `worker`'s partial holds chunk `seq`.
    pub(super) fn holds_chunk(&self, worker: u64, seq: u64) -> bool {
        self.holding
            .get(&worker)
            .is_some_and(|h| h.chunks.contains_key(&seq))
    }

    /// `worker` answered `kept` first: its records are in its partial.
    pub(super) fn keep(&mut self, worker: u64, seq: u64, kept: Kept) {
        if let Some(h) = self.holding.get_mut(&worker) {
            h.chunks.insert(seq, kept);
        }
    }

    /// `worker` answered `seq` after another worker did.
    pub(super) fn keep_late(&mut self, worker: u64, seq: u64) {
        if let Some(h) = self.holding.get_mut(&worker) {
            h.late.insert(seq);
        }
    }

    /// Every chunk is answered: asks each worker that holds chunks for its
    /// partial. True while some partial has not come back, or some chunk
    /// waits to run again.
    pub(super) fn flush_held(&mut self) -> bool {
        let mut waiting = !self.rerun.is_empty();
        for (id, h) in &mut self.holding {
            if h.chunks.is_empty() && h.late.is_empty() {
                continue;
            }
            waiting = true;
            if h.asked.is_none() {
                if let Some(conn) = self.conns.get(id) {
                    h.asked = Some(Instant::now());
                    // Bounded: one per held partial.
                    conn.do_send(AskHeld { unhold: false });
                }
            }
        }
        waiting
    }

    /// Drops the workers whose partial has not come within the flush
    /// deadline; their chunks run again.
    pub(super) fn check_flush_deadline(&mut self) {
        let deadline = self
            .sched
            .deadline()
            .unwrap_or(Duration::ZERO)
            .max(self.config.heartbeat_timeout);
        let overdue: Vec<u64> = self
            .holding
            .iter()
            .filter(|(_, h)| h.asked.is_some_and(|t| t.elapsed() > deadline))
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            tracing::warn!(
                "worker {}: its partial did not come within {deadline:?}; dropping it, \
                 its chunks run again",
                self.worker_label(id)
            );
            self.run_again(id);
            if let Some(conn) = self.conns.get(&id) {
                conn.do_send(Close);
            }
        }
    }

    /// `worker`'s partial is lost: every chunk in it runs again, under new
    /// sequence numbers, and what was counted for them is taken back.
    pub(super) fn run_again(&mut self, worker: u64) {
        let Some(h) = self.holding.get_mut(&worker) else {
            return;
        };
        let chunks = std::mem::take(&mut h.chunks);
        h.late.clear();
        h.asked = None;
        if chunks.is_empty() {
            return;
        }
        tracing::warn!(
            worker,
            "chunks {:?} run again: the partial holding them is lost",
            chunks.keys().collect::<Vec<_>>()
        );
        let n = self.stats.len();
        for (_, kept) in chunks {
            self.merged_records = self.merged_records.saturating_sub(kept.records);
            if self.uncounted {
                let source = &mut self.stats[0];
                source.records_out = source.records_out.saturating_sub(kept.records);
                self.config.progress.take_back(kept.records);
            }
            for (i, &(rin, rout, _)) in kept.parts.iter().enumerate().take(n - 2) {
                let row = &mut self.stats[i + 1];
                row.records_in = row.records_in.saturating_sub(rin);
                row.records_out = row.records_out.saturating_sub(rout);
            }
            if let Some(row) = self.rows.get_mut(&worker) {
                let r = &mut row.report;
                r.chunks = r.chunks.saturating_sub(1);
                r.records = r.records.saturating_sub(kept.records);
                r.requeued_chunks += 1;
            }
            self.rerun.push(kept.chunk);
        }
    }

    /// Queues the chunks to run again, once the source is done (the
    /// reading thread numbers the chunks it cuts until then).
    pub(super) fn queue_reruns(&mut self) {
        if self.rerun.is_empty() || !self.sched.source_done() {
            return;
        }
        for chunk in std::mem::take(&mut self.rerun) {
            let seq = self.sched.next_seq();
            let msg = Message::ChunkInFiles {
                seq,
                first_line: chunk.first_line,
                records: chunk.records,
                ranges: chunk.frame.as_ref().clone(),
            };
            // It was framed once already with these ranges.
            match encode_frame(&msg, self.config.max_frame) {
                Ok(frame) => self.sched.push_again(ChunkInfo {
                    seq,
                    first_line: chunk.first_line,
                    records: chunk.records,
                    frame: ChunkFrame::InFiles {
                        frame: frame.into(),
                        ranges: chunk.frame,
                    },
                }),
                Err(e) => tracing::error!("cannot frame chunk {seq} again: {e}"),
            }
        }
    }

    /// Merges `msg`'s partial when it holds exactly the chunks its worker
    /// answered first; otherwise they run again (see the module text).
    fn take_held(&mut self, msg: HeldMsg) -> Result<(), RunError> {
        let Some(h) = self.holding.get_mut(&msg.id) else {
            return Ok(());
        };
        h.asked = None;
        let named: HashSet<u64> = msg.seqs.iter().copied().collect();
        let exact = named.len() == msg.seqs.len()
            && named.len() == h.chunks.len()
            && h.chunks.keys().all(|seq| named.contains(seq));
        let strange = named
            .iter()
            .any(|seq| !h.chunks.contains_key(seq) && !h.late.contains(seq));
        h.late.clear();
        let partial = match exact {
            true => self.pipeline.aggregate.part.decode(&msg.partial).ok(),
            false => None,
        };
        let Some(partial) = partial else {
            tracing::warn!(
                "worker {}: its partial holds chunks {:?}, not the {} it answered first; \
                 they run again",
                self.worker_label(msg.id),
                msg.seqs,
                self.holding.get(&msg.id).map_or(0, |h| h.chunks.len())
            );
            self.run_again(msg.id);
            if strange || exact {
                // A chunk it was never sent, or a partial it cannot encode
                // as its own aggregate would: not a worker to keep.
                if let Some(conn) = self.conns.get(&msg.id) {
                    conn.do_send(Close);
                }
            }
            return Ok(());
        };
        if let Some(h) = self.holding.get_mut(&msg.id) {
            h.chunks.clear();
        }
        let acc = self
            .acc
            .as_mut()
            .ok_or_else(|| RunError::Runtime("coordinator lost its partial".into()))?;
        let started = Instant::now();
        // Its records were counted, and need no renumbering (the fold
        // commutes), as its chunks were answered.
        if let Err(error) = self.pipeline.aggregate.part.try_merge(acc, partial) {
            return Err(RunError::Runtime(format!(
                "worker {}: its partial does not merge: {error}",
                self.worker_label(msg.id)
            )));
        }
        let n = self.stats.len();
        self.stats[n - 2].busy += started.elapsed();
        run_sink_absorb(&mut self.pipeline.sink, acc, &mut self.stats[n - 1])
    }
}

impl Handler<HeldMsg> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: HeldMsg, ctx: &mut Context<Self>) {
        if let Err(e) = self.take_held(msg) {
            return self.fail(ctx, e);
        }
        self.pump(ctx);
    }
}
