//! A worker's processing of one chunk, apart from the socket: a chunk comes
//! in as a `Chunk` or `ChunkInFiles` message (its bytes in the frame, or in
//! local files read here) and goes out as `ChunkDone` or `ChunkFailed`.

use crate::error::RunError;
use crate::file_range::{read_ranges_within, AllowedRoots, FileRange};
use crate::metrics::StageStats;
use crate::mode::inline::{run_aggregate, run_stage};
use crate::pipeline::Pipeline;
use crate::protocol::{ChunkFailure, ChunkStats, Message};
use crate::stage::BatchInfo;
use std::time::Instant;

/// One chunk to process.
pub(crate) struct Work {
    seq: u64,
    first_line: u64,
    records: u64,
    payload: Payload,
}

/// Where a chunk's bytes are.
enum Payload {
    /// In the frame.
    Bytes(bytes::Bytes),
    /// In local files, to be read by the processing thread.
    Files(Vec<FileRange>),
}

impl Work {
    /// The work a `Chunk` message carries, or a `ChunkInFiles` one when
    /// `accept_files`; any other message is handed back.
    pub(crate) fn from_message(msg: Message, accept_files: bool) -> Result<Work, Message> {
        match msg {
            Message::Chunk {
                seq,
                first_line,
                records,
                payload,
            } => Ok(Work {
                seq,
                first_line,
                records,
                payload: Payload::Bytes(payload),
            }),
            Message::ChunkInFiles {
                seq,
                first_line,
                records,
                ranges,
            } if accept_files => Ok(Work {
                seq,
                first_line,
                records,
                payload: Payload::Files(ranges),
            }),
            other => Err(other),
        }
    }
}

/// Runs chunks through a pipeline's stages and aggregate, one at a time.
pub(crate) struct ChunkProcessor {
    pipeline: Pipeline,
    max_frame: usize,
    batch_size: usize,
    usage: ProcessUsage,
    /// Chunks read from files land here, one after another.
    scratch: Vec<u8>,
    /// Where a chunk is cut into batches: (end offset, records).
    cuts: Vec<(usize, usize)>,
    /// The only directories chunks are read from.
    roots: AllowedRoots,
}

impl ChunkProcessor {
    /// A processor for `pipeline` (only its source's decoding, its stages
    /// and its aggregate are used), with chunks cut into batches of at
    /// most `batch_size` records, and chunks in files read only under `roots`.
    pub(crate) fn new(
        pipeline: Pipeline,
        max_frame: usize,
        batch_size: usize,
        roots: AllowedRoots,
    ) -> Self {
        ChunkProcessor {
            pipeline,
            max_frame,
            batch_size,
            usage: ProcessUsage::new(),
            scratch: Vec::new(),
            cuts: Vec::new(),
            roots,
        }
    }

    /// Processes `w` into its `ChunkDone`, or its `ChunkFailed`.
    pub(crate) fn process(&mut self, w: Work) -> Message {
        let started = Instant::now();
        let bytes = match &w.payload {
            Payload::Bytes(b) => Ok(&b[..]),
            Payload::Files(ranges) => {
                self.scratch.clear();
                read_ranges_within(&self.roots, ranges, &mut self.scratch, self.max_frame)
                    .map(|()| {
                        tracing::debug!(
                            "chunk {}: read {} bytes from {} file range(s)",
                            w.seq,
                            self.scratch.len(),
                            ranges.len()
                        );
                        &self.scratch[..]
                    })
                    .map_err(|e| Failed::plain(format!("cannot read the chunk: {e}")))
            }
        };
        let processed = bytes.and_then(|bytes| {
            process_chunk(
                &mut self.pipeline,
                &w,
                bytes,
                self.batch_size,
                &mut self.cuts,
            )
        });
        match processed {
            Ok((partial, parts, records)) => {
                let (cpu, rss) = self.usage.sample();
                Message::ChunkDone {
                    seq: w.seq,
                    partial,
                    stats: ChunkStats {
                        records,
                        parts,
                        busy_nanos: started.elapsed().as_nanos() as u64,
                        process_cpu_seconds: cpu,
                        process_peak_rss: rss,
                    },
                }
            }
            Err(Failed { error, failure }) => {
                tracing::warn!(pipeline = %self.pipeline.name, "chunk {} failed: {error}", w.seq);
                Message::ChunkFailed {
                    seq: w.seq,
                    error,
                    failure,
                }
            }
        }
    }
}

/// Why a chunk failed: the text, and the stage when it reached one.
struct Failed {
    error: String,
    failure: Option<ChunkFailure>,
}

impl Failed {
    fn plain(error: String) -> Self {
        Failed {
            error,
            failure: None,
        }
    }
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed::plain(error)
    }
}

