//! [`Error`]: why a run failed, the same type in every mode, in the worker
//! and in the handle, with enough context to find the input that caused it
//! (stage, batch, first line, worker), and [`ErrorKind`] to match on.
//!
//! Inside the crate a failure is built as a `RunError` (one variant per
//! situation, each with its own fields); the public [`Error`] boxes it and
//! answers questions about it, so that new situations can be added without
//! breaking callers.

use crate::stage::{BatchInfo, StageError};
use std::fmt;

/// What kind of failure an [`Error`] is. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source could not produce its next batch (unreadable input, …).
    Source,
    /// A stage or the aggregate returned an error for a batch.
    Stage,
    /// A stage or the aggregate panicked on a batch.
    Panic,
    /// The sink could not write the result.
    Sink,
    /// A chunk failed in a worker before reaching a stage (it could not be
    /// read or decoded).
    Chunk,
    /// No pipeline of that name is registered (multiprocess workers).
    UnknownPipeline,
    /// The pipeline could not be built (bad parameters, …).
    Build,
    /// The configuration is invalid (a caller's mistake: fix the settings).
    Config,
    /// No worker was available to run the job (multiprocess mode).
    NoWorkers,
    /// The run was interrupted (Ctrl-C, a cancel request, an abort).
    Interrupted,
    /// The runtime failed (an actor stopped unexpectedly, a socket could
    /// not be opened, …).
    Runtime,
}

/// Why a run failed. One type for every mode, the worker and the handle;
/// cheap to clone (every clone of a run's handle can report it).
///
/// ```
/// use parpipe::{Error, ErrorKind};
/// fn exit_code(e: &Error) -> u8 {
///     match e.kind() {
///         ErrorKind::Config => 2,
///         ErrorKind::Interrupted => 130,
///         _ => 1,
///     }
/// }
/// # let _ = exit_code;
/// ```
#[derive(Clone)]
pub struct Error {
    // Shared, so that every clone of a run's handle can report the failure.
    inner: std::sync::Arc<RunError>,
}

/// The situations a run can fail in, with their context (the crate's own
/// representation of an [`Error`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The source could not produce its next batch.
    #[error("{source_name}: {error}")]
    Source {
        /// The source's name in the pipeline.
        source_name: String,
        /// What went wrong.
        error: StageError,
    },
    /// A stage or the aggregate returned an error (or panicked) on a batch.
    #[error("{}", stage_text(stage, batch, *panicked, worker.as_deref(), error))]
    Stage {
        /// The stage's name.
        stage: String,
        /// The batch it failed on.
        batch: BatchInfo,
        /// It panicked (the error holds the panic message).
        panicked: bool,
        /// The worker it ran on, in multiprocess mode.
        worker: Option<String>,
        /// What went wrong.
        error: StageError,
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
    /// The pipeline could not be built.
    #[error("{0}")]
    Build(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A chunk failed in a worker (multiprocess mode). When it failed in a
    /// stage, `failure` says which and on which part of the chunk.
    #[error(
        "chunk {seq} ({}) failed on worker {worker}: {}",
        chunk_lines(*first_line, *last_line),
        chunk_text(failure.as_deref(), error)
    )]
    Chunk {
        /// The chunk's sequence number.
        seq: u64,
        /// Its first line (1-based); 0 when not known yet (a chunk cut by
        /// bytes, before the chunks ahead of it were counted).
        first_line: u64,
        /// Its last line; below `first_line` when not known.
        last_line: u64,
        /// The worker that reported it.
        worker: String,
        /// The stage it failed in, when it reached one.
        failure: Option<Box<StageFailure>>,
        /// What went wrong, as the worker reported it.
        error: StageError,
    },
    /// No worker was available to run the job.
    #[error("no workers: {0}")]
    NoWorkers(String),
    /// The run was interrupted.
    #[error("interrupted; no result was written")]
    Interrupted,
    /// The actor runtime failed.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Where in a chunk a worker's stage failed (multiprocess mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageFailure {
    /// The stage's name.
    pub(crate) stage: String,
    /// The part of the chunk it failed on.
    pub(crate) batch: BatchInfo,
    /// It panicked.
    pub(crate) panicked: bool,
}

fn stage_text(
    stage: &str,
    batch: &BatchInfo,
    panicked: bool,
    worker: Option<&str>,
    error: &StageError,
) -> String {
    let what = if panicked { "panicked" } else { "failed" };
    let on = worker.map_or_else(String::new, |w| format!(" on worker {w}"));
    let at = match (batch.first_line, batch.records) {
        (0, _) => "its lines not counted yet".to_string(),
        // A record stage's error: the record it failed on.
        (line, 1) => format!("record {line}"),
        (line, _) => format!("first line {line}"),
    };
    format!(
        "stage '{stage}' {what} on batch {} ({at}){on}: {error}",
        batch.seq
    )
}

/// Where a chunk sits, as far as it is known.
fn chunk_lines(first_line: u64, last_line: u64) -> String {
    match (first_line, last_line) {
        (0, _) => "its lines not counted yet".to_string(),
        (first, last) if last < first => format!("lines from {first}"),
        (first, last) => format!("lines {first}-{last}"),
    }
}

