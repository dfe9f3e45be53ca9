//! [`StageError`], the error user code returns; the framework adds where
//! it happened.

use std::fmt;

/// An error raised by user code (a source, stage, aggregate or sink).
///
/// The framework adds where it happened (stage name, batch, first line).
/// It may wrap the error that caused it ([`with_source`](Self::with_source),
/// `From<io::Error>`), which [`std::error::Error::source`] then returns; in
/// multiprocess mode only its text crosses the wire from a worker.
#[derive(Debug)]
pub struct StageError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StageError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        StageError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with the given message, caused by `source`.
    ///
    /// ```
    /// use parpipe::StageError;
    /// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
    /// let e = StageError::with_source("cannot read 'a.log'", io);
    /// assert_eq!(e.to_string(), "cannot read 'a.log': gone");
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StageError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The message (without the source's text; empty when the error is
    /// only its source, as `From<io::Error>` makes it).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.message.is_empty()) {
            (Some(source), true) => write!(f, "{source}"),
            (Some(source), false) => write!(f, "{}: {source}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for StageError {
    /// Keeps the `io::Error` as the source (its kind stays matchable).
    fn from(e: std::io::Error) -> Self {
        StageError {
            message: String::new(),
            source: Some(Box::new(e)),
        }
    }
}
