//! Pipeline mode's reading lanes, for `--replicas auto` over plain files:
//! one lane per core, each a thread that reads its own chunks of the input
//! (byte ranges, cut here at about a share of what remains and moved to a
//! line end), decodes them block by block as it reads, and runs every
//! stage and the aggregate on their batches into one partial per chunk;
//! the partials are renumbered and merged in input order, and the sink
//! absorbs each, as serial mode's would. No line crosses a thread, and the
//! reading is shared by the cores instead of being one thread's.
//!
//! It runs only where the result cannot tell: the source can cut its
//! input by bytes and decode chunks apart from itself, no stage depends
//! on where its batch sits, and the aggregate can renumber its partials.
//! Anything else runs on the stage actors.

use super::Replicas;
use crate::error::RunError;
use crate::file_range::{check_unchanged, FileRange, RangeReader};
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::metrics::{ProcessSampler, RunReport, StageStats};
use crate::mode::chunked::{
    guided_records, merge_in_order, run_streamed, ChunkError, ChunkRun, UNCOUNTED_CHUNK_BYTES,
};
use crate::mode::inline::{pull_chunk_ranges_uncounted, run_sink_absorb, run_sink_finish};
use crate::mode::reorder::ReorderBuffer;
use crate::mode::RunConfig;
use crate::pipeline::{DynAggregate, DynChunkDecoder, DynStage, Named, Pipeline};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Chunks queued per lane: one running, one waiting, so a lane never idles
/// while the next chunk is cut.
const PER_LANE: usize = 2;

/// Chunks cut and not yet merged, per lane: the reorder window. A lane
/// slow on one chunk lets the others run this far ahead before they wait,
/// so the partials waiting for it stay bounded.
const WINDOW_PER_LANE: usize = 16;

/// Whether `pipeline` would run as reading lanes in `config` (see the
/// module text), asked without touching its source.
pub(crate) fn eligible(pipeline: &Pipeline, config: &RunConfig) -> bool {
    let source = &pipeline.source.part;
    config.mode == crate::Mode::Pipeline
        && config.replicas == Replicas::Auto
        && lanes() > 1
        && pipeline.aggregate.part.renumbers()
        && pipeline
            .stages
            .iter()
            .all(|s| !s.part.uses_record_numbers())
        && source.chunk_decoder().is_some()
        && source.would_chunk_in_files()
}

/// Whether `pipeline` runs as reading lanes in `config`; if so, its source
/// is now cut into file ranges.
pub(crate) fn take(pipeline: &mut Pipeline, config: &RunConfig) -> Result<bool, RunError> {
    if !eligible(pipeline, config) {
        return Ok(false);
    }
    let source = &mut pipeline.source.part;
    if !source.chunks_in_files() {
        return Ok(false);
    }
    if !source.cuts_by_bytes() {
        // Committed to ranges, yet not by bytes: nothing else can read it now.
        return Err(RunError::Runtime(
            "the source gives file ranges but cannot cut them by bytes".into(),
        ));
    }
    Ok(true)
}

/// One lane per core.
fn lanes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `pipeline` (whose source [`take`] cut into ranges) on reading
/// lanes; the run's wall time counts from `started`.
pub(crate) async fn execute(
    pipeline: Pipeline,
    config: &RunConfig,
    started: Instant,
) -> Result<RunReport, RunError> {
    tracing::info!(
        lanes = lanes(),
        "replicas auto: {} reading lanes over the input's byte ranges",
        lanes()
    );
    let config = config.clone();
    tokio::task::spawn_blocking(move || run(pipeline, &config, started))
        .await
        .map_err(|e| RunError::Runtime(format!("the reading lanes stopped: {e}")))?
}

/// A chunk for a lane.
struct Chunk {
    seq: u64,
    ranges: Vec<FileRange>,
}

/// A lane's answer for one chunk.
struct Done {
    lane: usize,
    seq: u64,
    result: Result<ChunkRun, ChunkError>,
    /// The lane's time on the chunk: reading, decoding and the parts.
    busy: Duration,
}

