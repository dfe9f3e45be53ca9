//! When a chunk has been held too long: measured against the run's own
//! chunks, as a multiple of the median time from sending a chunk to its
//! first answer, never below a floor.

use std::collections::VecDeque;
use std::time::Duration;

/// A copy held this many times the median turnaround is overdue.
pub(crate) const DEADLINE_FACTOR: u32 = 4;
/// No chunk is overdue sooner than this, however fast the others were:
/// scheduling noise on a busy machine is not a straggler.
pub(crate) const DEADLINE_FLOOR: Duration = Duration::from_millis(250);
/// When a worker has nothing else to do (no chunk waits and none can be
/// read now: the input is done, or the window waits on the overdue
/// chunk), a copy costs nothing it could otherwise have done: a chunk is
/// overdue after this multiple of the median instead ...
pub(crate) const IDLE_FACTOR: u32 = 2;
/// ... and never sooner than this.
pub(crate) const IDLE_FLOOR: Duration = Duration::from_millis(50);
/// Turnarounds the median is taken over: the most recent ones, so that
/// the deadline follows chunks whose size changes along the run.
const SAMPLES: usize = 64;

/// The recent turnarounds and the deadline they give.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    samples: VecDeque<Duration>,
    /// The median of the samples so far (`None`: no chunk answered yet).
    median: Option<Duration>,
}

impl Deadline {
    /// A chunk was answered `took` after it was sent.
    pub(crate) fn record(&mut self, took: Duration) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(took);
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        let mid = sorted.len() / 2;
        let (_, median, _) = sorted.select_nth_unstable(mid);
        self.median = Some(*median);
    }

    /// How long a copy may be held before another worker is sent the
    /// chunk as well; `None` until some chunk was answered (there is
    /// nothing to measure against yet).
    pub(crate) fn get(&self) -> Option<Duration> {
        self.median
            .map(|m| (m * DEADLINE_FACTOR).max(DEADLINE_FLOOR))
    }

    /// The same for a worker that has nothing else to do.
    pub(crate) fn idle(&self) -> Option<Duration> {
        self.median.map(|m| (m * IDLE_FACTOR).max(IDLE_FLOOR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_a_multiple_of_the_median_with_a_floor() {
        let mut d = Deadline::default();
        assert_eq!(d.get(), None);
        d.record(Duration::from_millis(10));
        assert_eq!(d.get(), Some(DEADLINE_FLOOR));
        for ms in [100, 120, 5000, 110, 90] {
            d.record(Duration::from_millis(ms));
        }
        // Median of 10, 90, 100, 110, 120, 5000 (upper middle): 110 ms.
        assert_eq!(d.get(), Some(Duration::from_millis(440)));
        assert_eq!(d.idle(), Some(Duration::from_millis(220)));
        for _ in 0..SAMPLES {
            d.record(Duration::from_secs(1));
        }
        assert_eq!(d.get(), Some(Duration::from_secs(4)), "old samples age out");
    }
}
