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

/// Produces the input, batch by batch. The one trait a source must
/// implement; everything else has a default.
///
/// Construction must do no I/O: in multiprocess mode, workers build the same
/// pipeline (to get its stages) but never pull from its source.
///
/// In multiprocess mode the coordinator ships each chunk to a worker. A
/// plain `Source` (given to [`Pipeline::builder`](crate::Pipeline::builder))
/// ships its batches in bincode; a source that can hand out cheaper bytes
/// (raw text the workers cut themselves, byte ranges of shared files)
/// implements [`ChunkSource`] (and [`FileChunkSource`]) and is given to
/// [`Pipeline::builder_chunked`](crate::Pipeline::builder_chunked) (or
/// [`builder_files`](crate::Pipeline::builder_files)).
///
/// ```
/// use parpipe::{Source, StageError};
///
/// /// The numbers 1 to `end`.
/// struct Count { next: u64, end: u64 }
///
/// impl Source for Count {
///     type Out = Vec<u64>;
///     fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
///         if self.next > self.end {
///             return Ok(None);
///         }
///         let last = (self.next + max as u64 - 1).min(self.end);
///         let batch = (self.next..=last).collect();
///         self.next = last + 1;
///         Ok(Some(batch))
///     }
/// }
/// let mut c = Count { next: 1, end: 5 };
/// assert_eq!(c.next_batch(3).unwrap(), Some(vec![1, 2, 3]));
/// assert_eq!(c.next_batch(3).unwrap(), Some(vec![4, 5]));
/// assert_eq!(c.next_batch(3).unwrap(), None);
/// ```
pub trait Source: Send + 'static {
    /// The batch type.
    type Out: Records;

    /// The next batch of at most `max_records` records (at least one), or
    /// `None` when the input is exhausted.
    fn next_batch(&mut self, max_records: usize) -> Result<Option<Self::Out>, StageError>;

    /// How many records remain, when known (drives progress bars and ETAs).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// Whether [`next_batch`](Self::next_batch) may wait for input that
    /// comes from outside (a socket, a channel, standard input) or block in
    /// any other way. Such a source is pulled on a thread of its own, so
    /// that the engine never waits inside it: a coordinator keeps answering
    /// its workers, a [`Cancel`](crate::Cancel) takes effect at once, and
    /// blocking calls (`blocking_recv`, `block_on`) are allowed. The default
    /// is yes; a source that only computes or reads local files may say no
    /// and save a hand-off between threads per batch.
    fn may_wait(&self) -> bool {
        true
    }
}

/// A [`Source`] that chooses its own wire form for multiprocess mode (an
/// optional power: plain sources get bincode of their batches).
///
/// What reaches [`decode_chunk`](Self::decode_chunk) and
/// [`split_chunk`](Self::split_chunk) in a worker is a byte slice of a frame
/// from an authenticated coordinator whose length was checked against the
/// frame limit, and whose record count the worker checks against the
/// chunk's header after decoding; its content is otherwise unchecked, so
/// malformed bytes must give an error, not a panic.
pub trait ChunkSource: Source {
    /// How many records remain, roughly (multiprocess mode sizes its
    /// chunks by it: large ones first, smaller ones towards the end, so
    /// that the workers finish together). Defaults to
    /// [`size_hint`](Source::size_hint).
    fn remaining_estimate(&self) -> Option<u64> {
        self.size_hint()
    }

    /// Appends the next chunk of at most `max_records` records to `out` in
    /// wire form and returns its record count, or `None` when the input is
    /// exhausted. The coordinator does this for every chunk while all
    /// workers wait on it, so it should be cheap (the `logs` file reader
    /// ships the raw text and lets workers cut the lines).
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError>;

    /// The batch that [`next_chunk`](Self::next_chunk) encoded as `bytes`
    /// (or one part of it, see [`split_chunk`](Self::split_chunk)); `info`
    /// says where it sits in the input. Runs in workers.
    fn decode_chunk(&self, bytes: &[u8], info: &BatchInfo) -> Result<Self::Out, StageError>;

    /// In a worker: where to cut a chunk's `bytes` (of `records` records)
    /// into parts of at most `max_records` records that
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

    /// In a worker: the number of records in a chunk's `bytes` whose count
    /// the coordinator did not know (a chunk cut by bytes, see
    /// [`FileChunkSource::cuts_by_bytes`]); `None` when this source cannot
    /// tell. Internal to the built-in sources for now.
    #[doc(hidden)]
    fn count_chunk_records(&self, bytes: &[u8]) -> Option<usize> {
        let _ = bytes;
        None
    }

    /// A decoder of this source's chunk text that works apart from the
    /// source, on any thread, block by block as the text is read (see
    /// [`ChunkDecoder`]); `None` (the default) when this source has none,
    /// and a chunk is then read whole and split by
    /// [`split_chunk`](Self::split_chunk). Internal to the built-in sources
    /// for now.
    #[doc(hidden)]
    fn chunk_decoder(&self) -> Option<Box<dyn ChunkDecoder<Self::Out>>> {
        None
    }
}

