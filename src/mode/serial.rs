//! Serial mode: one actor runs every part of the pipeline inline, one batch
//! per message, so that the actor stays responsive to cancellation between
//! batches. It is the reference the other modes must match byte for byte.

use super::chunked::{run_streamed, ChunkBytes, ChunkError};
use super::inline::{
    pull_chunk, pull_chunk_ranges_uncounted, pull_source, run_batch, run_sink_absorb,
    run_sink_finish,
};
use super::RunConfig;
use crate::error::RunError;
use crate::file_range::{FileRange, RangeReader};
use crate::live::publisher::{LivePublisher, PUBLISH_EVERY};
use crate::metrics::{ProcessSampler, RunReport, StageStats};
use crate::pipeline::{AnyData, DynChunkDecoder, Pipeline, Pulled, Wake};
use crate::stage::Numbering;
use actix::prelude::*;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most bytes of a chunk serial mode cuts from plain files (it folds every
/// chunk into one partial: the size only sets how much one step reads).
const RANGES_MOST_BYTES: usize = 4 << 20;

/// How long the serial actor runs batches before it lets the other tasks
/// of its arbiter run (a step's messages are handled in one poll of the
/// actor, which would otherwise not end until the run does).
const YIELD_EVERY: Duration = Duration::from_millis(2);

/// The actor that runs a whole pipeline inline.
pub struct SerialRunner {
    pipeline: Pipeline,
    config: RunConfig,
    acc: Option<AnyData>,
    stats: Vec<StageStats>,
    numbering: Numbering,
    /// Publishes the numbers so far, when the run has a live view.
    live: Option<(LivePublisher, Instant)>,
    /// When the actor last let the other tasks of its arbiter run.
    last_yield: Instant,
    /// When the pipeline runs record by record (its record chain, see
    /// `mode/fused.rs`): the source's decoder, and how the input is read.
    record_by_record: Option<(Box<dyn DynChunkDecoder>, Reading)>,
    done: Option<oneshot::Sender<Result<Vec<StageStats>, RunError>>>,
}

/// How serial mode reads the input it runs record by record.
enum Reading {
    /// Plain files: consecutive chunks cut by bytes, each read a block at
    /// a time and decoded where it was read (as a reading lane reads),
    /// into the one partial: the chunk's ranges, and the block buffer.
    Ranges(Vec<FileRange>, Vec<u8>),
    /// Anything else (gzip, standard input): the source's text, a batch's
    /// worth of lines at a time (reused).
    Text(Vec<u8>),
}

/// What the runner does after a step.
enum Next {
    /// Pull again.
    Continue,
    /// Pull again once the source may have input.
    Wait(Wake),
    /// The result is written.
    Done,
}

/// Asks the runner to process its next batch.
#[derive(Message)]
#[rtype(result = "()")]
struct Step;

impl SerialRunner {
    /// A runner of `pipeline`; `record_by_record` is the plan's word that
    /// it runs record by record (see [`Plan::record_by_record`](crate::plan::Plan::record_by_record)).
    fn new(
        mut pipeline: Pipeline,
        (config, record_by_record): (RunConfig, bool),
        done: oneshot::Sender<Result<Vec<StageStats>, RunError>>,
    ) -> Self {
        let stats = pipeline.fresh_stats();
        let acc = Some(pipeline.aggregate.part.empty());
        let live = config.live.clone().map(|board| {
            // The mode asked for: a parallel mode may run a small input here.
            let publisher = LivePublisher::new(board, &pipeline.name, config.mode, 0);
            (publisher, Instant::now())
        });
        let decoder = record_by_record
            .then(|| pipeline.source.part.chunk_decoder())
            .flatten();
        let record_by_record = decoder.map(|decoder| {
            let source = &mut pipeline.source.part;
            // Committing to ranges skips a header line where a cut would.
            let reading = if source.would_chunk_in_files()
                && source.chunks_in_files()
                && source.cuts_by_bytes()
            {
                Reading::Ranges(Vec::new(), Vec::new())
            } else {
                Reading::Text(Vec::new())
            };
            (decoder, reading)
        });
        SerialRunner {
            live,
            last_yield: Instant::now(),
            record_by_record,
            pipeline,
            config,
            acc,
            stats,
            numbering: Numbering::new(),
            done: Some(done),
        }
    }

    /// Processes one batch (or answers one snapshot).
    fn step(&mut self) -> Result<Next, RunError> {
        if self.record_by_record.is_some() {
            return self.step_records();
        }
        let p = &mut self.pipeline;
        let n_stages = p.stages.len();
        let pulled = pull_source(
            &mut p.source,
            self.config.batch_size,
            &mut self.stats[0],
            &self.config.progress,
        )?;
        let (data, n) = match pulled {
            Pulled::Data(data, n) => (data, n),
            Pulled::End => {
                let acc = self.acc.take().unwrap_or_else(|| p.aggregate.part.empty());
                run_sink_finish(&mut p.sink, acc, &mut self.stats[n_stages + 2])?;
                return Ok(Next::Done);
            }
            Pulled::Pending(wake) => return Ok(Next::Wait(wake)),
            Pulled::Snapshot(req) => {
                // Everything pulled before it is folded in already.
                if let Some(acc) = &self.acc {
                    req.answer(p.aggregate.part.as_ref(), acc);
                }
                return Ok(Next::Continue);
            }
            Pulled::Cancelled => return Err(RunError::Interrupted),
        };
        let info = self.numbering.next(n);
        let acc = self
            .acc
            .as_mut()
            .ok_or_else(|| RunError::Runtime("serial runner lost its partial".into()))?;
        run_batch(
            &mut p.stages,
            &mut p.aggregate,
            acc,
            (data, n),
            &info,
            &mut self.stats[1..n_stages + 2],
            |_| {},
        )?;
        run_sink_absorb(&mut p.sink, acc, &mut self.stats[n_stages + 2])?;
        Ok(Next::Continue)
    }

    /// Runs the text of the source's next lines through the record chain,
    /// record by record.
    fn step_records(&mut self) -> Result<Next, RunError> {
        let p = &mut self.pipeline;
        let n_stages = p.stages.len();
        let Some((decoder, reading)) = self.record_by_record.as_mut() else {
            return Err(RunError::Runtime("serial runner lost its decoder".into()));
        };
        // The next chunk: ranges of the files, cut by bytes (its records
        // not counted yet), or the source's text and its record count.
        let (pulled, buf) = match reading {
            Reading::Ranges(ranges, buf) => {
                ranges.clear();
                let cut = pull_chunk_ranges_uncounted(
                    &mut p.source,
                    (self.config.batch_size.max(1), RANGES_MOST_BYTES),
                    ranges,
                    &mut self.stats[0],
                    &self.config.progress,
                )?;
                let chunk = cut.then(|| (ChunkBytes::from(RangeReader::own(ranges)), 0));
                (chunk, buf)
            }
            Reading::Text(text) => {
                text.clear();
                // As many lines as a batch of the source would hold: their
                // text stays in the first-level cache while it is decoded.
                let lines = decoder.batch_records(self.config.batch_size.max(1));
                let pulled = pull_chunk(
                    &mut p.source,
                    lines,
                    text,
                    &mut self.stats[0],
                    &self.config.progress,
                )?;
                let chunk = match pulled {
                    Pulled::Data((), n) => Some((ChunkBytes::Frame(text), n as u64)),
                    Pulled::Pending(wake) => return Ok(Next::Wait(wake)),
                    Pulled::Cancelled => return Err(RunError::Interrupted),
                    Pulled::End | Pulled::Snapshot(_) => None,
                };
                (chunk, &mut Vec::new())
            }
        };
        let Some((bytes, records)) = pulled else {
            let acc = self.acc.take().unwrap_or_else(|| p.aggregate.part.empty());
            run_sink_finish(&mut p.sink, acc, &mut self.stats[n_stages + 2])?;
            return Ok(Next::Done);
        };
        let source_error = |error: String| RunError::Source {
            source_name: p.source.name.clone(),
            error: crate::StageError::new(error),
        };
        let at = (self.numbering.seq, self.numbering.next_line, records);
        let run = run_streamed(
            (&mut p.stages, &mut p.aggregate, p.fused.as_mut()),
            decoder.as_ref(),
            bytes,
            at,
            (self.config.batch_size, self.acc.take()),
            buf,
        )
        .map_err(|e| match e {
            ChunkError::Run(e) => e,
            ChunkError::Chunk(e) => source_error(e),
            ChunkError::Unreadable(e) => source_error(e.to_string()),
        })?;
        self.numbering.next(run.records as usize);
        if records == 0 {
            // Ranges cut by bytes: their records are counted only now.
            self.config.progress.add_records(run.records);
            self.stats[0].records_out += run.records;
        }
        for (row, part) in self.stats[1..n_stages + 2].iter_mut().zip(&run.stats) {
            row.absorb(part);
        }
        let acc = self.acc.insert(run.acc);
        run_sink_absorb(&mut p.sink, acc, &mut self.stats[n_stages + 2])?;
        Ok(Next::Continue)
    }

    /// Publishes the stats so far, at most every [`PUBLISH_EVERY`].
    fn publish_live(&mut self) {
        let Some((publisher, last)) = &mut self.live else {
            return;
        };
        if last.elapsed() < PUBLISH_EVERY {
            return;
        }
        *last = Instant::now();
        let wall = publisher.elapsed();
        let mut stats = self.stats.clone();
        with_serial_idle(&mut stats, wall);
        publisher.publish(&stats, Vec::new(), Vec::new());
    }

    fn end(&mut self, ctx: &mut Context<Self>, result: Result<(), RunError>) {
        let result = match result {
            Ok(()) => Ok(std::mem::take(&mut self.stats)),
            Err(e) => {
                self.pipeline.sink.part.abort();
                Err(e)
            }
        };
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
        ctx.stop();
    }
}

impl Actor for SerialRunner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Step);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Stopped before finishing (arbiter shut down): leave nothing half-written.
        if let Some(done) = self.done.take() {
            self.pipeline.sink.part.abort();
            let _ = done.send(Err(RunError::Runtime("serial runner stopped early".into())));
        }
    }
}

