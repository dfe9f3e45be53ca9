//! Running parts of a pipeline inline on the current thread, with timing and
//! panic capture. Serial mode runs everything this way; pipeline-mode stage
//! actors and multiprocess workers reuse the same calls for their part.

use crate::error::{panic_message, RunError};
use crate::metrics::{Progress, StageStats};
use crate::pipeline::{AnyData, DynAggregate, DynSink, DynSource, DynStage, Named, Pulled};
use crate::stage::BatchInfo;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Runs `pull` on the source, timing it, counting progress, and turning
/// errors and panics into a [`RunError`] that names the source. `pull`
/// says what it produced and how many records that holds.
fn pull<T>(
    source: &mut Named<Box<dyn DynSource>>,
    stats: &mut StageStats,
    progress: &Progress,
    pull: impl FnOnce(&mut dyn DynSource) -> Result<Pulled<T>, crate::StageError>,
) -> Result<Pulled<T>, RunError> {
    let started = Instant::now();
    let part = &mut source.part;
    let result = catch_unwind(AssertUnwindSafe(|| pull(part.as_mut())));
    let busy = part.took().unwrap_or_else(|| started.elapsed());
    let error = |error| RunError::Source {
        source_name: source.name.clone(),
        error,
    };
    match result {
        Ok(Ok(Pulled::Data(out, n))) => {
            stats.record_batch(0, n as u64, busy);
            progress.add_records(n as u64);
            Ok(Pulled::Data(out, n))
        }
        Ok(Ok(other)) => {
            stats.busy += busy;
            Ok(other)
        }
        Ok(Err(e)) => Err(error(e)),
        Err(payload) => Err(error(crate::StageError::new(format!(
            "panicked: {}",
            panic_message(payload.as_ref())
        )))),
    }
}

/// Pulls the next batch from the source (see [`pull`]).
pub(crate) fn pull_source(
    source: &mut Named<Box<dyn DynSource>>,
    max: usize,
    stats: &mut StageStats,
    progress: &Progress,
) -> Result<Pulled<AnyData>, RunError> {
    pull(source, stats, progress, |s| s.next_batch(max))
}

/// Multiprocess mode: appends the source's next chunk, in wire form, to
/// `out` (see `ChunkSource::next_chunk`; timing and errors as in [`pull`]).
pub(crate) fn pull_chunk(
    source: &mut Named<Box<dyn DynSource>>,
    max: usize,
    out: &mut Vec<u8>,
    stats: &mut StageStats,
    progress: &Progress,
) -> Result<Pulled<()>, RunError> {
    pull(source, stats, progress, |s| s.next_chunk(max, out))
}

/// [`pull`] for a chunk given as file ranges (multiprocess mode, see
/// [`FileChunkSource::next_chunk_ranges`](crate::FileChunkSource::next_chunk_ranges)).
pub(crate) fn pull_chunk_ranges(
    source: &mut Named<Box<dyn DynSource>>,
    max: usize,
    out: &mut Vec<crate::file_range::FileRange>,
    stats: &mut StageStats,
    progress: &Progress,
) -> Result<Option<usize>, RunError> {
    let pulled = pull(source, stats, progress, |s| {
        Ok(crate::pipeline::pulled(
            s.next_chunk_ranges(max, out)?.map(|n| ((), n)),
        ))
    })?;
    match pulled {
        Pulled::Data((), n) => Ok(Some(n)),
        // A file source neither waits nor takes snapshots.
        _ => Ok(None),
    }
}

/// [`pull`] for a chunk cut by bytes, its records not counted (see
/// `FileChunkSource::next_chunk_ranges_uncounted`): true when a chunk was cut.
pub(crate) fn pull_chunk_ranges_uncounted(
    source: &mut Named<Box<dyn DynSource>>,
    (about, max_bytes): (usize, usize),
    out: &mut Vec<crate::file_range::FileRange>,
    stats: &mut StageStats,
    progress: &Progress,
) -> Result<bool, RunError> {
    let pulled = pull(source, stats, progress, |s| {
        Ok(if s.next_chunk_ranges_uncounted(about, max_bytes, out)? {
            Pulled::Data((), 0)
        } else {
            Pulled::End
        })
    })?;
    Ok(matches!(pulled, Pulled::Data(..)))
}

/// Runs `work` for the part `name` on one batch, timing it and turning
/// errors and panics into a [`RunError`] that names the part and the batch.
fn on_batch<T>(
    name: &str,
    info: &BatchInfo,
    work: impl FnOnce() -> Result<T, crate::StageError>,
) -> (Result<T, RunError>, std::time::Duration) {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(work));
    let busy = started.elapsed();
    let result = match result {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(error)) => Err(RunError::Stage {
            stage: name.to_string(),
            batch: *info,
            panicked: false,
            worker: None,
            error,
        }),
        Err(payload) => Err(RunError::Stage {
            stage: name.to_string(),
            batch: *info,
            panicked: true,
            worker: None,
            error: crate::StageError::new(panic_message(payload.as_ref())),
        }),
    };
    (result, busy)
}

