//! The coordinator's chunks: how large the next one is, cutting it from
//! the source (as file ranges when some worker can read them, else as
//! bytes), and the frame each worker is sent.

use super::Coordinator;
use crate::error::RunError;
use crate::file_range::{read_ranges, AllowedRoots, FileRange};
use crate::mode::chunked::{guided_records, UNCOUNTED_CHUNK_BYTES};
use crate::mode::inline::{pull_chunk, pull_chunk_ranges, pull_chunk_ranges_uncounted};
use crate::mode::multiprocess::scheduler::ChunkInfo;
use crate::pipeline::Pulled;
use crate::protocol::{encode_frame, seal_chunk_frame, Message, CHUNK_HEADER_ROOM};
use std::sync::Arc;
use std::time::Instant;

/// A chunk ready to send.
#[derive(Clone)]
pub(crate) enum ChunkFrame {
    /// The frame of a `Chunk`, payload included.
    Bytes(bytes::Bytes),
    /// The frame of a `ChunkInFiles`, for workers allowed to read its
    /// files, and its ranges, for the others.
    InFiles {
        frame: bytes::Bytes,
        ranges: Arc<Vec<FileRange>>,
    },
}

impl Coordinator {
    /// The frame that sends `chunk` to `worker`: a chunk cut as file
    /// ranges goes as ranges to a worker that announced a root holding
    /// every one of its files (the same path on both sides), as bytes read
    /// here to any other.
    pub(super) fn frame_for(
        &self,
        worker: u64,
        chunk: ChunkInfo<ChunkFrame>,
    ) -> Result<bytes::Bytes, RunError> {
        let info = chunk.info();
        match chunk.frame {
            ChunkFrame::Bytes(frame) => Ok(frame),
            ChunkFrame::InFiles { frame, ranges } if self.can_read(worker, &ranges) => Ok(frame),
            ChunkFrame::InFiles { ranges, .. } => self.resolve(&info, &ranges),
        }
    }

    /// Whether `worker` announced roots that hold every file of `ranges`.
    fn can_read(&self, worker: u64, ranges: &[FileRange]) -> bool {
        self.roots
            .get(&worker)
            .is_some_and(|roots| AllowedRoots::covers(roots, ranges))
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
    /// the workers finish together), between half the batch size and
    /// twice it (with `--emit-records` the partials waiting to be
    /// merged in order hold their rendered records: 4× took the
    /// coordinator from 43 to 69 MiB), or 32× it for chunks cut by bytes
    /// (fewer partials to merge); else doubling once after two chunks per
    /// worker.
    fn chunk_records(&self) -> usize {
        let base = self.config.batch_size;
        if !self.config.grow_chunks {
            return base;
        }
        let workers = self.sched.workers().max(self.local_workers).max(1) as u64;
        match self.pipeline.source.part.remaining_estimate() {
            Some(left) => {
                // Chunks cut by bytes hold no rendered records, and each
                // partial costs a merge here: up to 32 batches (and
                // UNCOUNTED_CHUNK_BYTES), far fewer merges.
                let most = if self.uncounted { 32 } else { 2 };
                guided_records(left, base, workers as usize, most)
            }
            None => {
                let round = self.sched.next_seq() / (2 * workers);
                base.saturating_mul(1 << round.min(1))
            }
        }
    }

    /// Pulls one chunk from the source and queues its frame.
    pub(super) fn read_chunk(&mut self) -> Result<(), RunError> {
        let in_files = match self.in_files {
            Some(known) => known,
            None => {
                let readers = self.local_workers > 0 || !self.roots.is_empty();
                let can = readers && self.pipeline.source.part.chunks_in_files();
                if can {
                    tracing::info!(
                        "chunks go as file ranges to the workers allowed to read the inputs"
                    );
                }
                self.in_files = Some(can);
                self.uncounted = can && self.can_cut_by_bytes();
                if self.uncounted {
                    tracing::info!("chunks are cut by bytes: each worker counts its own lines");
                }
                can
            }
        };
        if in_files {
            self.read_chunk_ranges()
        } else {
            self.read_chunk_bytes()
        }
    }

    /// Whether chunks can be cut by bytes, their lines left uncounted:
    /// the source can cut so and its workers count, no stage depends on
    /// where its batch sits in the input, and the aggregate can move a
    /// partial's record numbers to their place.
    fn can_cut_by_bytes(&mut self) -> bool {
        let p = &mut self.pipeline;
        p.aggregate.part.renumbers()
            && p.stages.iter().all(|s| !s.part.uses_record_numbers())
            && p.source.part.cuts_by_bytes()
    }

    /// Pulls one chunk as file ranges and queues it as a `ChunkInFiles` frame.
    fn read_chunk_ranges(&mut self) -> Result<(), RunError> {
        let mut ranges = Vec::new();
        let max = self.chunk_records();
        let (source, stats, progress) = (
            &mut self.pipeline.source,
            &mut self.stats[0],
            &self.config.progress,
        );
        let got = if self.uncounted {
            // Uncounted: numbered from 1 by the worker, renumbered at the
            // merge. Half a frame at most, so that the chunk and the one
            // line that may end it past the cut fit in any frame.
            let max_bytes = UNCOUNTED_CHUNK_BYTES.min(self.config.max_frame / 2);
            pull_chunk_ranges_uncounted(source, (max, max_bytes), &mut ranges, stats, progress)?
                .then_some(0)
        } else {
            pull_chunk_ranges(source, max, &mut ranges, stats, progress)?
        };
        let Some(n) = got else {
            self.sched.set_exhausted();
            return Ok(());
        };
        let started = Instant::now();
        let info = ChunkInfo {
            seq: self.sched.next_seq(),
            first_line: if self.uncounted { 1 } else { self.next_line },
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
        let pulled = pull_chunk(
            &mut p.source,
            max,
            &mut buf,
            &mut self.stats[0],
            &self.config.progress,
        )?;
        let n = match pulled {
            Pulled::Data((), n) => n,
            Pulled::End => {
                self.sched.set_exhausted();
                return Ok(());
            }
            Pulled::Pending(wake) => {
                self.wake = Some(wake);
                return Ok(());
            }
            Pulled::Snapshot(req) => {
                let after = self.sched.next_seq();
                self.snapshots.push_back((after, req));
                return Ok(());
            }
            Pulled::Cancelled => return Err(RunError::Interrupted),
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
}

/// A failure of the coordinator itself on a chunk.
fn chunk_error(chunk: &ChunkInfo<()>, error: String) -> RunError {
    // An uncounted chunk (0 records): where its lines are is not known here.
    let (first_line, last_line) = match chunk.records {
        0 => (0, 0),
        _ => (chunk.first_line, chunk.last_line()),
    };
    RunError::Chunk {
        seq: chunk.seq,
        first_line,
        last_line,
        worker: "coordinator".into(),
        failure: None,
        error: crate::StageError::new(error),
    }
}
