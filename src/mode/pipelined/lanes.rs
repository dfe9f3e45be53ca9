//! Pipeline mode's reading lanes, over plain files (the plan's choice unless `--replicas STAGE=N`):
//! one lane per core, each a thread that reads its own chunks of the input
//! (byte ranges, cut here at about a share of what remains and moved to a
//! line end), decodes them block by block as it reads, and runs every
//! stage and the aggregate on their batches into one partial per chunk;
//! the partials are renumbered and merged in input order, and the sink
//! absorbs each, as serial mode's would. No line crosses a thread, and the
//! reading is shared by the cores instead of being one thread's.
//!
//! The lanes are the chunk engine's thread transport
//! ([`crate::mode::engine`]): the same scheduler as multiprocess mode's
//! workers decides which lane runs which chunk (credits), how far cutting
//! runs ahead (the reorder window) and hands the partials out in order,
//! and [`merge_in_order`](crate::mode::chunked::merge_in_order) merges them. This file only cuts chunks on the
//! run's thread, runs a chunk in a lane, and merges.
//!
//! The plan ([`crate::plan`]) chooses it only where the result cannot
//! tell: the source can cut its input by bytes and decode chunks apart
//! from itself, no stage depends on where its batch sits, and the
//! aggregate can renumber its partials. Anything else runs on the stage
//! actors. Chunks are sized by the plan's one rule ([`ChunkSizing`]).

use crate::error::RunError;
use crate::file_range::{check_unchanged, FileRange, RangeReader};
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::metrics::{ProcessSampler, RunReport};
use crate::mode::chunked::{run_streamed, ChunkError, ChunkRun};
use crate::mode::engine::schedule::{ChunkInfo, Completion, Held, Policy, Scheduler, Sent};
use crate::mode::engine::threads::{Answered, Threads};
use crate::mode::engine::transport::{pump, Gone, Transport};
use crate::mode::inline::{pull_chunk_ranges_uncounted, run_sink_finish};
use crate::mode::RunConfig;
use crate::pipeline::{
    AnyData, DynAggregate, DynChunkDecoder, DynFused, DynStage, Named, Pipeline,
};
use crate::plan::{ChunkSizing, Plan};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod merge;
use merge::Merge;

/// Chunks a lane holds (its credit): one running, one waiting, so a lane
/// never idles while the next chunk is cut.
const INFLIGHT: usize = 2;

/// Chunks cut and not yet merged, per chunk of credit (16 per lane): a
/// lane slow on one chunk lets the others run this far ahead before they
/// wait, so the partials waiting for it stay bounded. A chunk here is only
/// its ranges (the lane reads the bytes), so the window can be wider than
/// the worker processes' (whose chunks hold their bytes).
const WINDOW_PER_CREDIT: usize = 8;

/// Cuts `pipeline`'s source into file ranges, for the lanes the plan
/// chose (from the source's word that it would).
pub(crate) fn take(pipeline: &mut Pipeline) -> Result<(), RunError> {
    let source = &mut pipeline.source.part;
    if !source.chunks_in_files() || !source.cuts_by_bytes() {
        return Err(RunError::Source {
            source_name: pipeline.source.name.clone(),
            error: crate::StageError::new(
                "said it would give its input as byte ranges of files, then did not \
                 (did an input change before the run started?)",
            ),
        });
    }
    Ok(())
}

/// Runs `pipeline` (whose source [`take`] cut into ranges) on reading
/// lanes; the run's wall time counts from `started`.
pub(crate) async fn execute(
    pipeline: Pipeline,
    config: &RunConfig,
    plan: &Plan,
    started: Instant,
) -> Result<RunReport, RunError> {
    tracing::info!(
        lanes = plan.lanes,
        "{} reading lanes over the input's byte ranges",
        plan.lanes
    );
    let (config, sizing) = (config.clone(), plan.chunk_sizing);
    let lanes = (plan.lanes, plan.partial_per_lane);
    tokio::task::spawn_blocking(move || run(pipeline, &config, sizing, lanes, started))
        .await
        .map_err(|e| RunError::Runtime(format!("the reading lanes stopped: {e}")))?
}

/// A chunk for a lane: its byte ranges (the lane reads them).
#[derive(Clone)]
struct Ranges(Arc<[FileRange]>);

impl Held for Ranges {
    /// No bytes of the input: the lane reads them.
    fn held_bytes(&self) -> usize {
        0
    }
}

/// A lane's answer for one chunk.
struct LaneRun {
    result: Result<ChunkRun, ChunkError>,
    /// The lane's time on the chunk: reading, decoding and the parts.
    busy: Duration,
}

