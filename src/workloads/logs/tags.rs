//! Fields that plugged-in stages attach to records ([`Tags`]), and the
//! custom dimensions the summary counts by them (docs/logs-workload.md
//! §4b): a stage added with [`LogsBuilder::before_metrics`](super::LogsBuilder::before_metrics)
//! tags records (`country = NL`), and
//! [`LogsBuilder::dimension`](super::LogsBuilder::dimension) declares a
//! tag name whose values `summary.json` counts under `dimensions`.
//!
//! The counts are per value: hits, bytes, 4xx and 5xx. A partial holds
//! every value seen (maps merged key by key, so any grouping of batches
//! gives the same counts); the summary keeps the `--top` most frequent.

use super::metrics::Overflow;
use super::stages::EnrichedBatch;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// No value in a column's line slot.
const UNSET: u32 = u32::MAX;

/// The tags of one batch: per tag name, a value per line (records are
/// found by [`ParsedRecord::index`](super::stages::ParsedRecord::index),
/// so a record keeps its tags whatever a later stage removes). Each
/// distinct value is stored once per batch.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    columns: Vec<Column>,
}

/// One tag name's values in a batch.
#[derive(Debug, Clone, Default)]
struct Column {
    name: String,
    /// The distinct values, by id.
    values: Vec<Box<str>>,
    ids: FxHashMap<Box<str>, u32>,
    /// Per line of the batch, the id of its value ([`UNSET`]: none).
    by_line: Vec<u32>,
}

impl Column {
    fn get(&self, line: u32) -> Option<&str> {
        let id = *self.by_line.get(line as usize)?;
        self.values.get(id as usize).map(|v| &**v)
    }
}

impl Tags {
    /// Sets the value of tag `name` on the line at `line` of the batch
    /// (replacing any earlier one).
    pub fn set(&mut self, name: &str, line: u32, value: &str) {
        let column = match self.columns.iter().position(|c| c.name == name) {
            Some(i) => &mut self.columns[i],
            None => {
                self.columns.push(Column {
                    name: name.to_string(),
                    ..Column::default()
                });
                self.columns.last_mut().expect("just pushed")
            }
        };
        let id = match column.ids.get(value) {
            Some(&id) => id,
            None => {
                let id = column.values.len() as u32;
                column.values.push(value.into());
                column.ids.insert(value.into(), id);
                id
            }
        };
        let at = line as usize;
        if column.by_line.len() <= at {
            column.by_line.resize(at + 1, UNSET);
        }
        column.by_line[at] = id;
    }

    /// The value of tag `name` on the line at `line`, if set.
    pub fn get(&self, name: &str, line: u32) -> Option<&str> {
        self.column(name)?.get(line)
    }

    /// The tag names set in this batch, in the order first set.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// What one value of a custom dimension adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueStats {
    /// Kept records with this value.
    pub hits: u64,
    /// Sum of their `bytes`.
    pub bytes: u128,
    /// Those with status 400–499.
    pub client_errors: u64,
    /// Those with status 500–599.
    pub server_errors: u64,
}

impl ValueStats {
    fn add(&mut self, status: u16, bytes: u64) {
        self.hits += 1;
        self.bytes += u128::from(bytes);
        match status {
            400..=499 => self.client_errors += 1,
            500..=599 => self.server_errors += 1,
            _ => {}
        }
    }

    fn checked_merge(&mut self, other: ValueStats) -> Option<()> {
        self.hits = self.hits.checked_add(other.hits)?;
        self.bytes = self.bytes.checked_add(other.bytes)?;
        self.client_errors = self.client_errors.checked_add(other.client_errors)?;
        self.server_errors = self.server_errors.checked_add(other.server_errors)?;
        Some(())
    }
}

/// The counts of the declared dimensions over a run of batches, per
/// dimension and value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomCounts {
    dims: BTreeMap<String, FxHashMap<Box<str>, ValueStats>>,
}

