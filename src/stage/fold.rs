//! [`Fold`]: an aggregate that takes one record at a time, the end of a
//! pipeline of record stages.

use super::StageError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Folds records, one at a time, into a mergeable partial result: the
/// aggregate of a pipeline whose stages work record by record
/// ([`PipelineBuilder::map`](crate::PipelineBuilder::map),
/// [`filter_map`](crate::PipelineBuilder::filter_map),
/// [`try_filter_map`](crate::PipelineBuilder::try_filter_map)), given to
/// [`PipelineBuilder::fold`](crate::PipelineBuilder::fold).
///
/// Such a pipeline runs each record from its source to the fold before the
/// next is decoded, wherever the source's decoder can make records one at
/// a time (see [`ChunkDecoder::decode_each`](crate::ChunkDecoder::decode_each)):
/// the strings one record owns are freed before the next record's are
/// made, as in a plain loop, instead of a batch of them living at once.
/// Elsewhere (batches pushed through a handle, stage actors over gzip or
/// standard input) it runs batch by batch like any [`Aggregate`](crate::Aggregate),
/// with the same result.
///
/// [`merge`](Self::merge) must be associative, as an aggregate's (see
/// [`Aggregate`](crate::Aggregate)): partials of different chunks are
/// merged in input order. A fold never sees record numbers, so its partial
/// is the same however the input was cut.
///
/// ```
/// use parpipe::{Fold, StageError};
///
/// /// Total spend in integer cents.
/// #[derive(Clone)]
/// struct Spend;
///
/// impl Fold for Spend {
///     type In = i64;
///     type Partial = i64;
///     fn empty(&self) -> i64 {
///         0
///     }
///     fn add(&mut self, acc: &mut i64, cents: i64) -> Result<(), StageError> {
///         *acc = acc.checked_add(cents).ok_or_else(|| StageError::new("the total overflows"))?;
///         Ok(())
///     }
///     fn merge(&self, acc: &mut i64, later: i64) {
///         *acc += later;
///     }
/// }
/// let mut spend = Spend;
/// let mut total = spend.empty();
/// for cents in [10, 20, 30] {
///     spend.add(&mut total, cents)?;
/// }
/// assert_eq!(total, 60);
/// # Ok::<(), StageError>(())
/// ```
pub trait Fold: Send + Clone + 'static {
    /// The record type (the last record stage's output).
    type In: Send + 'static;
    /// The partial result. It crosses the wire in multiprocess mode.
    type Partial: Send + Clone + Serialize + DeserializeOwned + 'static;

    /// The partial of no record at all.
    fn empty(&self) -> Self::Partial;

    /// Folds one record into `acc`. An error fails the run, naming the
    /// fold and the record.
    fn add(&mut self, acc: &mut Self::Partial, record: Self::In) -> Result<(), StageError>;

    /// Merges `later` (the partial of the records that follow `acc`'s)
    /// into `acc`. Must be associative.
    fn merge(&self, acc: &mut Self::Partial, later: Self::Partial);

    /// Multiprocess mode: merges `later`, decoded from a worker's bytes,
    /// into `acc`, refusing numbers that would overflow or break the
    /// partial's invariants (see [`Aggregate::try_merge`](crate::Aggregate::try_merge)).
    /// The default calls [`merge`](Self::merge).
    fn try_merge(&self, acc: &mut Self::Partial, later: Self::Partial) -> Result<(), StageError> {
        self.merge(acc, later);
        Ok(())
    }

    /// Whether [`merge`](Self::merge) gives the same partial whichever of
    /// the two comes first (sums, counts, minima, maxima, sets, maps of
    /// those; not concatenation or "the first seen"). The default, no,
    /// is always safe.
    ///
    /// Saying yes lets each of pipeline mode's reading lanes fold every
    /// chunk it reads into one partial of its own, merged with the
    /// others' once at the end, instead of building a partial per chunk
    /// that is merged in input order: fewer partials to build, and none
    /// freed on another thread than the one that made it. A sink given
    /// with [`fold_into`](crate::PipelineBuilder::fold_into) then
    /// [`absorb`](crate::Sink::absorb)s the lanes' partials only at the
    /// end.
    fn commutes(&self) -> bool {
        false
    }
}
