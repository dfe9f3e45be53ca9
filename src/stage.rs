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
mod source;

pub(crate) use batch::Numbering;
pub use batch::{BatchInfo, Records};
pub use error::StageError;
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

    /// Multiprocess mode: checks that `partial`, decoded from a worker's
    /// answer to a chunk of `records` records whose first is numbered
    /// `first_line` (as the worker numbered them), accounts for exactly
    /// those records. An error drops the worker and its chunks go to the
    /// others. Internal to the built-in aggregates for now; the default
    /// checks nothing.
    #[doc(hidden)]
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