/// What a lane runs: its own copies of the stages and the aggregate, and a
/// decoder of the source's text.
struct Lane {
    stages: Vec<Named<Box<dyn DynStage>>>,
    aggregate: Named<Box<dyn DynAggregate>>,
    decoder: Box<dyn DynChunkDecoder>,
}

impl Lane {
    fn work(
        mut self,
        lane: usize,
        batch_size: usize,
        chunks: mpsc::Receiver<Chunk>,
        done: mpsc::Sender<Done>,
    ) {
        let mut buf = Vec::new();
        while let Ok(chunk) = chunks.recv() {
            let started = Instant::now();
            let reader = RangeReader::own(&chunk.ranges);
            // Stages' and the aggregate's panics are caught per batch; this
            // catches the rest (a decoder's, a partial's creation), so that
            // a lane always answers and the run never waits on a dead one.
            let result = catch_unwind(AssertUnwindSafe(|| {
                run_streamed(
                    &mut self.stages,
                    &mut self.aggregate,
                    self.decoder.as_ref(),
                    reader,
                    (chunk.seq, 1, 0),
                    batch_size,
                    &mut buf,
                )
            }))
            .unwrap_or_else(|payload| {
                Err(ChunkError::Run(RunError::Runtime(format!(
                    "a reading lane panicked: {}",
                    crate::error::panic_message(payload.as_ref())
                ))))
            });
            let answer = Done {
                lane,
                seq: chunk.seq,
                result,
                busy: started.elapsed(),
            };
            if done.send(answer).is_err() {
                return;
            }
        }
    }
}

fn run(
    mut pipeline: Pipeline,
    config: &RunConfig,
    started: Instant,
) -> Result<RunReport, RunError> {
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let result = std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel();
        let mut queues = Vec::new();
        for lane in 0..lanes() {
            let decoder = pipeline
                .source
                .part
                .chunk_decoder()
                .ok_or_else(|| RunError::Runtime("the source lost its chunk decoder".into()))?;
            let worker = Lane {
                stages: pipeline
                    .stages
                    .iter()
                    .map(|s| Named {
                        name: s.name.clone(),
                        part: s.part.clone_box(),
                    })
                    .collect(),
                aggregate: Named {
                    name: pipeline.aggregate.name.clone(),
                    part: pipeline.aggregate.part.clone_box(),
                },
                decoder,
            };
            let (tx, rx) = mpsc::channel();
            let done = done_tx.clone();
            let batch_size = config.batch_size;
            std::thread::Builder::new()
                .name(format!("parpipe-lane-{lane}"))
                .spawn_scoped(scope, move || worker.work(lane, batch_size, rx, done))
                .map_err(|e| RunError::Runtime(format!("cannot start a lane: {e}")))?;
            queues.push((tx, 0usize));
        }
        drop(done_tx);
        let mut merge = Merge::new(&pipeline);
        let outcome = merge.drive(&mut pipeline, config, &mut queues, &done_rx);
        // Closing the queues ends the lanes; the scope joins them.
        drop(queues);
        outcome.map(|()| merge)
    });
    let merge = match result {
        Ok(merge) => merge,
        Err(e) => {
            pipeline.sink.part.abort();
            return Err(e);
        }
    };
    let mut stats = merge.stats;
    let n = stats.len();
    if let Err(e) = run_sink_finish(&mut pipeline.sink, merge.acc, &mut stats[n - 1]) {
        pipeline.sink.part.abort();
        return Err(e);
    }
    let wall = started.elapsed();
    Ok(RunReport::new(
        &pipeline.name,
        crate::Mode::Pipeline,
        wall,
        &stats,
        sampler.finish(),
    ))
}