/// What a lane runs: its own copies of the stages and the aggregate, and a
/// decoder of the source's text.
struct Lane {
    stages: Vec<Named<Box<dyn DynStage>>>,
    aggregate: Named<Box<dyn DynAggregate>>,
    /// The record chain, when the pipeline has one (see `mode/fused.rs`).
    fused: Option<Box<dyn DynFused>>,
    decoder: Box<dyn DynChunkDecoder>,
    batch_size: usize,
    buf: Vec<u8>,
    /// When the pipeline's fold commutes ([`Fold::commutes`](crate::Fold::commutes)):
    /// the one partial this lane folds all its chunks into (each chunk's
    /// own partial then goes out empty), and where it goes when the lane
    /// ends, to be merged once at the end.
    own: Option<(Option<AnyData>, Leftovers)>,
}

/// The lanes' own partials, left when they end (see [`Lane::own`]).
type Leftovers = Arc<std::sync::Mutex<Vec<AnyData>>>;

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some((Some(acc), leftovers)) = self.own.take() {
            leftovers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(acc);
        }
    }
}

impl Lane {
    /// A lane of `pipeline`'s parts; with `own`, it keeps a partial of its
    /// own (the plan's `partial_per_lane`), left there when it ends.
    fn of(
        pipeline: &Pipeline,
        batch_size: usize,
        own: Option<&Leftovers>,
    ) -> Result<Lane, RunError> {
        let decoder = pipeline
            .source
            .part
            .chunk_decoder()
            .ok_or_else(|| RunError::Runtime("the source lost its chunk decoder".into()))?;
        Ok(Lane {
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
            fused: pipeline.fused.as_ref().map(|f| f.clone_box()),
            decoder,
            batch_size,
            buf: Vec::new(),
            own: own.map(|leftovers| (None, Arc::clone(leftovers))),
        })
    }

    /// Reads, decodes and runs one chunk into its partial.
    fn run(&mut self, chunk: ChunkInfo<Ranges>) -> LaneRun {
        let started = Instant::now();
        let reader = RangeReader::own(&chunk.frame.0);
        // Stages' and the aggregate's panics are caught per batch; this
        // catches the rest (a decoder's, a partial's creation), so that
        // a lane always answers and the run never waits on a dead one.
        let result = catch_unwind(AssertUnwindSafe(|| {
            // With a partial of its own, the chunk folds into it, and an
            // empty one stands for the chunk in the ordered merge.
            let aggregate = &self.aggregate.part;
            let own = self.own.as_mut().map(|(own, _)| own);
            let acc = own.map(|own| own.take().unwrap_or_else(|| aggregate.empty()));
            let mut run = run_streamed(
                (&mut self.stages, &mut self.aggregate, self.fused.as_mut()),
                self.decoder.as_ref(),
                reader,
                (chunk.seq, 1, 0),
                (self.batch_size, acc),
                &mut self.buf,
            )?;
            if let Some((own, _)) = self.own.as_mut() {
                *own = Some(std::mem::replace(&mut run.acc, self.aggregate.part.empty()));
            }
            Ok(run)
        }))
        .unwrap_or_else(|payload| {
            Err(ChunkError::Run(RunError::Runtime(format!(
                "a reading lane panicked: {}",
                crate::error::panic_message(payload.as_ref())
            ))))
        });
        LaneRun {
            result,
            busy: started.elapsed(),
        }
    }
}

fn run(
    mut pipeline: Pipeline,
    config: &RunConfig,
    sizing: ChunkSizing,
    (lanes, partial_per_lane): (usize, bool),
    started: Instant,
) -> Result<RunReport, RunError> {
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let leftovers = Leftovers::default();
    let result = std::thread::scope(|scope| {
        let runners = (0..lanes)
            .map(|_| {
                let own = partial_per_lane.then_some(&leftovers);
                let mut lane = Lane::of(&pipeline, config.batch_size, own)?;
                Ok(move |chunk| lane.run(chunk))
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        let (threads, answers) = Threads::start(scope, "parpipe-lane", runners)
            .map_err(|e| RunError::Runtime(format!("cannot start a lane: {e}")))?;
        let mut sched = Scheduler::new(Policy {
            inflight: INFLIGHT,
            window_per_credit: WINDOW_PER_CREDIT,
            // A lane always answers (it catches its chunk's panics).
            copies: false,
        });
        for lane in 0..threads.len() {
            sched.add_worker(lane as u64, 1);
        }
        let merge = Merge::new(&pipeline, lanes);
        let mut drive = Drive {
            pipeline: &mut pipeline,
            config,
            sizing,
            sched,
            threads,
            merge,
            stopped: None,
        };
        // Dropping `drive` closes the lanes' queues: they end after the
        // chunk they run, and the scope joins them.
        drive.drive(&answers).map(|()| drive.merge)
    });
    // The scope joined the lanes: their own partials, if any, are here.
    let own = std::mem::take(&mut *leftovers.lock().unwrap_or_else(|p| p.into_inner()));
    let merge =
        match result.and_then(|mut merge| merge.merge_own(&mut pipeline, own).map(|()| merge)) {
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
        crate::Mode::Pipelined,
        wall,
        &stats,
        sampler.finish(),
    ))
}

/// The run's thread: cuts chunks for the scheduler, hands them to the
/// lanes, and merges their partials as the scheduler hands them out.
struct Drive<'a> {
    pipeline: &'a mut Pipeline,
    config: &'a RunConfig,
    sizing: ChunkSizing,
    sched: Scheduler<Ranges, Result<ChunkRun, ChunkError>>,
    threads: Threads<Ranges>,
    merge: Merge,
    /// The source failed: no chunk is cut past it, and the run reports it
    /// once every chunk before it is merged (unless one of those failed).
    stopped: Option<RunError>,
}

