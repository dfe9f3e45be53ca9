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
