//! The `logs` aggregate (WORKLOAD.md "Metrics"): [`LogsPartial`], the
//! mergeable partial, and [`Summary`], the final `summary.json`. With
//! `--emit-records` the partial also carries each batch's rendered
//! `records.jsonl` and `rejects.txt` lines, which the sink streams out.

use super::pool::BatchPool;
use super::render::{write_record, write_reject};
use super::stages::EnrichedBatch;
use super::time::write_hour_bucket;
use crate::stage::{Aggregate, BatchInfo, StageError};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many rejected line numbers `rejected_samples` keeps.
pub const REJECTED_SAMPLES: usize = 5;
/// How many entries `top_paths` and `top_clients` keep.
pub const TOP_N: usize = 10;

/// Counts over a run of consecutive batches. Text keys are valid UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsPartial {
    /// Lines read.
    pub lines: u64,
    /// Lines parsed.
    pub parsed: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// First rejected line numbers, ascending, at most five.
    pub rejected_samples: Vec<u64>,
    /// Sum of bytes over parsed lines (u128: a sum of u64 values can overflow u64).
    pub bytes: u128,
    /// Parsed lines from bots.
    pub bots: u64,
    /// Count per status code, indexed by code (empty until the first parsed line).
    pub status: Vec<u64>,
    /// Bytes per status class, indexed by the class digit.
    pub status_class_bytes: [u128; 10],
    /// Count per method.
    #[serde(with = "byte_keys")]
    pub methods: FxHashMap<Box<[u8]>, u64>,
    /// Count per path.
    #[serde(with = "byte_keys")]
    pub paths: FxHashMap<Box<[u8]>, u64>,
    /// Count per client.
    #[serde(with = "byte_keys")]
    pub clients: FxHashMap<Box<[u8]>, u64>,
    /// Count per hour (hours since the Unix epoch).
    pub hours: FxHashMap<i64, u64>,
    /// Rendered `records.jsonl` lines not yet taken by the sink.
    #[serde(with = "serde_bytes")]
    pub records_out: Vec<u8>,
    /// Rendered `rejects.txt` lines not yet taken by the sink.
    #[serde(with = "serde_bytes")]
    pub rejects_out: Vec<u8>,
}

/// Serde for the text-keyed count maps: keys go as byte strings, one copy
/// each. In bincode this is the very encoding a `Box<[u8]>` gets by default
/// (a length, then the bytes), but the default walks it one `u8` call at a
/// time, which made decoding partials a large part of the coordinator's work.
mod byte_keys {
    use rustc_hash::FxHashMap;
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};
    use std::fmt;

    type Map = FxHashMap<Box<[u8]>, u64>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter().map(|(k, v)| (Bytes::new(k), v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Map;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of byte strings to counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Map, A::Error> {
                // The announced size is untrusted input: cap what it reserves.
                let hint = access.size_hint().unwrap_or(0).min(1 << 16);
                let mut map = Map::with_capacity_and_hasher(hint, Default::default());
                while let Some((Key(k), v)) = access.next_entry::<Key, u64>()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }
        d.deserialize_map(MapVisitor)
    }

    /// A key read with `deserialize_bytes`: from a slice (as the coordinator
    /// decodes partials) it is borrowed and copied once into its box, where
    /// a `ByteBuf` would go through a zero-filled vector first.
    struct Key(Box<[u8]>);

    impl<'de> serde::Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Key, E> {
                    Ok(Key(v.into()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Key, E> {
                    Ok(Key(v.into_boxed_slice()))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Key, A::Error> {
                    let buf: ByteBuf = serde::Deserialize::deserialize(
                        serde::de::value::SeqAccessDeserializer::new(seq),
                    )?;
                    Ok(Key(buf.into_vec().into_boxed_slice()))
                }
            }
            d.deserialize_bytes(KeyVisitor)
        }
    }
}

fn bump(map: &mut FxHashMap<Box<[u8]>, u64>, key: &[u8], by: u64) {
    // Look up by slice first so that known keys cost no allocation.
    if let Some(count) = map.get_mut(key) {
        *count += by;
    } else {
        map.insert(key.into(), by);
    }
}

