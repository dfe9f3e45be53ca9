//! [`Counts`]: how often each byte-string key was seen (methods, paths,
//! clients), in the two shapes a partial takes. A partial being built counts
//! in a hash map. A partial decoded from a worker's bytes is only ever
//! merged into the coordinator's total, so it keeps its entries flat — the
//! keys in one buffer, no per-key allocation, no hashing — and merging
//! looks each key up once, allocating only for keys the total lacks.
//! Before, decoding built a map per partial (a box and an insert per key)
//! and merging hashed every key again: most of the coordinator's work
//! besides finding line ends.
//!
//! A chunk's partial is made flat too once it is complete (`Counts::seal`),
//! and its map, every count set to 0, goes on to count the next chunk: a key
//! that chunk sees again costs no allocation and no insert. So a count of 0
//! is no entry: nothing that reads counts (iteration, length, encoding,
//! merging) sees one.

use super::metrics::Overflow;
use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::Bytes;
use std::fmt;

/// Counts per byte-string key.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Keys counted as they come.
    map: FxHashMap<Box<[u8]>, u64>,
    /// Entries as decoded, not yet folded into `map` (which is then empty).
    flat: Option<Flat>,
}

/// Decoded entries: `keys[ends[i-1]..ends[i]]` has count `counts[i]`. A key
/// listed twice counts twice.
#[derive(Debug, Clone, Default)]
struct Flat {
    keys: Vec<u8>,
    ends: Vec<usize>,
    counts: Vec<u64>,
}

impl Flat {
    fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.ends
            .iter()
            .zip(&self.counts)
            .scan(0, |start, (&end, &count)| {
                let key = &self.keys[*start..end];
                *start = end;
                Some((key, count))
            })
            .filter(|&(_, count)| count > 0)
    }
}

/// The map a sealed partial leaves behind: its keys, every count 0.
pub(crate) type SpareKeys = FxHashMap<Box<[u8]>, u64>;

impl Counts {
    /// Adds `by` to `key`'s count.
    pub fn bump(&mut self, key: &[u8], by: u64) {
        bump_map(self.map_mut(), key, by);
    }

