//! The coordinator's input, on a thread of its own: the source is pulled
//! and each chunk cut (as file ranges or as bytes) and framed there, one
//! chunk per request, so that the coordinator's thread — the workers'
//! sockets, their heartbeats, the merge — never waits on a slow pipe, a
//! stalled file system or a busy generator. A slow input only delays
//! chunks.
//!
//! The coordinator asks for a chunk when the scheduler wants one
//! (a few ahead of the workers' demand, within the read-ahead window), so
//! at most a few requests and replies are ever queued. When the run ends,
//! dropping the [`Reader`] closes the request channel: the thread ends
//! after the pull it is in, if any, returns.

use super::chunks::{chunk_error, ChunkFrame};
use super::Coordinator;
use crate::error::RunError;
use crate::file_range::FileRange;
use crate::metrics::{Progress, StageStats};
use crate::mode::engine::schedule::ChunkInfo;
use crate::mode::inline::{pull_chunk, pull_chunk_ranges, pull_chunk_ranges_uncounted};
use crate::mode::{Cancel, RunConfig};
use crate::pipeline::{AnyData, DynSource, Named, Pulled, SnapshotReq};
use crate::plan::{ChunkSizing, Chunking};
use crate::protocol::{encode_frame, seal_chunk_frame, Message, CHUNK_HEADER_ROOM};
use crate::stage::StageError;
use actix::prelude::*;
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// What the coordinator knows when it asks for the next chunk.
pub(crate) struct ReadRequest {
    /// Workers to size chunks for (connected, or started locally).
    pub(crate) workers: usize,
    /// Some worker can read the inputs itself (local workers were started,
    /// or one announced roots): chunks may be cut as file ranges.
    pub(crate) readers: bool,
}

/// The reader's answer to one [`ReadRequest`].
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ReadReply {
    pub(crate) got: Got,
    /// The source's counts and time for this pull, to add to its row.
    pub(crate) stats: StageStats,
}

/// What one pull gave.
pub(crate) enum Got {
    /// The next chunk, with whether it was cut by bytes, uncounted.
    Chunk {
        chunk: ChunkInfo<ChunkFrame>,
        uncounted: bool,
    },
    /// A snapshot request, after every chunk sent before it.
    Snapshot(SnapshotReq),
    /// The input is exhausted.
    End,
    /// The source or the chunk failed: the run fails.
    Failed(RunError),
}

/// The handle on the reading thread.
pub(crate) struct Reader {
    requests: mpsc::Sender<ReadRequest>,
}

impl Reader {
    /// Moves the source to a thread of its own that answers `to`, cutting
    /// chunks as the plan says (its chunking and sizing, and how many
    /// local workers it starts).
    pub(crate) fn start(
        source: Named<Box<dyn DynSource>>,
        config: &RunConfig,
        (chunking, sizing, local_workers): (Chunking, ChunkSizing, usize),
        to: Addr<Coordinator>,
    ) -> std::io::Result<Reader> {
        let (requests, rx) = mpsc::channel();
        let stats = StageStats::new(source.name.clone(), crate::metrics::StageKind::Source);
        let mut cutter = Cutter {
            source,
            stats,
            progress: config.progress.clone(),
            cancel: config.cancel.clone(),
            chunking,
            sizing,
            max_frame: config.max_frame,
            local_workers,
            decided: None,
            seq: 0,
            next_line: 1,
            chunk_capacity: 1 << 16,
            ended: false,
            runtime: None,
        };
        std::thread::Builder::new()
            .name("parpipe-coordinator-input".into())
            .spawn(move || {
                while let Ok(req) = rx.recv() {
                    let got = cutter.cut(&req);
                    let stats = cutter.take_stats();
                    // Bounded: one reply per request, and the coordinator
                    // has at most a few requests out.
                    to.do_send(ReadReply { got, stats });
                }
            })?;
        Ok(Reader { requests })
    }

    /// Asks for the next chunk; false when the thread is gone.
    pub(crate) fn ask(&self, req: ReadRequest) -> bool {
        self.requests.send(req).is_ok()
    }
}

