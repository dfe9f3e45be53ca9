//! A worker's processing of one chunk, apart from the socket: a chunk comes
//! in as a `Chunk` or `ChunkInFiles` message (its bytes in the frame, or in
//! local files read here) and goes out as `ChunkDone` or `ChunkFailed`.
//! A chunk in files whose source can decode part of a text (`logs`) is
//! decoded block by block as it is read, as serial mode reads its input;
//! any other chunk is read whole, then cut into batches.

use crate::error::RunError;
use crate::file_range::{read_ranges_within, AllowedRoots, FileRange, RangeReader};
use crate::metrics::StageStats;
use crate::mode::inline::{run_aggregate, run_stage};
use crate::pipeline::{AnyData, Pipeline};
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
    /// Whether the source decodes chunks in files block by block as they
    /// are read ([`process_streamed`]) rather than read whole.
    streams: bool,
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
            max_frame,
            batch_size,
            usage: ProcessUsage::new(),
            streams: pipeline
                .source
                .part
                .new_chunk_batch(&BatchInfo {
                    seq: 0,
                    first_line: 1,
                    records: 0,
                })
                .is_some(),
            pipeline,
            scratch: Vec::new(),
            cuts: Vec::new(),
            roots,
        }
    }

    /// Processes `w` into its `ChunkDone`, or its `ChunkFailed`.
    pub(crate) fn process(&mut self, w: Work) -> Message {
        let started = Instant::now();
        let processed = match &w.payload {
            Payload::Files(ranges) if self.streams => {
                RangeReader::within(&self.roots, ranges, self.max_frame)
                    .map_err(|e| Failed::plain(format!("cannot read the chunk: {e}")))
                    .and_then(|reader| {
                        process_streamed(
                            &mut self.pipeline,
                            &w,
                            reader,
                            self.batch_size,
                            &mut self.scratch,
                        )
                    })
            }
            Payload::Bytes(b) => {
                process_chunk(&mut self.pipeline, &w, b, self.batch_size, &mut self.cuts)
            }
            Payload::Files(ranges) => {
                self.scratch.clear();
                read_ranges_within(&self.roots, ranges, &mut self.scratch, self.max_frame)
                    .map_err(|e| Failed::plain(format!("cannot read the chunk: {e}")))
                    .and_then(|()| {
                        process_chunk(
                            &mut self.pipeline,
                            &w,
                            &self.scratch,
                            self.batch_size,
                            &mut self.cuts,
                        )
                    })
            }
        };
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

/// What a chunk's processing builds up, part by part: the aggregate's
/// partial, the stages' counts and times, and the next part's first line.
struct ChunkRun {
    seq: u64,
    first_line: u64,
    records: u64,
    acc: AnyData,
    stage_stats: Vec<StageStats>,
    agg_stats: StageStats,
}

impl ChunkRun {
    fn new(pipeline: &Pipeline, w: &Work) -> Self {
        ChunkRun {
            seq: w.seq,
            first_line: w.first_line,
            records: 0,
            acc: pipeline.aggregate.part.empty(),
            stage_stats: pipeline
                .stages
                .iter()
                .map(|s| StageStats::new(&s.name, crate::metrics::StageKind::Stage))
                .collect(),
            agg_stats: StageStats::new(
                &pipeline.aggregate.name,
                crate::metrics::StageKind::Aggregate,
            ),
        }
    }

    /// Where the next part of `records` records sits in the input.
    fn next_info(&self, records: usize) -> BatchInfo {
        BatchInfo {
            seq: self.seq,
            first_line: self.first_line,
            records: records as u64,
        }
    }

    /// Decodes one part of `part_records` records and runs it through the
    /// stages into the partial.
    fn part(
        &mut self,
        pipeline: &mut Pipeline,
        bytes: &[u8],
        part_records: usize,
    ) -> Result<(), Failed> {
        let (data, n) = pipeline
            .source
            .part
            .decode_chunk(bytes, &self.next_info(part_records))
            .map_err(|e| Failed::plain(format!("cannot decode the chunk: {e}")))?;
        if n != part_records {
            return Err(Failed::plain(format!(
                "the chunk holds {n} records where its header says {part_records}"
            )));
        }
        self.decoded_part(pipeline, data, n)
    }

    /// Runs one decoded part of `n` records through the stages into the partial.
    fn decoded_part(
        &mut self,
        pipeline: &mut Pipeline,
        mut data: AnyData,
        mut n: usize,
    ) -> Result<(), Failed> {
        let info = self.next_info(n);
        self.first_line += n as u64;
        self.records += n as u64;
        for (stage, stats) in pipeline.stages.iter_mut().zip(&mut self.stage_stats) {
            (data, n) = run_stage(stage, data, n, &info, stats)?;
        }
        run_aggregate(
            &mut pipeline.aggregate,
            &mut self.acc,
            data,
            n,
            &info,
            &mut self.agg_stats,
        )?;
        Ok(())
    }

    /// The partial, encoded, with the parts' times and the records processed.
    fn finish(self, pipeline: &Pipeline) -> Result<(Vec<u8>, PartTimes, u64), Failed> {
        let parts = self
            .stage_stats
            .iter()
            .chain(std::iter::once(&self.agg_stats))
            .map(|s| (s.records_in, s.records_out, s.busy.as_nanos() as u64))
            .collect();
        let partial = pipeline
            .aggregate
            .part
            .encode(&self.acc)
            .map_err(|e| Failed::plain(format!("cannot encode the partial: {e}")))?;
        Ok((partial, parts, self.records))
    }
}

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
    let mut run = ChunkRun::new(pipeline, w);
    let mut start = 0;
    for &(end, part_records) in cuts.iter() {
        let bytes = payload
            .get(start..end)
            .ok_or_else(|| Failed::plain(format!("chunk part {start}..{end} out of range")))?;
        start = end;
        run.part(pipeline, bytes, part_records)?;
    }
    run.finish(pipeline)
}