impl Handler<Step> for SerialRunner {
    type Result = ();

    fn handle(&mut self, _: Step, ctx: &mut Context<Self>) {
        if self.config.cancel.is_cancelled() {
            return self.end(ctx, Err(RunError::Interrupted));
        }
        match self.step() {
            Ok(Next::Continue) => {
                self.publish_live();
                if self.last_yield.elapsed() < YIELD_EVERY {
                    return ctx.notify(Step);
                }
                // The actor runs on the caller's arbiter: let what else
                // runs there (a signal's handler, a live view) have a turn.
                self.last_yield = Instant::now();
                let turn = tokio::task::yield_now().into_actor(self);
                ctx.spawn(turn.map(|(), _, ctx| ctx.notify(Step)));
            }
            Ok(Next::Wait(wake)) => {
                // The actor stays free (for cancellation) while the source waits.
                let wake = self.config.cancel.or_cancelled(wake);
                ctx.spawn(wake.into_actor(self).map(|(), _, ctx| ctx.notify(Step)));
            }
            Ok(Next::Done) => self.end(ctx, Ok(())),
            Err(e) => self.end(ctx, Err(e)),
        }
    }
}

/// In serial mode a part waits while the others run: that is its idle time.
fn with_serial_idle(stats: &mut [StageStats], wall: Duration) {
    for s in stats {
        s.idle = wall.saturating_sub(s.busy);
    }
}

/// Runs `pipeline` serially on the caller's arbiter.
/// `record_by_record` is the plan's (see [`SerialRunner::new`]).
pub async fn execute(
    pipeline: Pipeline,
    config: &RunConfig,
    record_by_record: bool,
) -> Result<RunReport, RunError> {
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let started = Instant::now();
    let name = pipeline.name.clone();
    if let Some(total) = pipeline.source.part.size_hint() {
        config.progress.set_total(total);
    }
    let (tx, rx) = oneshot::channel();
    // On the caller's own arbiter: the actor yields between batches, so
    // whatever else runs there still does; and the run's memory comes
    // from the caller's thread's malloc arena (the process's main arena
    // when run from `main`), as a plain loop's would.
    SerialRunner::new(pipeline, (config.clone(), record_by_record), tx).start();
    let result = rx
        .await
        .map_err(|_| RunError::Runtime("serial runner vanished".into()));
    let wall = started.elapsed();
    let mut stats = result??;
    with_serial_idle(&mut stats, wall);
    Ok(RunReport::new(
        &name,
        super::Mode::Serial,
        wall,
        &stats,
        sampler.finish(),
    ))
}
