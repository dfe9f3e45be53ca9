//! The user-facing building blocks of a pipeline: the [`Source`], [`Stage`],
//! [`Aggregate`] and [`Sink`] traits, the [`BatchInfo`] that travels with
//! every batch, and [`StageError`], the error user code returns.
//!
//! A pipeline is `source → stage → … → aggregate → sink`. The same trait
//! objects run in every [`Mode`](crate::Mode): inline in one actor, one actor
//! per stage, or in worker processes. For results to be identical across
//! modes, a stage's output for a batch must depend only on that batch.

mod batch;
mod error;
mod fold;
mod source;

pub(crate) use batch::Numbering;
pub use batch::{BatchInfo, Records};
pub use error::StageError;
pub use fold::Fold;
pub(crate) use source::no_byte_cuts;
pub use source::{decode_batch, encode_batch, ChunkDecoder, ChunkSource, FileChunkSource, Source};

use serde::de::DeserializeOwned;
use serde::Serialize;

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
    /// input ([`BatchInfo::first_line`] or [`BatchInfo::seq`]). The default,
    /// yes, is always safe.
    ///
    /// A stage that says no lets the input be cut by bytes without counting
    /// records first: when every stage says no, the aggregate
    /// [`renumbers`](Aggregate::renumbers) and the source
    /// [`cuts_by_bytes`](FileChunkSource::cuts_by_bytes), pipeline mode's
    /// reading lanes and multiprocess workers read byte ranges of the input
    /// themselves and number each chunk's records from 1; such a stage then
    /// sees chunk-relative numbers in its [`BatchInfo`] (see there). Its
    /// output must not depend on them.
    ///
    /// ```
    /// use parpipe::{BatchInfo, Stage, StageError};
    ///
    /// /// Upper-cases every record: where the batch sits does not matter.
    /// #[derive(Clone)]
    /// struct Upper;
    /// impl Stage for Upper {
    ///     type In = Vec<String>;
    ///     type Out = Vec<String>;
    ///     fn process(&mut self, b: Vec<String>, _: &BatchInfo) -> Result<Vec<String>, StageError> {
    ///         Ok(b.into_iter().map(|s| s.to_uppercase()).collect())
    ///     }
    ///     fn uses_record_numbers(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Upper.uses_record_numbers());
    /// ```
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
    /// to its place in the input. The default is no.
    ///
    /// Saying yes (with [`Stage::uses_record_numbers`] no for every stage
    /// and a source that [`cuts_by_bytes`](FileChunkSource::cuts_by_bytes))
    /// lets pipeline mode's reading lanes and multiprocess workers read byte
    /// ranges of the input whose record count nobody knows in advance: each
    /// chunk's records are numbered from 1, and once the records before it
    /// are counted, its partial is [`renumber`](Self::renumber)ed before it
    /// is merged. An aggregate whose partial holds no record number (sums,
    /// counts, sets) says yes and keeps the default `renumber`.
    ///
    /// ```
    /// use parpipe::{Aggregate, BatchInfo, StageError};
    ///
    /// /// The record numbers of the empty records, in input order.
    /// #[derive(Clone)]
    /// struct Blanks;
    /// impl Aggregate for Blanks {
    ///     type In = Vec<String>;
    ///     type Partial = Vec<u64>;
    ///     fn empty(&self) -> Vec<u64> { Vec::new() }
    ///     fn add(&mut self, acc: &mut Vec<u64>, b: Vec<String>, info: &BatchInfo) -> Result<(), StageError> {
    ///         let numbered = (info.first_line..).zip(&b);
    ///         acc.extend(numbered.filter(|(_, r)| r.is_empty()).map(|(n, _)| n));
    ///         Ok(())
    ///     }
    ///     fn merge(&self, acc: &mut Vec<u64>, later: Vec<u64>) { acc.extend(later); }
    ///     fn renumbers(&self) -> bool { true }
    ///     fn renumber(&self, p: &mut Vec<u64>, records_before: u64) -> Result<(), StageError> {
    ///         for n in p.iter_mut() {
    ///             *n = n.checked_add(records_before)
    ///                 .ok_or_else(|| StageError::new("record number overflows"))?;
    ///         }
    ///         Ok(())
    ///     }
    ///     fn check_chunk(&self, p: &Vec<u64>, first: u64, records: u64) -> Result<(), StageError> {
    ///         // Numbers from another process: each must lie in the chunk, in order.
    ///         let inside = p.iter().all(|n| (first..first + records).contains(n));
    ///         if inside && p.windows(2).all(|w| w[0] < w[1]) {
    ///             Ok(())
    ///         } else {
    ///             Err(StageError::new("a record number outside its chunk"))
    ///         }
    ///     }
    /// }
    ///
    /// // A chunk of three records numbered from 1, of which the second is
    /// // empty, placed after 10 records of input: record 12.
    /// let mut agg = Blanks;
    /// let mut p = agg.empty();
    /// let info = BatchInfo { seq: 0, first_line: 1, records: 3 };
    /// agg.add(&mut p, vec!["a".into(), String::new(), "c".into()], &info)?;
    /// agg.check_chunk(&p, 1, 3)?;
    /// agg.renumber(&mut p, 10)?;
    /// assert_eq!(p, [12]);
    /// assert!(agg.check_chunk(&vec![7], 1, 3).is_err());
    /// # Ok::<(), StageError>(())
    /// ```
    fn renumbers(&self) -> bool {
        false
    }

    /// For an aggregate that [`renumbers`](Self::renumbers): adds
    /// `records_before` (the records of the input before the chunk) to every
    /// record number `partial` holds, so that a partial built with the
    /// chunk's first record numbered 1 holds the numbers it would have had
    /// if the whole input had been numbered at once. An error (a number that
    /// would overflow) fails the run, naming the chunk. The default does
    /// nothing: right for a partial that holds no record number. See
    /// [`renumbers`](Self::renumbers) for an example.
    fn renumber(&self, partial: &mut Self::Partial, records_before: u64) -> Result<(), StageError> {
        let _ = (partial, records_before);
        Ok(())
    }

    /// Multiprocess mode: checks that `partial`, decoded from a worker's
    /// answer to a chunk of `records` records whose first is numbered
    /// `first_line` (as the worker numbered them: 1 for a chunk cut by
    /// bytes), accounts for exactly those records — for example that a
    /// count of records equals `records`, or that every record number it
    /// holds lies in the chunk. An error drops the worker and its chunks go
    /// to the others. The default checks nothing. See [`renumbers`](Self::renumbers) for
    /// an example.
    fn check_chunk(
        &self,
        partial: &Self::Partial,
        first_line: u64,
        records: u64,
    ) -> Result<(), StageError> {
        let _ = (partial, first_line, records);
        Ok(())
    }

    /// Called once the partial of one chunk (in multiprocess mode, or a
    /// pipeline-mode reading lane's) holds all its batches, before it is
    /// encoded or merged, on the thread that built it: the aggregate may
    /// compact it (shrink buffers, drop scratch space), and keep in `self`
    /// what the next chunk's partial can reuse. It must leave a partial that
    /// merges, encodes and renders as before. Serial mode and pipeline
    /// mode's stage actors never call it. The default does nothing.
    ///
    /// ```
    /// use parpipe::{Aggregate, BatchInfo, StageError};
    ///
    /// /// The distinct words, sorted.
    /// #[derive(Clone)]
    /// struct Words;
    /// impl Aggregate for Words {
    ///     type In = Vec<String>;
    ///     type Partial = Vec<String>;
    ///     fn empty(&self) -> Vec<String> { Vec::new() }
    ///     fn add(&mut self, acc: &mut Vec<String>, b: Vec<String>, _: &BatchInfo) -> Result<(), StageError> {
    ///         acc.extend(b);
    ///         acc.sort_unstable();
    ///         acc.dedup();
    ///         Ok(())
    ///     }
    ///     fn merge(&self, acc: &mut Vec<String>, later: Vec<String>) {
    ///         acc.extend(later);
    ///         acc.sort_unstable();
    ///         acc.dedup();
    ///     }
    ///     // The chunk is done: give back the room it no longer needs.
    ///     fn seal(&mut self, partial: &mut Vec<String>) {
    ///         partial.shrink_to_fit();
    ///     }
    /// }
    /// let mut words = Words;
    /// let mut p = Vec::with_capacity(1024);
    /// let info = BatchInfo { seq: 0, first_line: 1, records: 3 };
    /// words.add(&mut p, vec!["b".into(), "a".into(), "b".into()], &info)?;
    /// words.seal(&mut p);
    /// assert_eq!(p, ["a", "b"]);
    /// assert!(p.capacity() < 1024);
    /// # Ok::<(), StageError>(())
    /// ```
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