/// The reading thread's state: the source and how chunks are cut.
struct Cutter {
    source: Named<Box<dyn DynSource>>,
    /// The source's row, for the pull being answered.
    stats: StageStats,
    progress: Progress,
    cancel: Cancel,
    /// The plan's chunking, and its sizing (of the chunking used, once
    /// decided).
    chunking: Chunking,
    sizing: ChunkSizing,
    max_frame: usize,
    local_workers: usize,
    /// Whether chunks are cut as file ranges, and by bytes (decided at
    /// the first request).
    decided: Option<(bool, bool)>,
    /// The next chunk's sequence number.
    seq: u64,
    /// The next chunk's first line (chunks counted here).
    next_line: u64,
    /// Capacity to allocate for the next chunk's frame (from the last one).
    chunk_capacity: usize,
    /// The source said it has no more: it is not pulled again.
    ended: bool,
    /// What waits for a waiting source's wake-up (made at the first wait).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Cutter {
    /// The source's counts since the last reply.
    fn take_stats(&mut self) -> StageStats {
        let fresh = StageStats::new(self.stats.name.clone(), self.stats.kind);
        std::mem::replace(&mut self.stats, fresh)
    }

    /// Answers one request.
    fn cut(&mut self, req: &ReadRequest) -> Got {
        if self.ended {
            return Got::End;
        }
        if self.decided.is_none() {
            // Ranges as the plan says, when some worker reads them: else
            // the coordinator ships the text after all.
            let readers = req.readers || self.local_workers > 0;
            let can = self.chunking.is_ranges() && readers && self.source.part.chunks_in_files();
            if can {
                tracing::info!(
                    "chunks go as file ranges to the workers allowed to read the inputs"
                );
            }
            let uncounted = can
                && self.chunking == Chunking::UncountedRanges
                && self.source.part.cuts_by_bytes();
            if uncounted {
                tracing::info!("chunks are cut by bytes: each worker counts its own lines");
            }
            let used = match (can, uncounted) {
                (false, _) => Chunking::ShippedText,
                (true, true) => Chunking::UncountedRanges,
                (true, false) => Chunking::CountedRanges,
            };
            if used != self.chunking {
                let s = self.sizing;
                self.sizing = ChunkSizing::for_ranges(
                    s.batch_records,
                    s.guided,
                    s.readers,
                    used,
                    self.max_frame,
                );
            }
            self.decided = Some((can, uncounted));
        }
        let (in_files, uncounted) = self.decided.unwrap_or_default();
        let got = if in_files {
            self.cut_ranges(req, uncounted)
        } else {
            self.cut_bytes(req)
        };
        let got = match got {
            Ok(Some(chunk)) => Got::Chunk { chunk, uncounted },
            Ok(None) => {
                self.ended = true;
                Got::End
            }
            Err(Wait::Snapshot(req)) => Got::Snapshot(req),
            Err(Wait::Failed(e)) => Got::Failed(e),
        };
        if let Got::Chunk { .. } = got {
            self.seq += 1;
        }
        got
    }

    /// Records in the next chunk, by the plan's one rule
    /// ([`ChunkSizing::records`]), among the workers connected (at least
    /// the local ones).
    fn chunk_records(&self, req: &ReadRequest) -> usize {
        let left = self.source.part.remaining_estimate();
        self.sizing.records(left, req.workers, self.seq)
    }