impl LogsPartial {
    /// Folds `later` (the batches after these) into `self`.
    pub fn merge(&mut self, later: LogsPartial) {
        self.lines += later.lines;
        self.parsed += later.parsed;
        self.rejected += later.rejected;
        let room = REJECTED_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(later.rejected_samples.into_iter().take(room));
        self.bytes += later.bytes;
        self.bots += later.bots;
        if self.status.len() < later.status.len() {
            self.status.resize(later.status.len(), 0);
        }
        for (mine, theirs) in self.status.iter_mut().zip(later.status) {
            *mine += theirs;
        }
        for (mine, theirs) in self
            .status_class_bytes
            .iter_mut()
            .zip(later.status_class_bytes)
        {
            *mine += theirs;
        }
        for (map, other) in [
            (&mut self.methods, later.methods),
            (&mut self.paths, later.paths),
            (&mut self.clients, later.clients),
        ] {
            if map.is_empty() {
                *map = other;
                continue;
            }
            for (k, v) in other {
                *map.entry(k).or_insert(0) += v;
            }
        }
        for (k, v) in later.hours {
            *self.hours.entry(k).or_insert(0) += v;
        }
        self.records_out.extend_from_slice(&later.records_out);
        self.rejects_out.extend_from_slice(&later.rejects_out);
    }

    /// The final summary.
    pub fn summary(&self) -> Summary {
        let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let mut status = BTreeMap::new();
        for (code, &n) in self.status.iter().enumerate() {
            if n > 0 {
                status.insert(format!("{code:03}"), n);
            }
        }
        let mut status_class_bytes = BTreeMap::new();
        for class in 0..10 {
            let seen = self
                .status
                .iter()
                .enumerate()
                .any(|(c, &n)| n > 0 && c / 100 == class);
            if seen {
                status_class_bytes.insert(format!("{class}xx"), self.status_class_bytes[class]);
            }
        }
        let mut hours = BTreeMap::new();
        let mut bucket = Vec::with_capacity(16);
        for (&h, &n) in &self.hours {
            bucket.clear();
            write_hour_bucket(h * 3600, &mut bucket);
            hours.insert(text(&bucket), n);
        }
        Summary {
            bots: self.bots,
            bytes: self.bytes,
            clients: self.clients.len() as u64,
            hours,
            lines: self.lines,
            methods: self.methods.iter().map(|(k, &v)| (text(k), v)).collect(),
            parsed: self.parsed,
            rejected: self.rejected,
            rejected_samples: self.rejected_samples.clone(),
            status,
            status_class_bytes,
            top_clients: top(&self.clients),
            top_paths: top(&self.paths),
        }
    }
}

/// The `TOP_N` most frequent keys, count descending, ties by key ascending
/// (byte order of UTF-8 is code point order).
fn top(map: &FxHashMap<Box<[u8]>, u64>) -> Vec<(String, u64)> {
    let mut all: Vec<(&[u8], u64)> = map.iter().map(|(k, &v)| (&k[..], v)).collect();
    let order = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
    if all.len() > TOP_N {
        all.select_nth_unstable_by(TOP_N - 1, order);
        all.truncate(TOP_N);
    }
    all.sort_unstable_by(order);
    all.into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v))
        .collect()
}

/// `summary.json`: fields in key order, so serialization sorts keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Parsed lines whose user agent marks a bot.
    pub bots: u64,
    /// Sum of bytes over parsed lines.
    pub bytes: u128,
    /// Distinct clients.
    pub clients: u64,
    /// Count per UTC hour bucket `YYYY-MM-DDTHH`.
    pub hours: BTreeMap<String, u64>,
    /// Lines read.
    pub lines: u64,
    /// Count per method.
    pub methods: BTreeMap<String, u64>,
    /// Lines parsed.
    pub parsed: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// First five rejected line numbers.
    pub rejected_samples: Vec<u64>,
    /// Count per status code.
    pub status: BTreeMap<String, u64>,
    /// Bytes per status class.
    pub status_class_bytes: BTreeMap<String, u128>,
    /// Ten most frequent clients.
    pub top_clients: Vec<(String, u64)>,
    /// Ten most frequent paths.
    pub top_paths: Vec<(String, u64)>,
}