impl From<RunError> for Failed {
    /// A stage's failure keeps its stage and batch, so that the
    /// coordinator reports it as serial mode would; only the user error's
    /// text crosses the wire.
    fn from(e: RunError) -> Self {
        match e {
            RunError::Stage {
                stage,
                batch,
                panicked,
                error,
                ..
            } => Failed {
                error: error.to_string(),
                failure: Some(ChunkFailure {
                    stage,
                    batch,
                    panicked,
                }),
            },
            other => Failed::plain(other.to_string()),
        }
    }
}

/// `(records_in, records_out, busy_nanos)` per stage, then the aggregate.
type PartTimes = Vec<(u64, u64, u64)>;

/// Runs the stages and the aggregate of `pipeline` on one chunk, part by
/// part (at most `batch_size` records each, see [`ChunkSource::split_chunk`]),
/// into one partial.
///
/// [`ChunkSource::split_chunk`]: crate::ChunkSource::split_chunk
fn process_chunk(
    pipeline: &mut Pipeline,
    w: &Work,
    payload: &[u8],
    batch_size: usize,
    cuts: &mut Vec<(usize, usize)>,
) -> Result<(Vec<u8>, PartTimes, u64), Failed> {
    let records = if w.records == 0 {
        // Cut by bytes, so the coordinator did not count the records (only
        // a source that can count them cuts so); or an empty chunk.
        pipeline
            .source
            .part
            .count_chunk_records(payload)
            .unwrap_or(0)
    } else {
        usize::try_from(w.records).map_err(|e| Failed::plain(format!("chunk too large: {e}")))?
    };
    cuts.clear();
    pipeline
        .source
        .part
        .split_chunk(payload, records, batch_size, cuts);
    if cuts.iter().map(|&(_, n)| n).sum::<usize>() != records {
        return Err(Failed::plain(format!(
            "the chunk's parts do not add up to its {records} records"
        )));
    }
    let mut stage_stats: Vec<StageStats> = pipeline
        .stages
        .iter()
        .map(|s| StageStats::new(&s.name, crate::metrics::StageKind::Stage))
        .collect();
    let mut agg_stats = StageStats::new(
        &pipeline.aggregate.name,
        crate::metrics::StageKind::Aggregate,
    );
    let mut acc = pipeline.aggregate.part.empty();
    let (mut start, mut first_line) = (0, w.first_line);
    for &(end, part_records) in cuts.iter() {
        let bytes = payload
            .get(start..end)
            .ok_or_else(|| Failed::plain(format!("chunk part {start}..{end} out of range")))?;
        start = end;
        let info = BatchInfo {
            seq: w.seq,
            first_line,
            records: part_records as u64,
        };
        first_line += part_records as u64;
        let (mut data, mut n) = pipeline
            .source
            .part
            .decode_chunk(bytes, &info)
            .map_err(|e| Failed::plain(format!("cannot decode the chunk: {e}")))?;
        if n != part_records {
            return Err(Failed::plain(format!(
                "the chunk holds {n} records where its header says {part_records}"
            )));
        }
        for (stage, stats) in pipeline.stages.iter_mut().zip(&mut stage_stats) {
            (data, n) = run_stage(stage, data, n, &info, stats)?;
        }
        run_aggregate(
            &mut pipeline.aggregate,
            &mut acc,
            data,
            n,
            &info,
            &mut agg_stats,
        )?;
    }
    let parts = stage_stats
        .iter()
        .chain(std::iter::once(&agg_stats))
        .map(|s| (s.records_in, s.records_out, s.busy.as_nanos() as u64))
        .collect();
    let partial = pipeline
        .aggregate
        .part
        .encode(&acc)
        .map_err(|e| Failed::plain(format!("cannot encode the partial: {e}")))?;
    Ok((partial, parts, records as u64))
}

/// This process's CPU time and peak memory (sysinfo; the kernel's `VmHWM` when available).
struct ProcessUsage {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    peak: u64,
}

impl ProcessUsage {
    fn new() -> Self {
        ProcessUsage {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
            peak: 0,
        }
    }

    fn sample(&mut self) -> (f64, u64) {
        let cpu = crate::metrics::process_cpu_seconds();
        // The kernel's own high-water mark, where there is one, is exact and
        // costs one small read; sysinfo's refresh took ~0.2 ms per chunk.
        if let Some(hwm) = crate::metrics::kernel_peak_rss() {
            self.peak = self.peak.max(hwm);
            return (cpu, self.peak);
        }
        let Some(pid) = self.pid else {
            return (cpu, self.peak);
        };
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_memory(),
        );
        let rss = self.system.process(pid).map_or(0, |p| p.memory());
        self.peak = self.peak.max(rss);
        (cpu, self.peak)
    }
}