impl Transport for Drive<'_> {
    type Frame = Ranges;
    type Result = Result<ChunkRun, ChunkError>;

    fn scheduler(&mut self) -> &mut Scheduler<Ranges, Self::Result> {
        &mut self.sched
    }

    fn send(&mut self, to: Sent, chunk: ChunkInfo<Ranges>) -> Result<(), Gone> {
        self.threads.send(to.worker, chunk)
    }

    /// Cuts the next chunk here, at about a share of what remains.
    fn read(&mut self) -> Result<(), RunError> {
        let seq = self.sched.next_seq();
        let mut ranges = Vec::new();
        let left = self.pipeline.source.part.remaining_estimate();
        let about = self.sizing.records(left, self.threads.len(), seq);
        let max_bytes = self.sizing.most_bytes.unwrap_or(usize::MAX);
        match pull_chunk_ranges_uncounted(
            &mut self.pipeline.source,
            (about, max_bytes),
            &mut ranges,
            &mut self.merge.stats[0],
            &self.config.progress,
        ) {
            Ok(true) => {
                for r in &ranges {
                    if !self.merge.files.iter().any(|f| f.path == r.path) {
                        self.merge.files.push(r.clone());
                    }
                }
                self.sched.push_new(ChunkInfo {
                    seq,
                    first_line: 1,
                    records: 0,
                    frame: Ranges(ranges.into()),
                });
            }
            Ok(false) => {
                self.sched.read_nothing();
                self.sched.set_exhausted();
            }
            Err(e) => {
                self.stopped = Some(e);
                self.sched.read_nothing();
                self.sched.set_exhausted();
            }
        }
        Ok(())
    }
}

impl Drive<'_> {
    /// Keeps every lane fed until the input ends, merging answers in
    /// order as they come; the first failure in input order ends the run.
    fn drive(&mut self, answers: &mpsc::Receiver<Answered<LaneRun>>) -> Result<(), RunError> {
        let live = self.config.live.clone().map(|board| {
            LivePublisher::new(board, &self.pipeline.name, crate::Mode::Pipelined, INFLIGHT)
        });
        let mut published = Instant::now();
        loop {
            if self.config.cancel.is_cancelled() {
                return Err(RunError::Interrupted);
            }
            if pump(self, Instant::now())? {
                break;
            }
            if let Some(live) = &live {
                if published.elapsed() >= PUBLISH_EVERY {
                    live.publish(&self.merge.stats, Vec::new(), Vec::new());
                    published = Instant::now();
                }
            }
            let answer = match answers.recv_timeout(PUBLISH_EVERY) {
                Ok(answer) => answer,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RunError::Runtime("the reading lanes stopped".into()))
                }
            };
            self.take(answer)?;
        }
        if let Some(e) = self.stopped.take() {
            return Err(e);
        }
        // Lanes read fast: a file changed while they read it may have
        // been read whole before the change showed.
        for file in &self.merge.files {
            check_unchanged(file).map_err(|e| RunError::Source {
                source_name: self.pipeline.source.name.clone(),
                error: crate::StageError::new(e),
            })?;
        }
        Ok(())
    }

    /// Files a lane's answer with the scheduler, and merges what is next
    /// in order; a failed chunk stops the cutting, and ends the run when
    /// its turn comes (every chunk before it merged).
    fn take(&mut self, answered: Answered<LaneRun>) -> Result<(), RunError> {
        let LaneRun { result, busy } = answered.answer;
        match &result {
            Ok(run) => {
                // The lane's time beyond its parts' is reading and
                // decoding: the source's.
                let parts: Duration = run.stats.iter().map(|s| s.busy).sum();
                self.merge.stats[0].busy += busy.saturating_sub(parts);
            }
            Err(_) => self.sched.set_exhausted(),
        }
        let seq = answered.seq;
        let taken = self
            .sched
            .complete(answered.worker, seq, result, Instant::now());
        if taken != Completion::Accepted {
            return Err(RunError::Runtime(format!(
                "chunk {seq} answered twice ({taken:?})"
            )));
        }
        while let Some((seq, result)) = self.sched.pop_ready() {
            match result {
                Ok(run) => self.merge.merge(self.pipeline, self.config, seq, run)?,
                Err(e) => return Err(self.merge.located(e, &self.pipeline.source.name)),
            }
        }
        Ok(())
    }
}