    /// Pulls one chunk as file ranges, framed as `ChunkInFiles`.
    fn cut_ranges(
        &mut self,
        req: &ReadRequest,
        uncounted: bool,
    ) -> Result<Option<ChunkInfo<ChunkFrame>>, Wait> {
        let mut ranges: Vec<FileRange> = Vec::new();
        let max = self.chunk_records(req);
        let (source, stats, progress) = (&mut self.source, &mut self.stats, &self.progress);
        let got = if uncounted {
            // Uncounted: numbered from 1 by the worker, renumbered at the
            // merge. Half a frame at most, so that the chunk and the one
            // line that may end it past the cut fit in any frame.
            let max_bytes = self.sizing.most_bytes.unwrap_or(self.max_frame / 2);
            pull_chunk_ranges_uncounted(source, (max, max_bytes), &mut ranges, stats, progress)?
                .then_some(0)
        } else {
            pull_chunk_ranges(source, max, &mut ranges, stats, progress)?
        };
        let Some(n) = got else {
            return Ok(None);
        };
        let started = Instant::now();
        let info = ChunkInfo {
            seq: self.seq,
            first_line: if uncounted { 1 } else { self.next_line },
            records: n as u64,
            frame: (),
        };
        self.next_line += n as u64;
        let msg = Message::ChunkInFiles {
            seq: info.seq,
            first_line: info.first_line,
            records: info.records,
            ranges,
        };
        let frame = encode_frame(&msg, self.max_frame)
            .map_err(|e| chunk_error(&info, format!("cannot send the chunk: {e}")))?;
        let Message::ChunkInFiles { ranges, .. } = msg else {
            unreachable!("built just above")
        };
        self.stats.busy += started.elapsed();
        Ok(Some(info.with_frame(ChunkFrame::InFiles {
            frame: frame.into(),
            ranges: Arc::new(ranges),
        })))
    }

    /// Pulls one chunk, already in wire form, framed as `Chunk`. The
    /// source writes straight into the frame's buffer, after room for the
    /// header, so the chunk is not copied again here. A source that is
    /// waiting for input is waited for here (this thread has nothing else
    /// to do).
    fn cut_bytes(&mut self, req: &ReadRequest) -> Result<Option<ChunkInfo<ChunkFrame>>, Wait> {
        let max = self.chunk_records(req);
        let mut buf = Vec::with_capacity(self.chunk_capacity);
        let n = loop {
            buf.clear();
            buf.resize(CHUNK_HEADER_ROOM, 0);
            let pulled = pull_chunk(
                &mut self.source,
                max,
                &mut buf,
                &mut self.stats,
                &self.progress,
            )?;
            match pulled {
                Pulled::Data((), n) => break n,
                Pulled::End => return Ok(None),
                Pulled::Pending(wake) => self.wait(wake)?,
                Pulled::Snapshot(req) => return Err(Wait::Snapshot(req)),
                Pulled::Cancelled => return Err(Wait::Failed(RunError::Interrupted)),
            }
        };
        // Chunks are alike in size: the next buffer is allocated once.
        self.chunk_capacity = (buf.len() + buf.len() / 8).min(self.max_frame + 64);
        let started = Instant::now();
        let info = ChunkInfo {
            seq: self.seq,
            first_line: self.next_line,
            records: n as u64,
            frame: (),
        };
        self.next_line += n as u64;
        let frame = seal_chunk_frame(buf, info.seq, info.first_line, info.records, self.max_frame)
            .map_err(|e| chunk_error(&info, format!("cannot send the chunk: {e}")))?;
        self.stats.busy += started.elapsed();
        Ok(Some(info.with_frame(ChunkFrame::Bytes(frame))))
    }

    /// Waits until a waiting source may have input, or the run is cancelled.
    fn wait(&mut self, wake: crate::pipeline::Wake) -> Result<(), Wait> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    Wait::Failed(RunError::Runtime(format!(
                        "cannot wait for the source: {e}"
                    )))
                })?;
            self.runtime = Some(runtime);
        }
        if let Some(runtime) = &self.runtime {
            runtime.block_on(self.cancel.or_cancelled(wake));
        }
        if self.cancel.is_cancelled() {
            return Err(Wait::Failed(RunError::Interrupted));
        }
        Ok(())
    }
}

/// Why a pull gave no chunk (other than the end of the input).
enum Wait {
    Snapshot(SnapshotReq),
    Failed(RunError),
}

impl From<RunError> for Wait {
    fn from(e: RunError) -> Self {
        Wait::Failed(e)
    }
}

/// What is left in the pipeline once its source moved to the reader.
pub(super) struct Moved;

impl DynSource for Moved {
    fn next_batch(&mut self, _max: usize) -> Result<Pulled<AnyData>, StageError> {
        Ok(Pulled::End)
    }

    fn size_hint(&self) -> Option<u64> {
        None
    }

    fn remaining_estimate(&self) -> Option<u64> {
        None
    }

    fn next_chunk(&mut self, _max: usize, _out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        Ok(Pulled::End)
    }
}