impl CustomCounts {
    /// Counts by the tags `names` (none: nothing counted, and the summary
    /// has no `dimensions` key).
    pub fn declare(names: &[String]) -> CustomCounts {
        CustomCounts {
            dims: names
                .iter()
                .map(|n| (n.clone(), FxHashMap::default()))
                .collect(),
        }
    }

    /// True when no dimension is declared.
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// Counts the kept records of `batch` by their tags.
    pub fn count(&mut self, batch: &EnrichedBatch) {
        let parsed = &batch.parsed;
        for (name, values) in &mut self.dims {
            let Some(column) = batch.tags.column(name) else {
                continue;
            };
            // Per value id of the batch first: one map update per value.
            let mut local = vec![ValueStats::default(); column.values.len()];
            for r in &parsed.records {
                if let Some(&id) = column.by_line.get(r.index as usize) {
                    if let Some(s) = local.get_mut(id as usize) {
                        s.add(r.status, r.bytes);
                    }
                }
            }
            for (value, stats) in column.values.iter().zip(local) {
                if stats.hits == 0 {
                    continue;
                }
                match values.get_mut(value) {
                    // Counted in this process: cannot overflow.
                    Some(mine) => {
                        let _ = mine.checked_merge(stats);
                    }
                    None => {
                        values.insert(value.clone(), stats);
                    }
                }
            }
        }
    }

