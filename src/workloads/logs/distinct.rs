//! [`Distinct`]: how many distinct clients a time bucket saw
//! (docs/logs-workload.md §4a, rule 2), bounded in memory and mergeable so
//! that every mode gives the same bytes.
//!
//! Clients are counted by their 64-bit XXH3 hash (seed 0). A bucket keeps
//! the exact set of hashes while it holds at most [`EXACT_LIMIT`] of them;
//! past that it becomes a HyperLogLog sketch of [`REGISTERS`] one-byte
//! registers. Both the set and the registers are functions of the set of
//! hashes alone (a union is the same whatever the order or grouping of the
//! merges, and a set turned into a sketch gives the registers inserting
//! its hashes one by one would), so the count does not depend on how the
//! lines were split.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// Most hashes a bucket keeps exactly (8 KiB of hashes, about 16 KiB with
/// the set's table).
pub const EXACT_LIMIT: usize = 1024;
/// Bits of the hash that choose a register.
const PRECISION: u32 = 12;
/// Registers of a sketch (4 KiB): relative standard error 1.04/√4096 ≈ 1.6 %.
pub const REGISTERS: usize = 1 << PRECISION;

/// The hash distinct clients are counted by.
#[inline]
pub fn client_hash(client: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(client)
}

/// Distinct hashes, exactly or as a sketch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distinct {
    /// At most [`EXACT_LIMIT`] hashes.
    Exact(FxHashSet<u64>),
    /// [`REGISTERS`] registers, each the largest rank seen.
    Sketch(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(FxHashSet::default())
    }
}

impl Distinct {
    /// Counts one hash.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        match self {
            Distinct::Exact(set) => {
                if set.insert(hash) && set.len() > EXACT_LIMIT {
                    self.make_sketch();
                }
            }
            Distinct::Sketch(registers) => sketch_insert(registers, hash),
        }
    }

    fn make_sketch(&mut self) {
        if let Distinct::Exact(set) = self {
            let mut registers = vec![0u8; REGISTERS];
            for &h in set.iter() {
                sketch_insert(&mut registers, h);
            }
            *self = Distinct::Sketch(registers);
        }
    }

    /// Folds `other` in (a union).
    pub fn merge(&mut self, other: Distinct) {
        match other {
            Distinct::Exact(set) => {
                if let Distinct::Exact(mine) = self {
                    if mine.len() < set.len() {
                        let small = std::mem::replace(mine, set);
                        mine.extend(small);
                    } else {
                        mine.extend(set);
                    }
                    if mine.len() > EXACT_LIMIT {
                        self.make_sketch();
                    }
                } else {
                    for h in set {
                        self.insert(h);
                    }
                }
            }
            Distinct::Sketch(theirs) => {
                self.make_sketch();
                if let Distinct::Sketch(mine) = self {
                    for (m, t) in mine.iter_mut().zip(theirs) {
                        *m = (*m).max(t);
                    }
                }
            }
        }
    }

    /// Checks a value decoded from another process: a set within the
    /// limit, or exactly [`REGISTERS`] registers of possible ranks.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Distinct::Exact(set) if set.len() > EXACT_LIMIT => Err(format!(
                "a distinct-client set of {} hashes (at most {EXACT_LIMIT})",
                set.len()
            )),
            Distinct::Sketch(r) if r.len() != REGISTERS => Err(format!(
                "a distinct-client sketch of {} registers ({REGISTERS} expected)",
                r.len()
            )),
            Distinct::Sketch(r) if r.iter().any(|&v| u32::from(v) > 65 - PRECISION) => {
                Err("a distinct-client sketch register out of range".into())
            }
            _ => Ok(()),
        }
    }

    /// The number of distinct clients: exact for a set, the HyperLogLog
    /// estimate (with linear counting for small ones) for a sketch.
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(registers) => estimate(registers),
        }
    }
}

#[inline]
fn sketch_insert(registers: &mut [u8], hash: u64) {
    let index = (hash >> (64 - PRECISION)) as usize;
    // The rank: position of the first 1 bit after the index bits (a
    // sentinel bit bounds it at 64 - PRECISION + 1).
    let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    if let Some(r) = registers.get_mut(index) {
        *r = (*r).max(rank);
    }
}

/// The standard HyperLogLog estimate (Flajolet et al. 2007): the harmonic
/// mean of the registers, or linear counting while it is small and some
/// registers are still 0. The same registers give the same number on
/// every machine (the same floating-point operations in the same order).
fn estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let e = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(range: std::ops::Range<u64>) -> Distinct {
        let mut d = Distinct::default();
        for i in range {
            d.insert(client_hash(
                format!("10.0.{}.{}", i / 256, i % 256).as_bytes(),
            ));
        }
        d
    }

    #[test]
    fn exact_up_to_the_limit_then_a_sketch_within_its_error() {
        let small = of(0..1000);
        assert_eq!(small.count(), 1000);
        assert!(matches!(small, Distinct::Exact(_)));
        let big = of(0..50_000);
        assert!(matches!(big, Distinct::Sketch(_)));
        let err = (big.count() as f64 - 50_000.0).abs() / 50_000.0;
        assert!(err < 0.05, "estimate {} for 50000", big.count());
        big.check().unwrap();
    }

    proptest::proptest! {
        /// The union does not depend on how the hashes were split or in
        /// which order the parts were merged.
        #[test]
        fn merging_any_split_gives_the_same_state(
            n in 0u64..3000,
            cuts in proptest::collection::vec(0u64..3000, 0..5),
            reverse in proptest::bool::ANY,
        ) {
            let whole = of(0..n);
            let mut bounds: Vec<u64> = cuts.into_iter().map(|c| c.min(n)).collect();
            bounds.push(0);
            bounds.push(n);
            bounds.sort_unstable();
            let mut parts: Vec<Distinct> = bounds.windows(2).map(|w| of(w[0]..w[1])).collect();
            if reverse {
                parts.reverse();
            }
            let mut total = Distinct::default();
            for p in parts {
                total.merge(p);
            }
            proptest::prop_assert_eq!(total.count(), whole.count());
            proptest::prop_assert_eq!(&total, &whole);
        }
    }

    #[test]
    fn bad_decoded_states_are_refused() {
        assert!(Distinct::Sketch(vec![0; 10]).check().is_err());
        assert!(Distinct::Sketch(vec![200; REGISTERS]).check().is_err());
        let mut big = FxHashSet::default();
        big.extend(0..(EXACT_LIMIT as u64 + 1));
        assert!(Distinct::Exact(big).check().is_err());
    }
}