/// Decodes a chunk's text into batches block by block, as it is read, on
/// any thread (a worker's, or a pipeline-mode lane's). Internal to the
/// built-in sources for now.
#[doc(hidden)]
pub trait ChunkDecoder<Out>: Send + 'static {
    /// An empty batch whose first record is `info.first_line`.
    fn new_batch(&self, info: &BatchInfo) -> Out;

    /// Appends to `batch` the first whole records of `bytes` (part of a
    /// chunk's text), at most `max_records` of them, and returns the bytes
    /// they took and their count; a record cut off at the end of `bytes` is
    /// left for the next call, which gets it whole.
    fn extend(
        &self,
        batch: &mut Out,
        bytes: &[u8],
        max_records: usize,
    ) -> Result<(usize, usize), StageError>;
}

/// A [`ChunkSource`] that can also describe its chunks as byte ranges of
/// files, so that workers on the coordinator's machine read them themselves
/// (an optional power, for [`Pipeline::builder_files`](crate::Pipeline::builder_files)).
pub trait FileChunkSource: ChunkSource {
    /// Whether this source can describe its chunks as file ranges (asked
    /// once, before the first chunk; the answer holds for the run). The
    /// default is yes.
    fn chunks_in_files(&mut self) -> bool {
        true
    }

    /// Whether [`chunks_in_files`](Self::chunks_in_files) would say yes,
    /// asked without committing to it (the modes decide from it how small
    /// an input is worth worker processes: workers that read their own
    /// ranges pay for themselves sooner). The default is no. Internal to
    /// the built-in sources for now.
    #[doc(hidden)]
    fn would_chunk_in_files(&self) -> bool {
        false
    }

    /// When [`chunks_in_files`](Self::chunks_in_files) said yes: the next
    /// chunk of at most `max_records` records as byte ranges of files,
    /// appended to `out`, such that reading them gives the bytes
    /// [`next_chunk`](ChunkSource::next_chunk) would have written. Returns
    /// the record count, or `None` when the input is exhausted.
    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<crate::file_range::FileRange>,
    ) -> Result<Option<usize>, StageError>;

    /// Whether this source can cut its chunks by bytes without counting
    /// their records ([`next_chunk_ranges_uncounted`](Self::next_chunk_ranges_uncounted)),
    /// asked once after [`chunks_in_files`](Self::chunks_in_files) said yes.
    /// Each worker then counts its own chunk's records
    /// ([`ChunkSource::count_chunk_records`]), so the coordinator never reads
    /// the input. Internal to the built-in sources for now: it takes an
    /// aggregate that can renumber its partials, too.
    #[doc(hidden)]
    fn cuts_by_bytes(&mut self) -> bool {
        false
    }

    /// When [`cuts_by_bytes`](Self::cuts_by_bytes) said yes: appends to
    /// `out` the ranges of the next chunk of whole records, about
    /// `about_records` records' worth of bytes but at most about
    /// `max_bytes` (one record more may end it), and returns true; false
    /// when the input is exhausted.
    #[doc(hidden)]
    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<crate::file_range::FileRange>,
    ) -> Result<bool, StageError> {
        let _ = (about_records, max_bytes, out);
        Err(StageError::new("this source does not cut chunks by bytes"))
    }
}

/// The default wire form of a batch (what a plain [`Source`] ships):
/// bincode, appended to `out`. The size is measured first and reserved, so
/// `out` grows at most once and the batch is written once, in place.
pub fn encode_batch<T: Serialize>(batch: &T, out: &mut Vec<u8>) -> Result<(), StageError> {
    let config = crate::pipeline::bincode_config();
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(batch, &mut size, config)
        .map_err(|e| StageError::new(format!("cannot encode the batch: {e}")))?;
    out.reserve(size.bytes_written);
    bincode::serde::encode_into_std_write(batch, out, config)
        .map(drop)
        .map_err(|e| StageError::new(format!("cannot encode the batch: {e}")))
}

/// Reads what [`encode_batch`] wrote: exactly one batch, no trailing bytes.
/// No length the bytes declare is allocated before it is checked against
/// `bytes` (the wire's bounded decoding).
pub fn decode_batch<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StageError> {
    // Bytes from the network: bounded decoding (see `protocol`).
    crate::protocol::decode_whole(bytes, "batch").map_err(StageError::new)
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

    /// Whether what this stage does depends on where its batch sits in the
    /// input ([`BatchInfo::first_line`], `seq`). Multiprocess mode may give
    /// a stage that says no the chunk-relative numbers of a chunk it cut
    /// by bytes. Internal to the built-in stages for now.
    #[doc(hidden)]
    fn uses_record_numbers(&self) -> bool {
        true
    }
}

