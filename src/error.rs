//! [`RunError`]: why a run failed, with enough context to find the input
//! that caused it (stage, batch, first line).

use crate::mode::Mode;
use crate::stage::StageError;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The source could not produce its next batch (unreadable input, …).
    #[error("{source_name}: {error}")]
    Source {
        /// The source's name in the pipeline.
        source_name: String,
        /// What went wrong.
        error: StageError,
    },
    /// A stage or the aggregate returned an error for a batch.
    #[error("stage '{stage}' failed on batch {seq} (first line {first_line}): {error}")]
    Stage {
        /// The stage's name.
        stage: String,
        /// The batch's sequence number.
        seq: u64,
        /// The batch's first line number (1-based).
        first_line: u64,
        /// What went wrong.
        error: StageError,
    },
    /// A stage or the aggregate panicked on a batch.
    #[error("stage '{stage}' panicked on batch {seq} (first line {first_line}): {message}")]
    Panic {
        /// The stage's name.
        stage: String,
        /// The batch's sequence number.
        seq: u64,
        /// The batch's first line number (1-based).
        first_line: u64,
        /// The panic message.
        message: String,
    },
    /// The sink could not write the result.
    #[error("sink '{sink}': {error}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What went wrong.
        error: StageError,
    },
    /// No pipeline of that name is registered.
    #[error("no pipeline named '{0}' is registered")]
    UnknownPipeline(String),
    /// The pipeline could not be built (bad parameters, …).
    #[error("{0}")]
    Build(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The requested mode is not available in this build.
    #[error("mode '{0}' is not available yet")]
    ModeUnavailable(Mode),
    /// A chunk failed in a worker (multiprocess mode).
    #[error("chunk {seq} (lines {first_line}-{last_line}) failed on worker {worker}: {error}")]
    Chunk {
        /// The chunk's sequence number.
        seq: u64,
        /// Its first line (1-based).
        first_line: u64,
        /// Its last line.
        last_line: u64,
        /// The worker that reported it.
        worker: String,
        /// What went wrong, as the worker reported it.
        error: String,
    },
    /// No worker was available to run the job (multiprocess mode).
    #[error("no workers: {0}")]
    NoWorkers(String),
    /// The run was interrupted (Ctrl-C or a cancel request).
    #[error("interrupted; no result was written")]
    Interrupted,
    /// The actor runtime failed (an actor stopped unexpectedly, …).
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Turns a caught panic payload into a message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}