/// The run's side of the lanes: cutting chunks, and merging their
/// partials in order.
struct Merge {
    acc: crate::pipeline::AnyData,
    /// Source, each stage, aggregate, sink.
    stats: Vec<StageStats>,
    /// Partials waiting for the chunks before them: no chunk is cut past
    /// its window.
    waiting: ReorderBuffer<ChunkRun>,
    /// The records merged so far.
    merged_records: u64,
    /// The first failure in input order, by chunk.
    failed: Option<(u64, ChunkError)>,
    /// One range of each input file read, to check at the end that none
    /// changed while the run read it.
    files: Vec<FileRange>,
}

impl Merge {
    fn new(pipeline: &Pipeline) -> Self {
        let mut stats = pipeline.fresh_stats();
        let lanes = lanes();
        let n = stats.len();
        // The lanes read (the source's row), run the stages and fold the
        // aggregate; merging and the sink are this thread's.
        for row in &mut stats[..n - 1] {
            row.replicas = lanes;
        }
        Merge {
            acc: pipeline.aggregate.part.empty(),
            stats,
            waiting: ReorderBuffer::new(0, 1, lanes * WINDOW_PER_LANE),
            merged_records: 0,
            failed: None,
            files: Vec::new(),
        }
    }

    /// Keeps every lane fed until the input ends, merging answers as they
    /// come; on a failure, stops cutting, lets the chunks in flight finish
    /// and reports the first failure in input order.
    fn drive(
        &mut self,
        pipeline: &mut Pipeline,
        config: &RunConfig,
        queues: &mut [(mpsc::Sender<Chunk>, usize)],
        done: &mpsc::Receiver<Done>,
    ) -> Result<(), RunError> {
        let mut seq = 0;
        let mut exhausted = false;
        let live = config.live.clone().map(|board| {
            LivePublisher::new(board, &pipeline.name, crate::Mode::Pipeline, PER_LANE)
        });
        let mut published = Instant::now();
        let max_bytes = UNCOUNTED_CHUNK_BYTES.min(config.max_frame / 2).max(1);
        loop {
            if config.cancel.is_cancelled() {
                self.fail(seq, ChunkError::Run(RunError::Interrupted));
            }
            let window = (queues.len() * WINDOW_PER_LANE) as u64;
            while !exhausted && self.failed.is_none() && seq < self.waiting.next_seq() + window {
                let Some(lane) = (0..queues.len())
                    .filter(|&l| queues[l].1 < PER_LANE)
                    .min_by_key(|&l| queues[l].1)
                else {
                    break;
                };
                let mut ranges = Vec::new();
                let about = chunk_records(pipeline, config, queues.len());
                match pull_chunk_ranges_uncounted(
                    &mut pipeline.source,
                    (about, max_bytes),
                    &mut ranges,
                    &mut self.stats[0],
                    &config.progress,
                ) {
                    Ok(true) => {
                        for r in &ranges {
                            if !self.files.iter().any(|f| f.path == r.path) {
                                self.files.push(r.clone());
                            }
                        }
                        let chunk = Chunk { seq, ranges };
                        if queues[lane].0.send(chunk).is_err() {
                            return Err(RunError::Runtime("a reading lane stopped".into()));
                        }
                        queues[lane].1 += 1;
                        seq += 1;
                    }
                    Ok(false) => exhausted = true,
                    Err(e) => self.fail(seq, ChunkError::Run(e)),
                }
            }
            if queues.iter().all(|q| q.1 == 0) {
                break;
            }
            if let Some(live) = &live {
                if published.elapsed() >= PUBLISH_EVERY {
                    live.publish(&self.stats, Vec::new(), Vec::new());
                    published = Instant::now();
                }
            }
            let answer = match done.recv_timeout(PUBLISH_EVERY) {
                Ok(answer) => answer,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RunError::Runtime("the reading lanes stopped".into()))
                }
            };
            queues[answer.lane].1 -= 1;
            self.take(pipeline, config, answer)?;
        }
        if let Some((seq, e)) = self.failed.take() {
            return Err(self.located(seq, e, &pipeline.source.name));
        }
        // Lanes read fast: a file changed while they read it may have
        // been read whole before the change showed.
        for file in &self.files {
            check_unchanged(file).map_err(|e| RunError::Source {
                source_name: pipeline.source.name.clone(),
                error: crate::StageError::new(e),
            })?;
        }
        Ok(())
    }

    /// Notes a failure of chunk `seq`, unless an earlier chunk failed.
    fn fail(&mut self, seq: u64, e: ChunkError) {
        if self.failed.as_ref().is_none_or(|(s, _)| seq < *s) {
            self.failed = Some((seq, e));
        }
    }

    /// Files a lane's answer, and merges what is next in order.
    fn take(
        &mut self,
        pipeline: &mut Pipeline,
        config: &RunConfig,
        answer: Done,
    ) -> Result<(), RunError> {
        let run = match answer.result {
            Ok(run) => run,
            Err(e) => {
                self.fail(answer.seq, e);
                return Ok(());
            }
        };
        // The lane's time beyond its parts' is reading and decoding: the source's.
        let parts: Duration = run.stats.iter().map(|s| s.busy).sum();
        self.stats[0].busy += answer.busy.saturating_sub(parts);
        self.waiting.insert(answer.seq, run).map_err(|e| {
            RunError::Runtime(format!("chunk {} answered twice ({e:?})", answer.seq))
        })?;
        // A failed chunk never waits here: merging stops at it.
        while let Some(run) = self.waiting.pop() {
            self.merge(pipeline, config, run)?;
        }
        Ok(())
    }

    /// Renumbers the next chunk's partial after the records before it,
    /// merges it and lets the sink absorb the result.
    fn merge(
        &mut self,
        pipeline: &mut Pipeline,
        config: &RunConfig,
        run: ChunkRun,
    ) -> Result<(), RunError> {
        let started = Instant::now();
        let aggregate = &pipeline.aggregate;
        let merged = merge_in_order(
            aggregate.part.as_ref(),
            &mut self.acc,
            run.acc,
            (run.records, true),
            &mut self.merged_records,
        );
        if let Err(error) = merged {
            return Err(RunError::Stage {
                stage: aggregate.name.clone(),
                batch: crate::BatchInfo {
                    seq: self.waiting.next_seq() - 1,
                    first_line: self.merged_records.saturating_add(1),
                    records: run.records,
                },
                panicked: false,
                worker: None,
                error,
            });
        }
        config.progress.add_records(run.records);
        let n = self.stats.len();
        self.stats[0].records_out += run.records;
        for (row, part) in self.stats[1..n - 1].iter_mut().zip(&run.stats) {
            row.absorb(part);
        }
        self.stats[n - 2].busy += started.elapsed();
        run_sink_absorb(&mut pipeline.sink, &mut self.acc, &mut self.stats[n - 1])
    }

    /// The error of chunk `seq`: a stage's failure moved to its place in
    /// the input (every chunk before it is merged by now), a problem with
    /// the chunk's bytes as the source's.
    fn located(&self, seq: u64, e: ChunkError, source: &str) -> RunError {
        match e {
            ChunkError::Run(RunError::Stage {
                stage,
                mut batch,
                panicked,
                worker,
                error,
            }) if self.waiting.next_seq() == seq => {
                batch.first_line = batch.first_line.saturating_add(self.merged_records);
                RunError::Stage {
                    stage,
                    batch,
                    panicked,
                    worker,
                    error,
                }
            }
            ChunkError::Run(e) => e,
            ChunkError::Chunk(text) => RunError::Source {
                source_name: source.to_string(),
                error: crate::StageError::new(text),
            },
            ChunkError::Unreadable(e) => RunError::Source {
                source_name: source.to_string(),
                error: crate::StageError::new(format!("cannot read the chunk: {e}")),
            },
        }
    }
}

/// Records in the next chunk: a share of what remains, so that the lanes
/// finish together (as multiprocess mode sizes its chunks cut by bytes).
fn chunk_records(pipeline: &Pipeline, config: &RunConfig, lanes: usize) -> usize {
    let base = config.batch_size.max(1);
    match pipeline.source.part.remaining_estimate() {
        Some(left) => guided_records(left, base, lanes, 32),
        None => base,
    }
}