/// Folds batches into a mergeable partial result.
///
/// Partials computed on different batches, in any process, are merged in
/// input order. How the input is cut differs by mode (one partial for the
/// whole input in serial mode, one per chunk in multiprocess mode, with
/// chunk sizes that depend on the number of workers), so
/// [`merge`](Self::merge) must be **associative** (and `add` must agree
/// with it: adding batches one by one gives what merging their partials
/// gives) for the result to be the same in every mode. Integer sums,
/// counts, minima, maxima, sets and ordered concatenation are; `f64` sums
/// are not (rounding depends on the grouping): keep money in integer
/// cents, or sum floats as fixed-point integers.
///
/// ```
/// use parpipe::{Aggregate, BatchInfo, StageError};
///
/// /// Total spend in integer cents: the same whatever the chunking.
/// #[derive(Clone)]
/// struct Spend;
///
/// impl Aggregate for Spend {
///     type In = Vec<i64>; // prices in cents
///     type Partial = i64;
///     fn empty(&self) -> i64 {
///         0
///     }
///     fn add(&mut self, acc: &mut i64, prices: Vec<i64>, _: &BatchInfo) -> Result<(), StageError> {
///         *acc += prices.iter().sum::<i64>();
///         Ok(())
///     }
///     fn merge(&self, acc: &mut i64, later: i64) {
///         *acc += later;
///     }
/// }
/// // (a + b) + c == a + (b + c): any chunking gives 60 cents.
/// let (mut left, mut right) = (10, 20);
/// Spend.merge(&mut left, 20);
/// Spend.merge(&mut left, 30);
/// Spend.merge(&mut right, 30);
/// let mut other = 10;
/// Spend.merge(&mut other, right);
/// assert_eq!(left, other);
/// ```
pub trait Aggregate: Send + Clone + 'static {
    /// Input batch type (the last stage's output).
    type In: Records;
    /// The partial result. It crosses the wire in multiprocess mode.
    /// `Clone` gives a running pipeline's snapshots.
    type Partial: Send + Clone + Serialize + DeserializeOwned + 'static;

    /// The partial of no batch at all.
    fn empty(&self) -> Self::Partial;

    /// Folds one batch into `acc`.
    fn add(
        &mut self,
        acc: &mut Self::Partial,
        input: Self::In,
        info: &BatchInfo,
    ) -> Result<(), StageError>;

    /// Merges `later` (the partial of the batches that follow `acc`'s) into
    /// `acc`. Must be associative (see the trait's docs).
    fn merge(&self, acc: &mut Self::Partial, later: Self::Partial);

    /// Multiprocess mode: merges `later`, a partial decoded from a worker's
    /// bytes, into `acc`. Its numbers come from another process, so an
    /// aggregate whose merge can overflow, or that relies on invariants of
    /// its partial, checks them here and returns an error — the run then
    /// fails naming the chunk and the worker — rather than panicking or
    /// wrapping around. On an error, `acc` may be partly merged (the run
    /// stops). The default calls [`merge`](Self::merge).
    fn try_merge(&self, acc: &mut Self::Partial, later: Self::Partial) -> Result<(), StageError> {
        self.merge(acc, later);
        Ok(())
    }

    /// Whether [`renumber`](Self::renumber) can move a partial built with
    /// chunk-relative record numbers (the chunk's first record numbered 1)
    /// to its place in the input. Internal to the built-in aggregates for now.
    #[doc(hidden)]
    fn renumbers(&self) -> bool {
        false
    }

    /// Multiprocess mode, for an aggregate that [`renumbers`](Self::renumbers):
    /// adds `records_before` (the records of the input before the chunk) to
    /// every record number `partial` holds. An error (a number that would
    /// overflow) fails the run, naming the chunk.
    #[doc(hidden)]
    fn renumber(&self, partial: &mut Self::Partial, records_before: u64) -> Result<(), StageError> {
        let _ = (partial, records_before);
        Ok(())
    }

    /// Called once the partial of one chunk (in multiprocess mode, or a
    /// pipeline lane's) holds all its batches, before it is encoded or
    /// merged, on the thread that built it: the aggregate may compact it,
    /// and keep what the next chunk's partial can reuse. It must leave a
    /// partial that merges, encodes and renders as before. Internal to the
    /// built-in aggregates for now; the default does nothing.
    #[doc(hidden)]
    fn seal(&mut self, partial: &mut Self::Partial) {
        let _ = partial;
    }
}

/// Writes the result. Runs only in the coordinating process.
pub trait Sink: Send + 'static {
    /// The aggregate's partial type.
    type Partial: Send + 'static;
    /// What a finished run gives back to its caller (`()` for a sink that
    /// only writes files).
    type Output: Send + 'static;

    /// Called after each batch (or chunk) is folded in, in input order: the
    /// sink may take out parts of the running partial meant for streaming
    /// (for example rendered records), so they need not stay in memory.
    fn absorb(&mut self, acc: &mut Self::Partial) -> Result<(), StageError> {
        let _ = acc;
        Ok(())
    }

    /// Writes the final result and returns what the caller gets back.
    /// Outputs should appear atomically (write a temporary file, then
    /// rename).
    fn finish(&mut self, result: Self::Partial) -> Result<Self::Output, StageError>;

    /// Called instead of `finish` when the run fails or is interrupted:
    /// remove anything half-written.
    fn abort(&mut self) {}
}
