//! The one chunk-sizing rule: how many records the next chunk holds, for
//! multiprocess mode's chunks (counted, uncounted or shipped) and pipeline
//! mode's reading lanes alike. Batches inside a chunk are always
//! [`Plan::batch_size`](super::Plan::batch_size) records; the chunk size
//! only sets how many partials are built, sent and merged, and how evenly
//! the readers finish.
//!
//! The rule ("guided" scheduling): when the source estimates what remains,
//! a chunk is half an even share of it among the readers, so that chunks
//! shrink towards the end and the readers finish together; at least half
//! a batch (every chunk costs a partial, its encoding and its merge: an
//! eighth made a quarter more chunks for a tail no better balanced), at
//! most `most_batches` batches. Without an estimate: a batch per chunk,
//! then two once every reader had two chunks. With sizing not guided (an
//! explicit `--batch-size` in multiprocess mode, which benchmarks sweep),
//! a chunk is a batch.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most batches in a chunk that is counted or shipped: with
/// `--emit-records`, partials waiting to be merged in order hold their
/// rendered records, so a larger chunk costs the coordinator memory (4×
/// took it from 43 to 69 MiB on the same input).
pub const MOST_BATCHES_COUNTED: usize = 2;

/// Most batches in a chunk cut by bytes: its partial holds no rendered
/// records, and each partial costs a merge, so chunks may be large.
pub const MOST_BATCHES_UNCOUNTED: usize = 32;

/// Most bytes in a chunk cut by bytes: a reader's buffer stays a block
/// long whatever the chunk, and this keeps a chunk's partial small next to
/// the input it stands for. Never more than half a frame, so that a chunk
/// and the one record that may end it past the cut fit in any frame.
pub const MOST_BYTES_UNCOUNTED: usize = 32 << 20;

/// How many records a chunk holds (see the module text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSizing {
    /// Records per batch, the unit of the bounds.
    pub batch_records: usize,
    /// Sized to what remains (else one batch per chunk).
    pub guided: bool,
    /// Readers to share the input among (workers, lanes); multiprocess
    /// mode counts the workers connected at each chunk, at least this.
    pub readers: usize,
    /// Most batches per chunk.
    pub most_batches: usize,
    /// Most bytes per chunk (chunks cut by bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_bytes: Option<usize>,
}

impl ChunkSizing {
    /// A chunk is a batch (serial mode, stage actors, inline).
    pub fn batches(batch_records: usize) -> Self {
        ChunkSizing {
            batch_records: batch_records.max(1),
            guided: false,
            readers: 1,
            most_batches: 1,
            most_bytes: None,
        }
    }

    /// Chunks cut as `chunking` for `readers` readers, with frames of
    /// `max_frame` bytes.
    pub fn for_ranges(
        batch_records: usize,
        guided: bool,
        readers: usize,
        chunking: super::Chunking,
        max_frame: usize,
    ) -> Self {
        let uncounted = chunking == super::Chunking::UncountedRanges;
        ChunkSizing {
            batch_records: batch_records.max(1),
            guided,
            readers: readers.max(1),
            most_batches: if uncounted {
                MOST_BATCHES_UNCOUNTED
            } else {
                MOST_BATCHES_COUNTED
            },
            most_bytes: uncounted.then(|| MOST_BYTES_UNCOUNTED.min(max_frame / 2).max(1)),
        }
    }

    /// Records in chunk number `seq` when `left` records remain (the
    /// source's estimate) for `readers` readers (0: the plan's count).
    pub fn records(&self, left: Option<u64>, readers: usize, seq: u64) -> usize {
        let base = self.batch_records.max(1);
        if !self.guided {
            return base;
        }
        let ways = readers.max(self.readers).max(1) as u64;
        match left {
            Some(left) => {
                let share = left / (2 * ways);
                let low = (base / 2).max(1) as u64;
                let high = (base.saturating_mul(self.most_batches) as u64).max(low);
                share.clamp(low, high) as usize
            }
            None => base.saturating_mul(if seq / (2 * ways) >= 1 { 2 } else { 1 }),
        }
    }
}

impl fmt::Display for ChunkSizing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.guided {
            return write!(f, "a chunk per batch");
        }
        write!(
            f,
            "each half an even share of what remains among {} reader{}, from half a \
             batch to {} batches",
            self.readers,
            if self.readers == 1 { "" } else { "s" },
            self.most_batches
        )?;
        match self.most_bytes {
            Some(bytes) if bytes >= 1 << 20 => write!(f, " and {} MiB", bytes >> 20),
            Some(bytes) => write!(f, " and {bytes} bytes"),
            None => Ok(()),
        }
    }
}
