//! Randomness with a fixed stream: xoshiro256** seeded by SplitMix64, and
//! weighted choice through integer-built tables.

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
pub(super) struct Rng {
    pub(super) s: [u64; 4],
}

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        // SplitMix64 never yields four zero words, the one bad xoshiro state.
        Rng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    #[inline]
    pub(super) fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is negligible).
    #[inline]
    pub(super) fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }

    /// Uniform in `0..n` for 64-bit `n`.
    #[inline]
    pub(super) fn range64(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// Weighted choice through a table of `2^bits` slots indexed by the top bits
/// of a random number: one load per pick. Built with integers only.
pub(super) struct Picker {
    pub(super) table: Vec<u16>,
    pub(super) shift: u32,
}

impl Picker {
    pub(super) fn new(weights: &[u64], bits: u32) -> Self {
        let slots = 1u64 << bits;
        let total: u64 = weights.iter().sum();
        let mut table = Vec::with_capacity(slots as usize);
        let (mut item, mut cum) = (0usize, weights[0]);
        for j in 0..slots {
            // Each slot takes the item whose cumulative range holds the
            // slot's centre.
            let target = ((2 * j as u128 + 1) * total as u128 / (2 * slots as u128)) as u64;
            while cum <= target && item + 1 < weights.len() {
                item += 1;
                cum += weights[item];
            }
            table.push(item as u16);
        }
        Picker {
            table,
            shift: 64 - bits,
        }
    }

    #[inline]
    pub(super) fn pick(&self, r: u64) -> usize {
        self.table[(r >> self.shift) as usize] as usize
    }
}

/// Zipf-like weights ∝ 1/(i+2): a heavy head and a long tail.
pub(super) fn zipf_weights(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| 1_000_000_000 / (i + 2)).collect()
}

pub(super) fn weights<T>(table: &[(T, u64)]) -> Vec<u64> {
    table.iter().map(|e| e.1).collect()
}

#[inline]
pub(super) fn pick_slice<T: Copy>(items: &[T], r: u64) -> T {
    items[(((r >> 32) * items.len() as u64) >> 32) as usize]
}
