//! The small-input limits: when a parallel engine is not worth starting.
//!
//! The rule: an engine pays for its start-up (threads, or worker
//! processes and their sockets) only with enough batches to overlap.
//! How many depends on what a record costs and on what starting the
//! engine costs on the machine, so each limit is a flag (`parpipe run
//! --inline-batches-pipeline`, `--inline-batches-readers`,
//! `--inline-batches-shipped`, `--smaller-batches-from`) whose default was
//! measured with the `logs` workload (2 cores; docs/performance.md has the
//! figures and how to measure them on another machine). They only apply
//! to a run with [`RunConfig::inline_small`](crate::RunConfig::inline_small)
//! on, whose engine shape was left to the defaults.

/// Largest value of a batch-count limit (`--inline-batches-*`).
pub const MAX_INLINE_BATCHES: u64 = 1 << 20;

/// Largest value of `--smaller-batches-from`.
pub const MAX_SMALLER_BATCHES_FROM: u64 = 1 << 40;

/// The small-input limits of a run (see the module text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineLimits {
    /// Pipeline mode's stage actors run inline up to this many batches
    /// (`--inline-batches-pipeline`, default 16: with fewer the actors
    /// have too little to overlap to win back their start-up).
    pub pipeline_batches: u64,
    /// Multiprocess mode runs inline up to this many batches when the
    /// workers read their own byte ranges (`--inline-batches-readers`,
    /// default 12: the start of the worker processes is then the only
    /// cost to win back).
    pub reader_batches: u64,
    /// Multiprocess mode runs inline up to this many batches when the
    /// coordinator reads and ships every chunk (`--inline-batches-shipped`,
    /// default 24: twice the readers' limit, since the coordinator's own
    /// pass over every byte comes on top of the start-up).
    pub shipped_batches: u64,
    /// Pipeline mode runs an input within `pipeline_batches` batches in
    /// smaller batches (three times as many, of at least an eighth of the
    /// batch size) rather than inline from this many records on
    /// (`--smaller-batches-from`, default 65536).
    pub smaller_batches_from: u64,
}

impl Default for InlineLimits {
    fn default() -> Self {
        InlineLimits {
            pipeline_batches: 16,
            reader_batches: 12,
            shipped_batches: 24,
            smaller_batches_from: 64 * 1024,
        }
    }
}

impl InlineLimits {
    /// Checks each limit against its range, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--inline-batches-pipeline", self.pipeline_batches),
            ("--inline-batches-readers", self.reader_batches),
            ("--inline-batches-shipped", self.shipped_batches),
        ] {
            if value > MAX_INLINE_BATCHES {
                return Err(format!(
                    "{flag} must be from 0 to {MAX_INLINE_BATCHES}, not {value}"
                ));
            }
        }
        if self.smaller_batches_from > MAX_SMALLER_BATCHES_FROM {
            return Err(format!(
                "--smaller-batches-from must be from 0 to {MAX_SMALLER_BATCHES_FROM}, not {}",
                self.smaller_batches_from
            ));
        }
        Ok(())
    }
}
