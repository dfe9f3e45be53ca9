//! Small inputs: deciding up front, from the source's own estimate of its
//! size, that a parallel engine cannot pay for itself, so the run is done
//! inline (as serial mode does it) while its report keeps the mode asked
//! for and says why ([`RunReport::inline_reason`](crate::RunReport::inline_reason)).
//!
//! Why it pays: with a few batches there is nothing to overlap, while
//! pipeline mode still starts an actor thread per stage and multiprocess
//! mode starts worker processes, sends them every line, and (for logs) has
//! the coordinator find every line end before any worker parses one. On
//! this 2-core machine multiprocess mode measured 0.55–0.75× serial at
//! 25 K–100 K lines and pipeline mode 0.9× at 25 K (docs/performance.md).
//!
//! The decision is only taken when the user left the engine's shape to
//! the defaults: an explicit `--workers`, a token (remote workers are
//! expected) or per-stage replica counts always get the engine they ask
//! for, and so does a run with [`RunConfig::inline_small`] off.

use super::{Mode, RunConfig};
use crate::pipeline::Pipeline;

/// Multiprocess mode runs inline up to this many batches (of the run's
/// batch size; 24 × 8192 ≈ 200 K log lines, 96 matrix tasks). Logs over
/// plain files broke even with two workers between 200 K and 400 K lines
/// here; below it the coordinator's share of the work plus the workers'
/// start-up cost more than the second core gives back.
pub(crate) const MULTIPROCESS_INLINE_BATCHES: u64 = 24;

/// Pipeline mode runs inline up to this many batches (8 × 8192 ≈ 65 K log
/// lines): with fewer, the stage actors have too little to overlap to win
/// back their start-up (measured 0.9× serial at 25 K lines, even at 50 K,
/// ahead at 100 K).
pub(crate) const PIPELINE_INLINE_BATCHES: u64 = 8;

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
            if matches!(config.replicas, super::Replicas::Fixed(_)) {
                return None;
            }
            (PIPELINE_INLINE_BATCHES, "stage actors")
        }
        Mode::Multiprocess => {
            let loopback = config
                .listen
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback());
            if config.workers.is_some() || config.token.is_some() || !loopback {
                return None;
            }
            (MULTIPROCESS_INLINE_BATCHES, "worker processes")
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
