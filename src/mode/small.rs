//! Small inputs: deciding up front, from the source's own estimate of its
//! size, that a parallel engine cannot pay for itself, so the run is done
//! inline (as serial mode does it) while its report keeps the mode asked
//! for and says why ([`RunReport::inline_reason`](crate::RunReport::inline_reason)).
//!
//! Why it pays: with a few batches there is nothing to overlap, while
//! pipeline mode still starts an actor thread per stage and multiprocess
//! mode starts worker processes, sends them every line, and (for logs) has
//! the coordinator find every line end before any worker parses one. On
//! this 2-core machine multiprocess mode measured 0.55–0.8× serial at
//! 25 K–100 K lines and pipeline mode 0.9× (docs/performance.md).
//!
//! Pipeline mode's reading lanes (`--replicas auto` over plain files,
//! `pipelined/lanes.rs`) start in no time and read in parallel from the
//! first line, so such a run is never done inline.
//!
//! The decision is only taken when the user left the engine's shape to
//! the defaults: an explicit `--workers`, a token or a `--listen` address
//! other than loopback port 0 (remote workers are expected), or per-stage
//! replica counts always get the engine they ask for, and so does a run
//! with [`RunConfig::inline_small`] off.

use super::{Mode, RunConfig};
use crate::pipeline::Pipeline;

/// Multiprocess mode runs inline up to this many batches (of the run's
/// batch size; 24 × 8192 ≈ 200 K log lines, 96 matrix tasks) when the
/// coordinator makes every chunk itself (generated lines, gzip, standard
/// input): generated logs measured 0.61× serial at 100 K and 200 K lines,
/// 0.79–0.85× at 300–400 K; matrix tasks, heavy per record, win from 16
/// tasks, so a matrix run keeps its workers from 100 tasks on.
pub(crate) const MULTIPROCESS_INLINE_BATCHES: u64 = 24;

/// Multiprocess mode runs inline up to this many batches (12 × 8192 ≈
/// 98 K log lines) when local workers read their chunks from the input
/// files themselves (`FileChunkSource::would_chunk_in_files`). With two
/// workers on this 2-core machine, logs over a plain file (11 interleaved
/// rounds, median wall speed-up over serial): 0.73× at 25 K lines, 0.88×
/// at 50 K, 1.06× at 100 K, 1.33× at 200 K.
pub(crate) const MULTIPROCESS_INLINE_BATCHES_FILES: u64 = 12;

/// Pipeline mode runs inline up to this many batches (16 × 8192 ≈ 131 K
/// log lines): with fewer, the stage actors have too little to overlap to
/// win back their start-up (engine measured at 0.90–0.93× serial at 100 K
/// lines, 1.13–1.15× at 200 K).
pub(crate) const PIPELINE_INLINE_BATCHES: u64 = 16;

/// From this many records on, pipeline mode runs a small input in smaller
/// batches rather than inline: at 100 K log lines, `--replicas auto` in
/// batches of 2048 measured 1.23× serial (15 interleaved rounds), inline
/// 1.04×; at 25 K and 50 K the two were alike (within noise, 0.94–1.07×),
/// so inline, which can never be slower than serial, stays below.
pub(crate) const PIPELINE_SMALLER_BATCHES_FROM: u64 = 64 * 1024;

/// Batches a small input is cut into instead (see
/// [`PIPELINE_SMALLER_BATCHES_FROM`]), and the smallest batch allowed.
const PIPELINE_SMALL_INPUT_BATCHES: u64 = 48;
const PIPELINE_MIN_BATCH: u64 = 1024;

/// A smaller batch size for a pipeline-mode run whose input is too small
/// for the default batches to overlap, but large enough for the stage
/// actors to win in smaller ones; `None` when the batch size was given,
/// the input is large or tiny, or the mode is not pipeline.
pub(crate) fn smaller_batch(pipeline: &Pipeline, config: &RunConfig) -> Option<usize> {
    let shape_left = matches!(
        config.replicas,
        super::Replicas::None | super::Replicas::Auto
    );
    if config.mode != Mode::Pipeline
        || !config.inline_small
        || !config.grow_chunks
        || !shape_left
        || pipeline.source.part.may_wait()
    {
        return None;
    }
    let records = pipeline.source.part.remaining_estimate()?;
    let batch = config.batch_size.max(1) as u64;
    let small = records.div_ceil(batch) <= PIPELINE_INLINE_BATCHES;
    (small && records >= PIPELINE_SMALLER_BATCHES_FROM).then(|| {
        (records / PIPELINE_SMALL_INPUT_BATCHES)
            .max(PIPELINE_MIN_BATCH)
            .min(batch) as usize
    })
}

/// Why `pipeline` should run inline in `config`'s mode, or `None` when
/// the engine asked for runs (serial mode, an unknown or large size, an
/// engine shape the user chose).
pub(crate) fn inline_reason(pipeline: &Pipeline, config: &RunConfig) -> Option<String> {
    if !config.inline_small || pipeline.source.part.may_wait() {
        return None;
    }
    let (limit, engine) = match config.mode {
        Mode::Serial => return None,
        Mode::Pipeline => {
            // Reading lanes start in no time and read in parallel from the
            // first line on: even a small input gains.
            if matches!(config.replicas, super::Replicas::Fixed(_))
                || super::pipelined::lanes::eligible(pipeline, config)
            {
                return None;
            }
            (PIPELINE_INLINE_BATCHES, "stage actors")
        }
        Mode::Multiprocess => {
            // Loopback on a port of the system's choosing: no one else
            // can be expected to join.
            let private = config
                .listen
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback() && a.port() == 0);
            if config.workers.is_some() || config.token.is_some() || !private {
                return None;
            }
            let limit = if pipeline.source.part.would_chunk_in_files() {
                MULTIPROCESS_INLINE_BATCHES_FILES
            } else {
                MULTIPROCESS_INLINE_BATCHES
            };
            (limit, "worker processes")
        }
    };
    let records = pipeline.source.part.remaining_estimate()?;
    let batch = config.batch_size.max(1) as u64;
    let batches = records.div_ceil(batch);
    (batches <= limit).then(|| {
        format!(
            "about {records} records ({batches} batch{} of {batch}, at most {limit} run inline): \
             too few for {engine} to pay for their start-up, so this run was done inline, \
             as serial mode does it",
            if batches == 1 { "" } else { "es" }
        )
    })
}

#[cfg(test)]
mod tests;
