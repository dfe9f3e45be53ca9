//! What `parse` makes of a batch: [`ParsedBatch`], its [`ParsedRecord`]s
//! and the [`Span`]s that locate their text in the batch's line buffer or
//! text arena.

use crate::sources::lines::batch::LineBatch;
use crate::stage::Records;

/// Where a text field lives: in the raw line buffer, or (for a field that
/// had invalid UTF-8 and was converted lossily, or a constant) in the
/// batch's text arena. Either way the bytes are valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub(super) start: u32,
    pub(super) len: u32,
}

/// The bit of [`Span`]'s start that places it in the arena.
pub(super) const IN_ARENA: u32 = 1 << 31;

/// One parsed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedRecord {
    /// Index of the line within the batch.
    pub index: u32,
    /// The client, as text.
    pub client: Span,
    /// The method, as text (`-` for a malformed request).
    pub method: Span,
    /// The path, as text (`-` for a malformed request).
    pub path: Span,
    /// The raw user agent, when present.
    pub user_agent: Option<Span>,
    /// The raw referer, when present.
    pub referer: Option<Span>,
    /// The virtual host, as text, when the format has one.
    pub vhost: Option<Span>,
    /// The request's duration in microseconds, when the format has one.
    pub latency_us: Option<u64>,
    /// The status code (0–999).
    pub status: u16,
    /// The response size.
    pub bytes: u64,
    /// The time, as Unix seconds in UTC.
    pub utc: i64,
}

/// A batch after `parse`: the raw lines, the parsed records and the
/// indices of rejected lines.
#[derive(Debug, Clone, Default)]
pub struct ParsedBatch {
    /// The raw lines (fields point into them).
    pub lines: LineBatch,
    /// Lossy-converted texts for fields that were not valid UTF-8.
    pub arena: Vec<u8>,
    /// Parsed lines, in input order.
    pub records: Vec<ParsedRecord>,
    /// Indices (within the batch) of rejected lines, ascending.
    pub rejected: Vec<u32>,
    /// Parsed records a plugged-in stage removed (see [`retain`](Self::retain)).
    pub dropped: u32,
    /// Lines that were format directives (W3C `#Fields:` …), neither
    /// parsed nor rejected.
    pub directives: u32,
}

impl ParsedBatch {
    /// Keeps the parsed records for which `keep` is true, counting the
    /// others as dropped (they then count in `parsed` and `dropped`, not
    /// in the other metrics, and are not written to `records.jsonl`).
    pub fn retain(&mut self, mut keep: impl FnMut(&ParsedBatch, &ParsedRecord) -> bool) {
        let mut records = std::mem::take(&mut self.records);
        let before = records.len();
        records.retain(|r| keep(self, r));
        self.dropped += (before - records.len()) as u32;
        self.records = records;
    }

    /// The bytes a span points to. Text spans are valid UTF-8.
    pub fn bytes(&self, span: Span) -> &[u8] {
        let (buf, start) = if span.start & IN_ARENA != 0 {
            (&self.arena, (span.start & !IN_ARENA) as usize)
        } else {
            (&self.lines.data, span.start as usize)
        };
        &buf[start..start + span.len as usize]
    }
}

impl Records for ParsedBatch {
    fn record_count(&self) -> usize {
        self.lines.len()
    }
}
