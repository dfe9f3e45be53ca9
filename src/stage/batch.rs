//! What travels with every batch: the [`Records`] a payload counts, the
//! [`BatchInfo`] saying where it sits in the input, and the numbering every
//! mode gives its source's batches.

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
///
/// What the numbers mean depends on how the input was cut:
///
/// - **Batches of the whole input** (serial mode, pipeline mode's stage
///   actors, a pushed run): `seq` numbers the source's batches from 0 in
///   input order, and `first_line` is the 1-based number of the batch's
///   first record in the whole input.
/// - **Chunks with known record counts** (multiprocess mode, a chunk the
///   coordinator cut from a [`Source`](crate::Source) or a
///   [`ChunkSource`](crate::ChunkSource)): `seq` is the chunk's number, the
///   same for every batch a worker cuts the chunk into, and `first_line` is
///   still the batch's first record in the whole input.
/// - **Chunks cut by bytes** (pipeline mode's reading lanes, multiprocess
///   workers reading ranges a [`FileChunkSource`](crate::FileChunkSource)
///   [cut by bytes](crate::FileChunkSource::cuts_by_bytes)): `seq` is the
///   chunk's number and `first_line` counts from the chunk's first record,
///   numbered 1. This happens only when every stage says no to
///   [`Stage::uses_record_numbers`](crate::Stage::uses_record_numbers) and
///   the aggregate [`renumbers`](crate::Aggregate::renumbers): the
///   aggregate's partial is moved to its place in the input before it is
///   merged.
///
/// So a stage or aggregate that keeps record numbers is right in every mode
/// as long as it either says it uses them, or renumbers; `records` always
/// counts the batch's own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchInfo {
    /// Sequence number of the batch (or of its chunk), from 0, in input
    /// order; see the type's docs.
    pub seq: u64,
    /// 1-based number of the batch's first record: in the whole input, or
    /// in its chunk when the chunk was cut by bytes (see the type's docs).
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