impl Summary {
    /// The JSON text written to `summary.json` (one line, sorted keys, LF).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The `metrics` aggregate.
#[derive(Debug, Clone, Default)]
pub struct LogsMetrics {
    /// Also render `records.jsonl` and `rejects.txt` lines.
    pub emit_records: bool,
    /// Where the line buffers go back once counted (shared with the source).
    pub pool: BatchPool,
}

impl Aggregate for LogsMetrics {
    type In = EnrichedBatch;
    type Partial = LogsPartial;

    fn empty(&self) -> LogsPartial {
        LogsPartial::default()
    }

    fn add(
        &mut self,
        acc: &mut LogsPartial,
        batch: EnrichedBatch,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        let parsed = &batch.parsed;
        let first_line = info.first_line;
        acc.lines += parsed.lines.len() as u64;
        acc.rejected += parsed.rejected.len() as u64;
        for &i in &parsed.rejected {
            let line_no = first_line + i as u64;
            if acc.rejected_samples.len() < REJECTED_SAMPLES {
                acc.rejected_samples.push(line_no);
            }
            if self.emit_records {
                write_reject(&mut acc.rejects_out, line_no, parsed.lines.line(i as usize));
            }
        }
        if acc.status.is_empty() && !parsed.records.is_empty() {
            acc.status = vec![0; 1000];
        }
        // Consecutive lines mostly share an hour: count runs before touching the map.
        let mut hour_run: Option<(i64, u64)> = None;
        for (r, e) in parsed.records.iter().zip(&batch.enriched) {
            acc.parsed += 1;
            acc.bytes += r.bytes as u128;
            acc.bots += e.bot as u64;
            acc.status[r.status as usize % 1000] += 1;
            acc.status_class_bytes[e.status_class as usize % 10] += r.bytes as u128;
            bump(&mut acc.methods, parsed.bytes(r.method), 1);
            bump(&mut acc.paths, parsed.bytes(r.path), 1);
            bump(&mut acc.clients, parsed.bytes(r.client), 1);
            hour_run = match hour_run {
                Some((h, n)) if h == e.hour => Some((h, n + 1)),
                Some((h, n)) => {
                    *acc.hours.entry(h).or_insert(0) += n;
                    Some((e.hour, 1))
                }
                None => Some((e.hour, 1)),
            };
            if self.emit_records {
                write_record(
                    &mut acc.records_out,
                    first_line + r.index as u64,
                    parsed,
                    r,
                    e,
                );
            }
        }
        if let Some((h, n)) = hour_run {
            *acc.hours.entry(h).or_insert(0) += n;
        }
        self.pool.give(batch.parsed.lines);
        Ok(())
    }

    fn merge(&self, acc: &mut LogsPartial, later: LogsPartial) {
        acc.merge(later);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_round_trip_with_byte_keys_in_the_default_encoding() {
        let mut p = LogsPartial {
            lines: 3,
            ..LogsPartial::default()
        };
        bump(&mut p.clients, b"1.2.3.4", 2);
        bump(&mut p.paths, "/caf\u{e9}".as_bytes(), 1);
        bump(&mut p.methods, b"", 7);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&p, config).unwrap();
        let (back, used): (LogsPartial, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!((back, used), (p.clone(), bytes.len()));

        // The keys are encoded exactly as a plain `Box<[u8]>` would be.
        let plain: Vec<(Box<[u8]>, u64)> = p.clients.into_iter().collect();
        let mut s = bincode::serde::encode_to_vec(plain.len() as u64, config).unwrap();
        for (k, v) in &plain {
            s.extend(bincode::serde::encode_to_vec(k, config).unwrap());
            s.extend(bincode::serde::encode_to_vec(v, config).unwrap());
        }
        let map: FxHashMap<Box<[u8]>, u64> = plain.into_iter().collect();
        assert_eq!(
            bincode::serde::encode_to_vec(Wrapper(&map), config).unwrap(),
            s
        );
    }

    struct Wrapper<'a>(&'a FxHashMap<Box<[u8]>, u64>);

    impl Serialize for Wrapper<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            byte_keys::serialize(self.0, s)
        }
    }
}