/// Runs one batch through `stages` in order, each call timed into the row
/// paired with it; `after(i)` is called once stage `i` is done (the probe
/// reads its CPU clock there). This is the one loop that runs stages on a
/// batch: serial mode, the probe, stage actors (a lane of several stages)
/// and chunks (workers, reading lanes) all call it, directly or through
/// [`run_batch`].
pub(crate) fn run_stages<'a>(
    stages: impl IntoIterator<Item = (&'a mut Named<Box<dyn DynStage>>, &'a mut StageStats)>,
    (mut data, mut n): (AnyData, usize),
    info: &BatchInfo,
    mut after: impl FnMut(usize),
) -> Result<(AnyData, usize), RunError> {
    for (i, (stage, stats)) in stages.into_iter().enumerate() {
        (data, n) = run_stage(stage, data, n, info, stats)?;
        after(i);
    }
    Ok((data, n))
}

/// Runs one batch through `stages` ([`run_stages`]) and folds what they
/// give into `acc`. `rows` holds one row per stage, then the aggregate's;
/// `after(i)` is called after stage `i`, and after the aggregate with
/// `i = stages.len()`.
pub(crate) fn run_batch(
    stages: &mut [Named<Box<dyn DynStage>>],
    aggregate: &mut Named<Box<dyn DynAggregate>>,
    acc: &mut AnyData,
    batch: (AnyData, usize),
    info: &BatchInfo,
    rows: &mut [StageStats],
    mut after: impl FnMut(usize),
) -> Result<(), RunError> {
    let n_stages = stages.len();
    let Some((agg_row, stage_rows)) = rows.get_mut(..=n_stages).and_then(|r| r.split_last_mut())
    else {
        return Err(RunError::Runtime(
            "a batch run without a row per part".into(),
        ));
    };
    let (data, n) = run_stages(stages.iter_mut().zip(stage_rows), batch, info, &mut after)?;
    run_aggregate(aggregate, acc, data, n, info, agg_row)?;
    after(n_stages);
    Ok(())
}

/// Runs one stage on one batch (see [`on_batch`]).
fn run_stage(
    stage: &mut Named<Box<dyn DynStage>>,
    data: AnyData,
    records_in: usize,
    info: &BatchInfo,
    stats: &mut StageStats,
) -> Result<(AnyData, usize), RunError> {
    let part = &mut stage.part;
    let (result, busy) = on_batch(&stage.name, info, || part.process(data, info));
    let (out, n) = result?;
    stats.record_batch(records_in as u64, n as u64, busy);
    Ok((out, n))
}

/// Folds one batch into the running partial (see [`on_batch`]).
pub(crate) fn run_aggregate(
    aggregate: &mut Named<Box<dyn DynAggregate>>,
    acc: &mut AnyData,
    data: AnyData,
    records_in: usize,
    info: &BatchInfo,
    stats: &mut StageStats,
) -> Result<(), RunError> {
    let part = &mut aggregate.part;
    let (result, busy) = on_batch(&aggregate.name, info, || part.add(acc, data, info));
    result?;
    stats.record_batch(records_in as u64, 0, busy);
    Ok(())
}

/// Lets the sink take its streamed parts out of the running partial.
pub(crate) fn run_sink_absorb(
    sink: &mut Named<Box<dyn DynSink>>,
    acc: &mut AnyData,
    stats: &mut StageStats,
) -> Result<(), RunError> {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| sink.part.absorb(acc)));
    stats.busy += started.elapsed();
    stats.batches += 1;
    sink_result(sink, result)
}

/// Writes the final result.
pub(crate) fn run_sink_finish(
    sink: &mut Named<Box<dyn DynSink>>,
    result: AnyData,
    stats: &mut StageStats,
) -> Result<(), RunError> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| sink.part.finish(result)));
    stats.busy += started.elapsed();
    sink_result(sink, outcome)
}

fn sink_result(
    sink: &Named<Box<dyn DynSink>>,
    result: std::thread::Result<Result<(), crate::StageError>>,
) -> Result<(), RunError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(RunError::Sink {
            sink: sink.name.clone(),
            error,
        }),
        Err(payload) => Err(RunError::Sink {
            sink: sink.name.clone(),
            error: crate::StageError::new(format!("panicked: {}", panic_message(payload.as_ref()))),
        }),
    }
}