    /// Number of entries (distinct keys, unless decoded bytes listed one twice).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.map
            .iter()
            .filter(|&(_, &v)| v > 0)
            .map(|(k, &v)| (&k[..], v))
            .chain(self.flat.iter().flat_map(Flat::iter))
    }

    /// Makes a complete chunk's counts flat (as if decoded: one buffer of
    /// keys) and hands back their map, every count set to 0, for the next
    /// chunk to count in ([`adopt`](Self::adopt)); `None` when there is no
    /// map to hand back, or when most of its keys are no longer seen (a
    /// spare far larger than a chunk's keys would make every seal walk it).
    pub(crate) fn seal(&mut self) -> Option<SpareKeys> {
        if self.flat.is_some() || self.map.is_empty() {
            return None;
        }
        let mut map = std::mem::take(&mut self.map);
        let mut flat = Flat {
            keys: Vec::with_capacity(map.len() * 16),
            ends: Vec::with_capacity(map.len()),
            counts: Vec::with_capacity(map.len()),
        };
        for (key, count) in map.iter_mut().filter(|(_, c)| **c > 0) {
            flat.keys.extend_from_slice(key);
            flat.ends.push(flat.keys.len());
            flat.counts.push(*count);
            *count = 0;
        }
        let live = flat.counts.len();
        self.flat = Some(flat);
        (map.len() <= 4 * live + 1024).then_some(map)
    }

    /// Counts from here on in `spare` (left by [`seal`](Self::seal)) if
    /// nothing was counted yet; else leaves `spare` alone.
    pub(crate) fn adopt(&mut self, spare: &mut Option<SpareKeys>) {
        if self.map.is_empty() && self.flat.is_none() {
            if let Some(map) = spare.take() {
                self.map = map;
            }
        }
    }

    /// Folds `later`'s counts into these (a count that would overflow
    /// saturates: see [`LogsPartial::merge`](super::metrics::LogsPartial::merge)).
    pub fn merge(&mut self, later: Counts) {
        // Saturate never fails.
        let _ = self.merge_with(later, Overflow::Saturate);
    }

    /// Folds `later`'s counts into these, refusing a count that would overflow.
    pub fn try_merge(&mut self, later: Counts) -> Result<(), String> {
        self.merge_with(later, Overflow::Refuse)
    }

    pub(crate) fn merge_with(&mut self, later: Counts, overflow: Overflow) -> Result<(), String> {
        if self.map.is_empty() && self.flat.is_none() && later.flat.is_none() {
            *self = later;
            return Ok(());
        }
        let map = self.map_mut();
        map.reserve(later.len().saturating_sub(map.len()));
        for (k, v) in later.map.into_iter().filter(|&(_, v)| v > 0) {
            overflow.add_u64(map.entry(k).or_insert(0), v, "count")?;
        }
        for (key, count) in later.flat.iter().flat_map(Flat::iter) {
            if let Some(mine) = map.get_mut(key) {
                overflow.add_u64(mine, count, "count")?;
            } else {
                map.insert(key.into(), count);
            }
        }
        Ok(())
    }

    /// The counts as a map, folding decoded entries into it first.
    pub(crate) fn map_mut(&mut self) -> &mut FxHashMap<Box<[u8]>, u64> {
        if let Some(flat) = self.flat.take() {
            self.map.reserve(flat.counts.len());
            for (key, count) in flat.iter() {
                // A key listed twice in decoded bytes: saturate, never wrap.
                if let Some(mine) = self.map.get_mut(key) {
                    *mine = mine.saturating_add(count);
                } else {
                    self.map.insert(key.into(), count);
                }
            }
        }
        &mut self.map
    }

    /// Key → total count, whatever the shape.
    fn totals(&self) -> FxHashMap<&[u8], u64> {
        let mut totals = FxHashMap::default();
        for (key, count) in self.iter() {
            let total: &mut u64 = totals.entry(key).or_insert(0);
            *total = total.saturating_add(count);
        }
        totals
    }
}

/// Looks `key` up by slice first, so that a known key costs no allocation.
#[inline]
pub(crate) fn bump_map(map: &mut FxHashMap<Box<[u8]>, u64>, key: &[u8], by: u64) {
    if let Some(count) = map.get_mut(key) {
        *count += by;
    } else {
        map.insert(key.into(), by);
    }
}

impl PartialEq for Counts {
    fn eq(&self, other: &Counts) -> bool {
        self.totals() == other.totals()
    }
}

impl<'a> FromIterator<(&'a [u8], u64)> for Counts {
    fn from_iter<I: IntoIterator<Item = (&'a [u8], u64)>>(iter: I) -> Self {
        let mut counts = Counts::default();
        for (key, by) in iter {
            counts.bump(key, by);
        }
        counts
    }
}

/// Encoded as a map of byte strings to counts: in bincode, the very bytes a
/// `HashMap<Box<[u8]>, u64>` gets (a length, then each key's length and
/// bytes and its count), written without bincode's `u8`-at-a-time default.
impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The length goes first, and the chained iterator cannot say it exactly.
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(Bytes::new(k), &v)?;
        }
        map.end()
    }
}

/// Decoded flat (see the module docs).
impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Counts, D::Error> {
        d.deserialize_map(FlatVisitor)
    }
}

struct FlatVisitor;

impl<'de> Visitor<'de> for FlatVisitor {
    type Value = Counts;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of byte strings to counts")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Counts, A::Error> {
        // The announced size is untrusted input: cap what it reserves. The
        // bounded decoder caps the hint at a sixteenth of the input's
        // bytes, so 16 bytes of keys per entry reserve at most the input's
        // length (which the keys cannot exceed).
        let hint = access.size_hint().unwrap_or(0).min(1 << 16);
        let (mut keys, mut ends, mut counts) = (
            Vec::with_capacity(hint * 16),
            Vec::with_capacity(hint),
            Vec::with_capacity(hint),
        );
        while access.next_key_seed(KeyInto(&mut keys))?.is_some() {
            ends.push(keys.len());
            counts.push(access.next_value::<u64>()?);
        }
        Ok(Counts {
            map: FxHashMap::default(),
            flat: Some(Flat { keys, ends, counts }),
        })
    }
}

