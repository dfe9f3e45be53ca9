//! [`Counts`]: how often each byte-string key was seen (methods, paths,
//! clients), in the two shapes a partial takes. A partial being built counts
//! in a hash map. A partial decoded from a worker's bytes is only ever
//! merged into the coordinator's total, so it keeps its entries flat — the
//! keys in one buffer, no per-key allocation, no hashing — and merging
//! looks each key up once, allocating only for keys the total lacks.
//! Before, decoding built a map per partial (a box and an insert per key)
//! and merging hashed every key again: most of the coordinator's work
//! besides finding line ends.

use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::Bytes;
use std::fmt;

/// Counts per byte-string key.
#[derive(Debug, Clone)]
pub struct Counts(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Keys counted as they come.
    Map(FxHashMap<Box<[u8]>, u64>),
    /// Decoded entries: `keys[ends[i-1]..ends[i]]` has count `counts[i]`.
    /// A key listed twice counts twice.
    Flat {
        keys: Vec<u8>,
        ends: Vec<usize>,
        counts: Vec<u64>,
    },
}

impl Default for Counts {
    fn default() -> Self {
        Counts(Repr::Map(FxHashMap::default()))
    }
}

impl Counts {
    /// Adds `by` to `key`'s count.
    #[inline]
    pub fn bump(&mut self, key: &[u8], by: u64) {
        // The hot path of every mode: kept small enough to inline.
        match &mut self.0 {
            Repr::Map(map) => bump_map(map, key, by),
            Repr::Flat { .. } => self.bump_flat(key, by),
        }
    }

    #[cold]
    fn bump_flat(&mut self, key: &[u8], by: u64) {
        bump_map(self.map_mut(), key, by);
    }

    /// Number of entries (distinct keys, unless decoded bytes listed one twice).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Map(map) => map.len(),
            Repr::Flat { counts, .. } => counts.len(),
        }
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        let map = match &self.0 {
            Repr::Map(map) => Some(map.iter().map(|(k, &v)| (&k[..], v))),
            Repr::Flat { .. } => None,
        };
        let flat = match &self.0 {
            Repr::Flat { keys, ends, counts } => Some(ends.iter().zip(counts).scan(
                0,
                move |start, (&end, &count)| {
                    let key = &keys[*start..end];
                    *start = end;
                    Some((key, count))
                },
            )),
            Repr::Map(_) => None,
        };
        map.into_iter().flatten().chain(flat.into_iter().flatten())
    }

    /// Folds `later`'s counts into these.
    pub fn merge(&mut self, later: Counts) {
        match later.0 {
            Repr::Map(other) if self.is_empty() => self.0 = Repr::Map(other),
            Repr::Map(other) => {
                let map = self.map_mut();
                for (k, v) in other {
                    *map.entry(k).or_insert(0) += v;
                }
            }
            Repr::Flat { .. } => {
                let map = self.map_mut();
                map.reserve(later.len().saturating_sub(map.len()));
                for (key, count) in later.iter() {
                    bump_map(map, key, count);
                }
            }
        }
    }

    /// The counts as a map, turning flat entries into one first.
    pub(crate) fn map_mut(&mut self) -> &mut FxHashMap<Box<[u8]>, u64> {
        if let Repr::Flat { .. } = self.0 {
            let mut map = FxHashMap::default();
            map.reserve(self.len());
            for (key, count) in self.iter() {
                *map.entry(Box::from(key)).or_insert(0) += count;
            }
            self.0 = Repr::Map(map);
        }
        match &mut self.0 {
            Repr::Map(map) => map,
            Repr::Flat { .. } => unreachable!("just turned into a map"),
        }
    }

    /// Key → total count, whatever the shape.
    fn totals(&self) -> FxHashMap<&[u8], u64> {
        let mut totals = FxHashMap::default();
        for (key, count) in self.iter() {
            *totals.entry(key).or_insert(0) += count;
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
        // The announced size is untrusted input: cap what it reserves.
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
        Ok(Counts(Repr::Flat { keys, ends, counts }))
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
        assert!(matches!(flat.0, Repr::Flat { .. }));
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
        assert!(matches!(total.0, Repr::Map(_)));

        // Into an empty total, and counted on after that.
        let mut empty = Counts::default();
        empty.merge(flat);
        empty.bump(b"", 1);
        assert_eq!(empty.totals().get(&b""[..]), Some(&8));
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
}