/// Bytes read from the files at a time when a chunk is decoded as it is
/// read (as serial mode reads): a worker's buffer stays this small however
/// large its chunks are, and each block is still in the cache when its
/// records are decoded.
const STREAM_BLOCK: usize = 256 << 10;

/// [`process_chunk`] for a chunk in files whose source decodes block by
/// block ([`ChunkSource::new_chunk_batch`]): reads the ranges a block at a
/// time into `buf`, decodes their whole records into the current part and
/// runs each part once it holds `batch_size` records, so parts are cut
/// exactly where [`process_chunk`] would cut them and each byte is scanned
/// once.
///
/// [`ChunkSource::new_chunk_batch`]: crate::ChunkSource::new_chunk_batch
fn process_streamed(
    pipeline: &mut Pipeline,
    w: &Work,
    mut reader: RangeReader<'_>,
    batch_size: usize,
    buf: &mut Vec<u8>,
) -> Result<(Vec<u8>, PartTimes, u64), Failed> {
    let batch_size = batch_size.max(1);
    let mut run = ChunkRun::new(pipeline, w);
    // The part being filled, and its records so far.
    let mut part: Option<(AnyData, usize)> = None;
    let mut bytes_read = 0;
    buf.clear();
    loop {
        // `buf` holds the rest of the last block (a record cut off by its end).
        let read = reader
            .read_into(buf, STREAM_BLOCK)
            .map_err(|e| Failed::plain(format!("cannot read the chunk: {e}")))?;
        bytes_read += read;
        let at_end = read == 0;
        let mut at = 0;
        loop {
            let source = &pipeline.source.part;
            let (batch, records) = match &mut part {
                Some(p) => p,
                None => {
                    let batch = source.new_chunk_batch(&run.next_info(0)).ok_or_else(|| {
                        Failed::plain("the source cannot decode by blocks".into())
                    })?;
                    part.insert((batch, 0))
                }
            };
            let (used, added) = source
                .extend_chunk_batch(batch, &buf[at..], batch_size - *records)
                .map_err(|e| Failed::plain(format!("cannot decode the chunk: {e}")))?;
            at += used;
            *records += added;
            if *records < batch_size && !(at_end && *records > 0) {
                break;
            }
            if let Some((batch, records)) = part.take() {
                run.decoded_part(pipeline, batch, records)?;
            }
        }
        buf.drain(..at);
        if at_end {
            break;
        }
    }
    if !buf.is_empty() {
        return Err(Failed::plain(format!(
            "the chunk ends inside a record ({} bytes after its last line feed)",
            buf.len()
        )));
    }
    if w.records != 0 && run.records != w.records {
        return Err(Failed::plain(format!(
            "the chunk holds {} records where its header says {}",
            run.records, w.records
        )));
    }
    tracing::debug!(
        "chunk {}: read {bytes_read} bytes from {} file range(s), block by block",
        w.seq,
        reader.ranges()
    );
    run.finish(pipeline)
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