/// Appends a byte-string key to the flat key buffer: borrowed from the
/// input when the format allows, so it is copied exactly once.
struct KeyInto<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeyInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.extend_from_slice(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(b) = seq.next_element::<u8>()? {
            self.0.push(b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> bincode::config::Configuration {
        bincode::config::standard()
    }

    fn sample() -> Counts {
        [
            (&b"1.2.3.4"[..], 2),
            ("/caf\u{e9}".as_bytes(), 1),
            (&b""[..], 7),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn encoded_exactly_as_a_plain_map_of_boxed_keys() {
        let counts = sample();
        let plain: FxHashMap<Box<[u8]>, u64> =
            counts.iter().map(|(k, v)| (Box::from(k), v)).collect();
        let mut expected = bincode::serde::encode_to_vec(plain.len() as u64, config()).unwrap();
        for (k, v) in counts.iter() {
            expected.extend(bincode::serde::encode_to_vec(Box::<[u8]>::from(k), config()).unwrap());
            expected.extend(bincode::serde::encode_to_vec(v, config()).unwrap());
        }
        assert_eq!(
            bincode::serde::encode_to_vec(&counts, config()).unwrap(),
            expected
        );
    }

    #[test]
    fn decodes_flat_and_merges_like_the_map_it_stands_for() {
        let bytes = bincode::serde::encode_to_vec(sample(), config()).unwrap();
        let (flat, used): (Counts, usize) =
            bincode::serde::decode_from_slice(&bytes, config()).unwrap();
        assert_eq!(used, bytes.len());
        assert!(flat.flat.is_some() && flat.map.is_empty());
        assert_eq!(flat, sample());
        assert_eq!(flat.len(), 3);

        // Merged into a total that already has some of the keys.
        let mut total: Counts = [(&b"1.2.3.4"[..], 10), (&b"/x"[..], 1)]
            .into_iter()
            .collect();
        total.merge(flat.clone());
        let expected: Counts = [
            (&b"1.2.3.4"[..], 12),
            (&b"/x"[..], 1),
            ("/caf\u{e9}".as_bytes(), 1),
            (&b""[..], 7),
        ]
        .into_iter()
        .collect();
        assert_eq!(total, expected);
        assert!(total.flat.is_none());

        // Into an empty total, and counted on after that.
        let mut empty = Counts::default();
        empty.merge(flat);
        empty.bump(b"", 1);
        assert_eq!(empty.totals().get(&b""[..]), Some(&8));
    }

    #[test]
    fn a_sealed_partial_encodes_and_merges_as_before_and_its_keys_count_the_next() {
        let mut first = sample();
        let before = bincode::serde::encode_to_vec(&first, config()).unwrap();
        let mut spare = first.seal();
        assert!(first.map.is_empty() && first.flat.is_some());
        assert_eq!(first, sample());
        assert_eq!(first.len(), 3);
        // The same entries (in the map's order, so the same bytes here).
        assert_eq!(
            bincode::serde::encode_to_vec(&first, config()).unwrap(),
            before
        );
        let map = spare.as_ref().expect("a map to reuse");
        assert_eq!(map.len(), 3);
        assert!(map.values().all(|&c| c == 0));

        // The next chunk counts in the spare: its zeros are no entries.
        let mut second = Counts::default();
        second.adopt(&mut spare);
        assert!(spare.is_none());
        assert!(second.is_empty());
        assert_eq!(second.len(), 0, "zero counts are no entries");
        second.bump(b"1.2.3.4", 5);
        second.bump(b"new", 1);
        let expected: Counts = [(&b"1.2.3.4"[..], 5), (&b"new"[..], 1)]
            .into_iter()
            .collect();
        assert_eq!(second, expected);
        assert_eq!(second.len(), 2);
        let bytes = bincode::serde::encode_to_vec(&second, config()).unwrap();
        let (decoded, _): (Counts, usize) =
            bincode::serde::decode_from_slice(&bytes, config()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded, expected);

        // Merged, in order: as if never sealed.
        let mut total = Counts::default();
        total.merge(first);
        total.merge(second);
        let all: Counts = [
            (&b"1.2.3.4"[..], 7),
            ("/caf\u{e9}".as_bytes(), 1),
            (&b""[..], 7),
            (&b"new"[..], 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(total, all);
        assert_eq!(total.len(), 4);
    }

    #[test]
    fn a_spare_is_adopted_only_by_counts_that_are_still_empty_and_dropped_when_mostly_stale() {
        let mut spare = sample().seal();
        let mut counting = sample();
        counting.adopt(&mut spare);
        assert!(
            spare.is_some(),
            "counts already counting keep their own map"
        );

        // A map of many keys of which a chunk saw only one is not kept.
        let mut wide: Counts = (0..5000u32)
            .map(|i| i.to_string().into_bytes())
            .collect::<Vec<_>>()
            .iter()
            .map(|k| (&k[..], 1))
            .collect();
        let mut spare = wide.seal();
        let mut narrow = Counts::default();
        narrow.adopt(&mut spare);
        narrow.bump(b"7", 1);
        assert!(narrow.seal().is_none());
        assert_eq!(narrow.len(), 1);
        // Sealing twice, or sealing a decoded partial, hands back nothing.
        assert!(narrow.seal().is_none());
        assert_eq!(wide.len(), 5000);
    }

    #[test]
    fn a_key_listed_twice_counts_twice_and_bad_bytes_are_an_error() {
        // Two entries, the same key: 3 + 4.
        let mut bytes = vec![2];
        for count in [3u8, 4] {
            bytes.extend([1, b'k', count]);
        }
        let (flat, _): (Counts, usize) =
            bincode::serde::decode_from_slice(&bytes, config()).unwrap();
        let mut total = Counts::default();
        total.merge(flat);
        assert_eq!(total.totals().get(&b"k"[..]), Some(&7));
        assert_eq!(total.len(), 1);

        // Truncated in a key, and a length far beyond the input.
        for bad in [&[2, 1, b'k', 3, 5, b'a'][..], &[251, 0xff, 0xff, 1, 0]] {
            assert!(bincode::serde::decode_from_slice::<Counts, _>(bad, config()).is_err());
        }
    }

    proptest::proptest! {
        /// Decoding flat and merging gives the counts a map decode and
        /// merge would: into an empty total, into one sharing some keys,
        /// and when counted on afterwards.
        #[test]
        fn flat_decoding_merges_like_maps(
            earlier in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..3), 1u64..5), 0..20),
            later in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..3), 1u64..5), 0..20),
        ) {
            let build = |entries: &[(Vec<u8>, u64)]| -> Counts {
                entries.iter().map(|(k, v)| (&k[..], *v)).collect()
            };
            let (mut by_map, mut by_flat) = (build(&earlier), build(&earlier));
            let bytes = bincode::serde::encode_to_vec(build(&later), config()).unwrap();
            let (flat, used): (Counts, usize) =
                bincode::serde::decode_from_slice(&bytes, config()).unwrap();
            proptest::prop_assert_eq!(used, bytes.len());
            by_map.merge(build(&later));
            by_flat.merge(flat);
            proptest::prop_assert_eq!(&by_flat, &by_map);
            proptest::prop_assert_eq!(by_flat.len(), by_map.len());
            by_flat.bump(b"x", 1);
            by_map.bump(b"x", 1);
            proptest::prop_assert_eq!(by_flat, by_map);
        }
    }
}