fn chunk_text(failure: Option<&StageFailure>, error: &StageError) -> String {
    match failure {
        Some(f) => stage_text(&f.stage, &f.batch, f.panicked, None, error),
        None => error.to_string(),
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match &*self.inner {
            RunError::Source { .. } => ErrorKind::Source,
            RunError::Stage { panicked, .. } => stage_kind(*panicked),
            RunError::Sink { .. } => ErrorKind::Sink,
            RunError::UnknownPipeline(_) => ErrorKind::UnknownPipeline,
            RunError::Build(_) => ErrorKind::Build,
            RunError::Config(_) => ErrorKind::Config,
            RunError::Chunk { failure, .. } => failure
                .as_ref()
                .map_or(ErrorKind::Chunk, |f| stage_kind(f.panicked)),
            RunError::NoWorkers(_) => ErrorKind::NoWorkers,
            RunError::Interrupted => ErrorKind::Interrupted,
            RunError::Runtime(_) => ErrorKind::Runtime,
        }
    }

    /// The name of the part that failed: the source, the stage (or the
    /// aggregate) or the sink, when one did.
    pub fn stage(&self) -> Option<&str> {
        match &*self.inner {
            RunError::Source { source_name, .. } => Some(source_name),
            RunError::Stage { stage, .. } => Some(stage),
            RunError::Sink { sink, .. } => Some(sink),
            RunError::Chunk {
                failure: Some(f), ..
            } => Some(&f.stage),
            _ => None,
        }
    }

    /// The batch a stage failed on. In multiprocess mode it is the part of
    /// the chunk the worker was processing: `seq` is the chunk's, and
    /// `first_line` is that part's first line.
    pub fn batch(&self) -> Option<BatchInfo> {
        match &*self.inner {
            RunError::Stage { batch, .. } => Some(*batch),
            RunError::Chunk {
                failure: Some(f), ..
            } => Some(f.batch),
            _ => None,
        }
    }

    /// The first input line of the batch (or chunk) that failed.
    pub fn first_line(&self) -> Option<u64> {
        match &*self.inner {
            RunError::Chunk {
                failure: None,
                first_line,
                ..
            } => Some(*first_line),
            _ => self.batch().map(|b| b.first_line),
        }
    }

    /// The worker the failure happened on (multiprocess mode).
    pub fn worker(&self) -> Option<&str> {
        match &*self.inner {
            RunError::Stage { worker, .. } => worker.as_deref(),
            RunError::Chunk { worker, .. } => Some(worker),
            _ => None,
        }
    }

    /// True when the run was stopped on request, not by a failure.
    pub fn is_interrupted(&self) -> bool {
        self.kind() == ErrorKind::Interrupted
    }

    /// The user code's own error, when the failure came from one.
    fn user_error(&self) -> Option<&StageError> {
        match &*self.inner {
            RunError::Source { error, .. }
            | RunError::Stage { error, .. }
            | RunError::Sink { error, .. }
            | RunError::Chunk { error, .. } => Some(error),
            _ => None,
        }
    }

    /// A configuration error (for callers that check their own settings).
    pub fn config(message: impl Into<String>) -> Self {
        RunError::Config(message.into()).into()
    }
}

fn stage_kind(panicked: bool) -> ErrorKind {
    if panicked {
        ErrorKind::Panic
    } else {
        ErrorKind::Stage
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        Error {
            inner: std::sync::Arc::new(e),
        }
    }
}

impl From<Error> for RunError {
    /// Inside the crate, a public error from a helper goes on as it was.
    fn from(e: Error) -> Self {
        // Unique in practice (a helper's fresh error); a shared one keeps its text.
        std::sync::Arc::try_unwrap(e.inner)
            .unwrap_or_else(|shared| RunError::Runtime(shared.to_string()))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Error {
    /// The error user code wrapped in its [`StageError`] (an `io::Error`,
    /// …), when there is one in this process.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.user_error().and_then(|e| std::error::Error::source(e))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_names_its_lines_as_far_as_they_are_known() {
        let chunk = |first_line, last_line| RunError::Chunk {
            seq: 3,
            first_line,
            last_line,
            worker: "1 (127.0.0.1:9)".into(),
            failure: None,
            error: StageError::new("boom"),
        };
        assert_eq!(
            chunk(11, 20).to_string(),
            "chunk 3 (lines 11-20) failed on worker 1 (127.0.0.1:9): boom"
        );
        assert!(chunk(11, 0)
            .to_string()
            .starts_with("chunk 3 (lines from 11) failed"));
        assert!(chunk(0, 0)
            .to_string()
            .starts_with("chunk 3 (its lines not counted yet) failed"));
    }

    #[test]
    fn a_stage_error_keeps_its_io_source_and_the_context() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no access");
        let e: Error = RunError::Stage {
            stage: "read".into(),
            batch: BatchInfo {
                seq: 2,
                first_line: 17,
                records: 8,
            },
            panicked: false,
            worker: Some("3".into()),
            error: StageError::from(io),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Stage);
        assert_eq!(e.stage(), Some("read"));
        assert_eq!(e.first_line(), Some(17));
        assert_eq!(e.worker(), Some("3"));
        assert_eq!(
            e.to_string(),
            "stage 'read' failed on batch 2 (first line 17) on worker 3: no access"
        );
        let source = std::error::Error::source(&e).expect("the io error is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("it is the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_worker_stage_failure_answers_like_a_local_one() {
        let e: Error = RunError::Chunk {
            seq: 1,
            first_line: 101,
            last_line: 200,
            worker: "7 (127.0.0.1:5000)".into(),
            failure: Some(Box::new(StageFailure {
                stage: "parse".into(),
                batch: BatchInfo {
                    seq: 1,
                    first_line: 151,
                    records: 50,
                },
                panicked: true,
            })),
            error: StageError::new("boom"),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.stage(), Some("parse"));
        assert_eq!(e.first_line(), Some(151));
        assert_eq!(e.worker(), Some("7 (127.0.0.1:5000)"));
        assert_eq!(
            e.to_string(),
            "chunk 1 (lines 101-200) failed on worker 7 (127.0.0.1:5000): \
             stage 'parse' panicked on batch 1 (first line 151): boom"
        );
    }
}
