//! The user-facing building blocks of a pipeline: the [`Source`], [`Stage`],
//! [`Aggregate`] and [`Sink`] traits, the [`BatchInfo`] that travels with
//! every batch, and [`StageError`], the error user code returns.
//!
//! A pipeline is `source → stage → … → aggregate → sink`. The same trait
//! objects run in every [`Mode`](crate::Mode): inline in one actor, one actor
//! per stage, or in worker processes. For results to be identical across
//! modes, a stage's output for a batch must depend only on that batch.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// A batch payload: anything that can say how many records it holds.
pub trait Records: Send + 'static {
    /// Number of records in the batch (used for counts and throughput).
    fn record_count(&self) -> usize;
}

impl<T: Send + 'static> Records for Vec<T> {
    fn record_count(&self) -> usize {
        self.len()
    }
}

/// Where a batch sits in the input. Every batch carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchInfo {
    /// Sequence number of the batch, from 0, in input order.
    pub seq: u64,
    /// 1-based number of the batch's first record in the whole input.
    pub first_line: u64,
    /// Number of records the source put in the batch.
    pub records: u64,
}

/// Numbers batches in input order: sequence numbers from 0, record numbers
/// from 1. Every mode numbers its source's batches with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Numbering {
    /// Sequence number of the next batch.
    pub(crate) seq: u64,
    /// Number of the next batch's first record.
    pub(crate) next_line: u64,
}

impl Numbering {
    /// Numbering from the start of the input.
    pub(crate) fn new() -> Self {
        Numbering {
            seq: 0,
            next_line: 1,
        }
    }

    /// The info of the next batch, of `records` records.
    pub(crate) fn next(&mut self, records: usize) -> BatchInfo {
        let info = BatchInfo {
            seq: self.seq,
            first_line: self.next_line,
            records: records as u64,
        };
        self.seq += 1;
        self.next_line += records as u64;
        info
    }
}

impl BatchInfo {
    /// The last record number of the batch (equal to `first_line - 1` when empty).
    pub fn last_line(&self) -> u64 {
        self.first_line + self.records.saturating_sub(1)
    }
}

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

/// Produces the input, batch by batch.
///
/// Construction must do no I/O: in multiprocess mode, workers build the same
/// pipeline (to get its stages) but never pull from its source.
pub trait Source: Send + 'static {
    /// The batch type. It crosses the wire in multiprocess mode.
    type Out: Records + Serialize + DeserializeOwned;

    /// The next batch of at most `max_records` records (at least one), or
    /// `None` when the input is exhausted.
    fn next_batch(&mut self, max_records: usize) -> Result<Option<Self::Out>, StageError>;

    /// How many records remain, when known (drives progress bars and ETAs).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// How many records remain, roughly (multiprocess mode sizes its
    /// chunks by it: large ones first, smaller ones towards the end, so
    /// that the workers finish together). Defaults to
    /// [`size_hint`](Self::size_hint).
    fn remaining_estimate(&self) -> Option<u64> {
        self.size_hint()
    }

    /// Multiprocess mode: appends the next batch of at most `max_records`
    /// records to `out` in wire form and returns its record count, or `None`
    /// when the input is exhausted. A worker turns it back into a batch with
    /// [`decode_chunk`](Self::decode_chunk).
    ///
    /// The default encodes [`next_batch`](Self::next_batch)'s batch with
    /// bincode. The coordinator does this for every chunk while all workers
    /// wait on it, so a source that can hand out cheaper bytes should (the
    /// `logs` file reader ships the raw text and lets workers cut the lines).
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        let Some(batch) = self.next_batch(max_records)? else {
            return Ok(None);
        };
        encode_batch(&batch, out)?;
        Ok(Some(batch.record_count()))
    }

    /// The batch that [`next_chunk`](Self::next_chunk) encoded as `bytes`;
    /// `info` says where it sits in the input. Runs in workers, on bytes
    /// from the network: malformed bytes must give an error, not a panic.
    fn decode_chunk(&self, bytes: &[u8], info: &BatchInfo) -> Result<Self::Out, StageError> {
        let _ = info;
        decode_batch(bytes)
    }

    /// Multiprocess mode, in a worker: where to cut a chunk's `bytes` (of
    /// `records` records) into parts of at most `max_records` records that
    /// [`decode_chunk`](Self::decode_chunk) decodes one by one, so that a
    /// large chunk is processed with the memory (and cache) footprint of a
    /// batch. Appends `(end offset, records)` for each part, in order. The
    /// default is one part: the whole chunk.
    fn split_chunk(
        &self,
        bytes: &[u8],
        records: usize,
        max_records: usize,
        parts: &mut Vec<(usize, usize)>,
    ) {
        let _ = max_records;
        parts.push((bytes.len(), records));
    }

    /// Multiprocess mode: whether this source can describe its chunks as
    /// byte ranges of files (see [`next_chunk_ranges`](Self::next_chunk_ranges)).
    /// Asked once, before the first chunk; the answer holds for the run.
    /// The default is no.
    fn chunks_in_files(&mut self) -> bool {
        false
    }

    /// Multiprocess mode, when [`chunks_in_files`](Self::chunks_in_files)
    /// said yes: the next chunk of at most `max_records` records as byte
    /// ranges of files, appended to `out`, such that
    /// [`read_ranges`](crate::file_range::read_ranges) gives the bytes
    /// [`next_chunk`](Self::next_chunk) would have written. Workers on this
    /// machine then read their chunks themselves. Returns the record
    /// count, or `None` when the input is exhausted.
    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<crate::file_range::FileRange>,
    ) -> Result<Option<usize>, StageError> {
        let _ = (max_records, out);
        Err(StageError::new(
            "this source cannot give chunks as file ranges",
        ))
    }
}

