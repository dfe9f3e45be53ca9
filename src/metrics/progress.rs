//! Live progress of a run ([`Progress`]): records read so far and the
//! expected total, shared with a progress bar.

use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Live progress of a run, shared with whoever displays it (a progress
/// bar): records pulled from the source so far, and the total when known.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    records: Arc<std::sync::atomic::AtomicU64>,
    total: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    /// A counter at zero with no known total.
    pub fn new() -> Self {
        Progress::default()
    }

    /// Counts `n` more records read.
    pub fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back `n` records counted for work that is lost and will run
    /// again (a worker's held partial that never came back).
    pub(crate) fn take_back(&self, n: u64) {
        let _ = self
            .records
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(n))
            });
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Sets the expected total (0 = unknown).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// The expected total, when the source knows it.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
}