    /// Folds `later` in (a sum that does not fit is refused or saturated
    /// per `overflow`).
    pub(crate) fn merge_with(
        &mut self,
        later: CustomCounts,
        overflow: Overflow,
    ) -> Result<(), String> {
        for (name, theirs) in later.dims {
            let mine = self.dims.entry(name).or_default();
            mine.reserve(theirs.len());
            for (value, stats) in theirs {
                let slot = mine.entry(value).or_default();
                let before = *slot;
                if slot.checked_merge(stats).is_none() {
                    match overflow {
                        Overflow::Refuse => {
                            return Err("custom dimensions: a sum overflows".to_string())
                        }
                        Overflow::Saturate => {
                            *slot = ValueStats {
                                hits: before.hits.saturating_add(stats.hits),
                                bytes: before.bytes.saturating_add(stats.bytes),
                                client_errors: before
                                    .client_errors
                                    .saturating_add(stats.client_errors),
                                server_errors: before
                                    .server_errors
                                    .saturating_add(stats.server_errors),
                            };
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a worker's counts of a chunk of `kept` kept records: no
    /// dimension counts more records than that, nor more errors than hits.
    pub fn check(&self, kept: u64) -> Result<(), String> {
        for (name, values) in &self.dims {
            let mut hits = 0u64;
            for s in values.values() {
                if s.client_errors
                    .checked_add(s.server_errors)
                    .is_none_or(|e| e > s.hits)
                {
                    return Err(format!("dimension {name:?}: more errors than hits"));
                }
                hits = hits.saturating_add(s.hits);
            }
            if hits > kept {
                return Err(format!(
                    "dimension {name:?} counts {hits} records, where the chunk keeps {kept}"
                ));
            }
        }
        Ok(())
    }

    /// Checks that every dimension counted is one of `declared` (a
    /// worker's partial names no other).
    pub fn check_declared(&self, declared: &[String]) -> Result<(), String> {
        match self.dims.keys().find(|n| !declared.contains(n)) {
            Some(name) => Err(format!(
                "it counts dimension {name:?}, which the pipeline does not declare"
            )),
            None => Ok(()),
        }
    }

    /// The `dimensions` key: per declared dimension, its `top` most
    /// frequent values (all for 0), hits descending, ties by value
    /// ascending; `None` when none is declared.
    pub fn summary(&self, top: usize) -> Option<BTreeMap<String, Vec<DimensionRow>>> {
        if self.dims.is_empty() {
            return None;
        }
        let rows = |values: &FxHashMap<Box<str>, ValueStats>| {
            let mut all: Vec<(&str, &ValueStats)> = values.iter().map(|(v, s)| (&**v, s)).collect();
            let order = |a: &(&str, &ValueStats), b: &(&str, &ValueStats)| {
                b.1.hits.cmp(&a.1.hits).then_with(|| a.0.cmp(b.0))
            };
            if top > 0 && all.len() > top {
                all.select_nth_unstable_by(top - 1, order);
                all.truncate(top);
            }
            all.sort_unstable_by(order);
            all.into_iter()
                .map(|(value, s)| DimensionRow {
                    client_errors: s.client_errors,
                    server_errors: s.server_errors,
                    bytes: s.bytes,
                    hits: s.hits,
                    value: value.to_string(),
                })
                .collect()
        };
        Some(
            self.dims
                .iter()
                .map(|(name, values)| (name.clone(), rows(values)))
                .collect(),
        )
    }
}

/// One value of a custom dimension in `summary.json` (fields in key
/// order, so serialization sorts keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionRow {
    /// Records with status 400–499.
    #[serde(rename = "4xx")]
    pub client_errors: u64,
    /// Records with status 500–599.
    #[serde(rename = "5xx")]
    pub server_errors: u64,
    /// Sum of their `bytes`.
    pub bytes: u128,
    /// Kept records with this value.
    pub hits: u64,
    /// The value the plugged-in stage attached.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::lines::batch::LineBatch;
    use crate::stage::{BatchInfo, Stage};
    use crate::workloads::logs::stages::{Enrich, Parse};

    fn batch(lines: &[&str]) -> EnrichedBatch {
        let mut b = LineBatch::new(1);
        for l in lines {
            b.push_line(l.as_bytes()).unwrap();
        }
        let info = BatchInfo {
            seq: 0,
            first_line: 1,
            records: 0,
        };
        let parsed = Parse::default().process(b, &info).unwrap();
        Enrich::default().process(parsed, &info).unwrap()
    }

    fn line(client: &str, status: u16, bytes: u64) -> String {
        format!("{client} - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.0\" {status} {bytes}")
    }

    /// Tags follow records (not positions) through a removal, values are
    /// counted per value with bytes and errors, and any grouping of
    /// batches merges to the same counts.
    #[test]
    fn counts_follow_records_and_merge_in_any_grouping() {
        let lines = [
            line("1.1.1.1", 200, 10),
            "garbage".to_string(),
            line("2.2.2.2", 404, 20),
            line("3.3.3.3", 503, 30),
            line("4.4.4.4", 200, 40),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut b = batch(&refs);
        for at in 0..b.parsed.records.len() {
            let client = b.parsed.bytes(b.parsed.records[at].client).to_vec();
            let value = if client.starts_with(b"1.") || client.starts_with(b"2.") {
                "NL"
            } else {
                "<script>"
            };
            b.tag(at, "country", value);
        }
        b.tag(0, "team", "web");
        // Dropping 4.4.4.4 must not move its tag onto another record.
        b.retain(|p, r, _| p.bytes(r.client) != b"4.4.4.4");
        assert_eq!(b.tag_of(2, "country"), Some("<script>"));
        let mut c = CustomCounts::declare(&["country".into(), "none".into()]);
        c.count(&b);
        let s = c.summary(10).unwrap();
        assert_eq!(s["none"], vec![]);
        let row = |v: &str, hits, bytes, c4, c5| DimensionRow {
            client_errors: c4,
            server_errors: c5,
            bytes,
            hits,
            value: v.into(),
        };
        assert_eq!(
            s["country"],
            vec![row("NL", 2, 30, 1, 0), row("<script>", 1, 30, 0, 1)]
        );
        assert_eq!(
            c.summary(1).unwrap()["country"],
            vec![row("NL", 2, 30, 1, 0)]
        );
        c.check(3).unwrap();
        assert!(c.check(2).is_err());
        c.check_declared(&["none".into(), "country".into()])
            .unwrap();
        assert!(c.check_declared(&["country".into()]).is_err());
        // Merged with itself, from either side, through the wire encoding.
        let config = bincode::config::standard();
        let wire = bincode::serde::encode_to_vec(&c, config).unwrap();
        let (back, _): (CustomCounts, usize) =
            bincode::serde::decode_from_slice(&wire, config).unwrap();
        let mut left = CustomCounts::declare(&["country".into()]);
        left.merge_with(c.clone(), Overflow::Refuse).unwrap();
        left.merge_with(back, Overflow::Refuse).unwrap();
        let mut right = c.clone();
        right.merge_with(c.clone(), Overflow::Refuse).unwrap();
        assert_eq!(left.summary(0), right.summary(0));
        assert_eq!(left.summary(0).unwrap()["country"][0].hits, 4);
        assert_eq!(CustomCounts::default().summary(10), None);
        // A hostile partial whose sums overflow is refused.
        let mut huge = c.clone();
        for v in huge.dims.get_mut("country").unwrap().values_mut() {
            v.hits = u64::MAX;
        }
        assert!(left.merge_with(huge, Overflow::Refuse).is_err());
    }

    /// One batch of `(value, status, bytes)` records, the value `None`
    /// for a record left untagged, counted under `country`.
    fn counted(records: &[(Option<u8>, u16, u64)]) -> CustomCounts {
        let lines: Vec<String> = records
            .iter()
            .map(|&(_, status, bytes)| line("10.0.0.1", status, bytes))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut b = batch(&refs);
        let values = ["NL", "DE", "", "<script>", "\u{e9}t\u{e9}"];
        for (at, &(v, _, _)) in records.iter().enumerate() {
            if let Some(v) = v {
                b.tag(at, "country", values[v as usize % values.len()]);
            }
        }
        let mut c = CustomCounts::declare(&["country".into()]);
        c.count(&b);
        c
    }

    proptest::proptest! {
        /// Records cut into batches anywhere, counted per batch and merged
        /// in any grouping (through the wire encoding, as a worker's
        /// would be), give the counts of one batch of them all.
        #[test]
        fn any_split_and_grouping_gives_the_same_counts(
            records in proptest::collection::vec(
                (proptest::option::of(0u8..5), proptest::sample::select(vec![200u16, 302, 404, 418, 500, 503]), 0u64..5000),
                0..40,
            ),
            cuts in proptest::collection::vec(0usize..40, 0..5),
            top in 0usize..4,
        ) {
            let whole = counted(&records).summary(top);
            let mut ends: Vec<usize> = cuts.into_iter().map(|c| c.min(records.len())).collect();
            ends.push(records.len());
            ends.sort_unstable();
            let mut parts = Vec::new();
            let mut from = 0;
            for end in ends {
                parts.push(counted(&records[from..end]));
                from = end;
            }
            let config = bincode::config::standard();
            let wire = |c: CustomCounts| {
                let bytes = bincode::serde::encode_to_vec(&c, config).unwrap();
                bincode::serde::decode_from_slice::<CustomCounts, _>(&bytes, config).unwrap().0
            };
            // Left to right, and right to left (each later part folded into
            // the merge of the ones before, as the coordinator does).
            let mut left = CustomCounts::declare(&["country".into()]);
            for p in parts.clone() {
                left.merge_with(wire(p), Overflow::Refuse).unwrap();
            }
            let mut right = CustomCounts::declare(&["country".into()]);
            for p in parts.into_iter().rev() {
                let mut p = wire(p);
                p.merge_with(right, Overflow::Refuse).unwrap();
                right = p;
            }
            proptest::prop_assert_eq!(&left.summary(top), &whole);
            proptest::prop_assert_eq!(&right.summary(top), &whole);
        }
    }
}