/// The default wire form of a batch (see [`Source::next_chunk`]): bincode,
/// appended to `out`.
pub fn encode_batch<T: Serialize>(batch: &T, out: &mut Vec<u8>) -> Result<(), StageError> {
    bincode::serde::encode_into_std_write(batch, out, crate::pipeline::bincode_config())
        .map(drop)
        .map_err(|e| StageError::new(format!("cannot encode the batch: {e}")))
}

/// Reads what [`encode_batch`] wrote: exactly one batch, no trailing bytes.
pub fn decode_batch<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StageError> {
    let (batch, used): (T, usize) =
        bincode::serde::decode_from_slice(bytes, crate::pipeline::bincode_config())
            .map_err(|e| StageError::new(e.to_string()))?;
    if used != bytes.len() {
        return Err(StageError::new(format!(
            "{} trailing bytes after the batch",
            bytes.len() - used
        )));
    }
    Ok(batch)
}

/// Turns a batch into a batch.
///
/// `Clone` is required so that pipeline mode can run replicas of a stage.
pub trait Stage: Send + Clone + 'static {
    /// Input batch type (the previous stage's output).
    type In: Records;
    /// Output batch type.
    type Out: Records;

    /// Processes one batch.
    fn process(&mut self, input: Self::In, info: &BatchInfo) -> Result<Self::Out, StageError>;
}

/// Folds batches into a mergeable partial result.
///
/// Partials computed on different batches, in any process, are merged in
/// input order, so the final result is the same in every mode.
pub trait Aggregate: Send + Clone + 'static {
    /// Input batch type (the last stage's output).
    type In: Records;
    /// The partial result. It crosses the wire in multiprocess mode.
    type Partial: Send + Serialize + DeserializeOwned + 'static;

    /// The partial of no batch at all.
    fn empty(&self) -> Self::Partial;

    /// Folds one batch into `acc`.
    fn add(
        &mut self,
        acc: &mut Self::Partial,
        input: Self::In,
        info: &BatchInfo,
    ) -> Result<(), StageError>;

    /// Merges `later` (the partial of the batches that follow `acc`'s) into `acc`.
    fn merge(&self, acc: &mut Self::Partial, later: Self::Partial);
}

/// Writes the result. Runs only in the coordinating process.
pub trait Sink: Send + 'static {
    /// The aggregate's partial type.
    type Partial: Send + 'static;

    /// Called after each batch (or chunk) is folded in, in input order: the
    /// sink may take out parts of the running partial meant for streaming
    /// (for example rendered records), so they need not stay in memory.
    fn absorb(&mut self, acc: &mut Self::Partial) -> Result<(), StageError> {
        let _ = acc;
        Ok(())
    }

    /// Writes the final result. Outputs should appear atomically (write a
    /// temporary file, then rename).
    fn finish(&mut self, result: Self::Partial) -> Result<(), StageError>;

    /// Called instead of `finish` when the run fails or is interrupted:
    /// remove anything half-written.
    fn abort(&mut self) {}
}
