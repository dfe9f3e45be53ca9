//! Request durations (docs/log-formats.md, "Latency"): a histogram with
//! fixed buckets, so that partials merge by adding counts and every mode
//! gives the same bytes.
//!
//! Buckets, over whole microseconds `v`: below 64 each value is its own
//! bucket (exact); from 64 on, each power of two `[2^e, 2^(e+1))` is cut
//! into 32 equal buckets, so a bucket `[lo, hi)` has `hi - lo <= lo / 32`.
//! A percentile is reported as its bucket's lower bound `lo`: the true
//! value lies in `[lo, lo × (1 + 1/32))`, an error below 3.125 %, always
//! downwards. Count, sum and maximum are exact.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Values below this are buckets of their own.
const EXACT: u64 = 64;
/// Sub-buckets per power of two (2^5).
const SUB_BITS: u32 = 5;
/// Number of buckets: 64 exact, then 32 for each exponent 6..=63.
pub const BUCKETS: u16 = 64 + 58 * 32;

/// The bucket of `v` microseconds.
pub fn bucket(v: u64) -> u16 {
    if v < EXACT {
        return v as u16;
    }
    let e = 63 - v.leading_zeros(); // 6..=63
    let sub = (v >> (e - SUB_BITS)) & 31;
    (64 + (e - 6) * 32) as u16 + sub as u16
}

/// The smallest value of bucket `b`.
pub fn lower_bound(b: u16) -> u64 {
    if u64::from(b) < EXACT {
        return u64::from(b);
    }
    let k = u32::from(b) - 64;
    let (e, sub) = (k / 32 + 6, u64::from(k % 32));
    (32 + sub) << (e - SUB_BITS)
}

/// Durations seen, mergeable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Count per bucket (no zero entries).
    pub buckets: BTreeMap<u16, u64>,
    /// Number of durations.
    pub count: u64,
    /// Their exact sum, microseconds.
    pub sum: u128,
    /// The largest, microseconds.
    pub max: u64,
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&mut self, us: u64) {
        *self.buckets.entry(bucket(us)).or_insert(0) += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.max = self.max.max(us);
    }

    /// Folds `other` in; `Err` on an overflow or a bucket that does not
    /// exist (a partial from another process).
    pub fn try_merge(&mut self, other: Histogram) -> Result<(), String> {
        if let Some((b, _)) = other.buckets.iter().find(|(b, _)| **b >= BUCKETS) {
            return Err(format!("latency bucket {b} does not exist"));
        }
        for (b, n) in other.buckets {
            let mine = self.buckets.entry(b).or_insert(0);
            *mine = mine
                .checked_add(n)
                .ok_or("latency bucket count overflows")?;
        }
        self.count = self
            .count
            .checked_add(other.count)
            .ok_or("latency count overflows")?;
        self.sum = self
            .sum
            .checked_add(other.sum)
            .ok_or("latency sum overflows")?;
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// The nearest-rank `p`-th percentile (`p` in 1..=100): the lower bound
    /// of the bucket holding the value of rank `ceil(p × count / 100)`.
    pub fn percentile(&self, p: u64) -> u64 {
        let rank = (u128::from(self.count) * u128::from(p))
            .div_ceil(100)
            .max(1);
        let mut seen = 0u128;
        for (&b, &n) in &self.buckets {
            seen += u128::from(n);
            if seen >= rank {
                return lower_bound(b).min(self.max);
            }
        }
        self.max
    }

    /// How many durations fall at or below each of `bounds_us`
    /// (ascending), not cumulated: entry `i` counts those above bound
    /// `i - 1` and at most bound `i`, and a last entry those above every
    /// bound, as a Prometheus histogram's buckets. A bucket of this
    /// histogram counts under the first bound its largest value does not
    /// exceed, so a count is exact where a bound falls on a bucket edge
    /// and otherwise short by at most the values of the one bucket that
    /// straddles it (within 3.125 % of the bound).
    pub fn counts_at_or_below(&self, bounds_us: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; bounds_us.len() + 1];
        for (&b, &n) in &self.buckets {
            let largest = if b + 1 < BUCKETS {
                lower_bound(b + 1) - 1
            } else {
                u64::MAX
            };
            let i = bounds_us.partition_point(|&bound| bound < largest);
            out[i] = out[i].saturating_add(n);
        }
        out
    }

    /// The summary object.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            max_us: self.max,
            p50_us: self.percentile(50),
            p90_us: self.percentile(90),
            p99_us: self.percentile(99),
            sum_us: self.sum,
        }
    }
}

/// Latency figures in `summary.json` (fields in key order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Requests with a duration.
    pub count: u64,
    /// The longest, exact.
    pub max_us: u64,
    /// Median (bucket lower bound).
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Sum of durations, exact.
    pub sum_us: u128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_the_error_bound() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(63), 63);
        assert_eq!(bucket(64), 64);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for b in 1..BUCKETS {
            assert!(lower_bound(b) > lower_bound(b - 1));
            assert_eq!(bucket(lower_bound(b)), b);
            assert_eq!(bucket(lower_bound(b) - 1), b - 1);
        }
        for v in [64u64, 100, 999, 123_456, 10_000_000, u64::MAX / 3] {
            let lo = lower_bound(bucket(v));
            assert!(lo <= v && (v - lo) * 32 <= lo, "{v} {lo}");
        }
    }

    #[test]
    fn percentiles_merge_and_match_nearest_rank() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 1..=100u64 {
            if v % 2 == 0 {
                a.record(v * 1000)
            } else {
                b.record(v * 1000)
            }
        }
        let mut all = a.clone();
        all.try_merge(b.clone()).unwrap();
        let mut other = b;
        other.try_merge(a).unwrap();
        assert_eq!(all, other, "merging is order-free");
        let s = all.summary();
        assert_eq!((s.count, s.sum_us, s.max_us), (100, 5_050_000, 100_000));
        for (got, exact) in [
            (s.p50_us, 50_000u64),
            (s.p90_us, 90_000),
            (s.p99_us, 99_000),
        ] {
            assert!(got <= exact && (exact - got) * 32 <= got, "{got} {exact}");
        }
        let mut bad = Histogram::default();
        bad.buckets.insert(BUCKETS, 1);
        assert!(all.try_merge(bad).is_err());
    }
}
