//! What `enrich` adds to a parsed batch: one [`Enrichment`] per record, and
//! the fields plugged-in stages attach ([`EnrichedBatch`]).

use super::parsed::{ParsedBatch, ParsedRecord};
use crate::stage::Records;
use crate::workloads::logs::tags::Tags;

/// Per-record results of `enrich`, parallel to `ParsedBatch::records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enrichment {
    /// Hours since the Unix epoch of the `--tz` wall clock (UTC by
    /// default), floored.
    pub hour: i64,
    /// First digit of the status (the `2` of `2xx`).
    pub status_class: u8,
    /// The user agent marks a bot.
    pub bot: bool,
    /// The user agent's family (browser and OS, or crawler), as a number
    /// of this process's table of families; `u32::MAX` without a user
    /// agent.
    pub ua_family: u32,
}

/// A batch after `enrich`.
#[derive(Debug, Clone, Default)]
pub struct EnrichedBatch {
    /// The parsed batch.
    pub parsed: ParsedBatch,
    /// One entry per parsed record.
    pub enriched: Vec<Enrichment>,
    /// Fields plugged-in stages attached to records (see [`tag`](Self::tag)).
    pub tags: Tags,
}

impl EnrichedBatch {
    /// Attaches the field `name = value` to the record at position `at`
    /// of `parsed.records` (replacing an earlier value of `name`). A name
    /// declared with [`LogsBuilder::dimension`](crate::workloads::logs::LogsBuilder::dimension)
    /// is counted per value in `summary.json`'s `dimensions`; any other
    /// is only for later stages ([`tag_of`](Self::tag_of)). Panics when
    /// `at` is not a record's position.
    pub fn tag(&mut self, at: usize, name: &str, value: &str) {
        let line = self.parsed.records[at].index;
        self.tags.set(name, line, value);
    }

    /// The value of field `name` of the record at position `at`, if a
    /// stage attached one.
    pub fn tag_of(&self, at: usize, name: &str) -> Option<&str> {
        let line = self.parsed.records.get(at)?.index;
        self.tags.get(name, line)
    }

    /// Keeps the records for which `keep` is true, counting the others as
    /// dropped (see [`ParsedBatch::retain`]).
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&ParsedBatch, &ParsedRecord, &Enrichment) -> bool,
    ) {
        let parsed = &mut self.parsed;
        let mut records = std::mem::take(&mut parsed.records);
        let mut enriched = std::mem::take(&mut self.enriched);
        let before = records.len();
        let mut flags = Vec::with_capacity(before);
        for (r, e) in records.iter().zip(&enriched) {
            flags.push(keep(parsed, r, e));
        }
        let mut it = flags.iter();
        records.retain(|_| *it.next().unwrap_or(&true));
        let mut it = flags.iter();
        enriched.retain(|_| *it.next().unwrap_or(&true));
        parsed.dropped += (before - records.len()) as u32;
        parsed.records = records;
        self.enriched = enriched;
    }
}

impl Records for EnrichedBatch {
    fn record_count(&self) -> usize {
        self.parsed.record_count()
    }
}
