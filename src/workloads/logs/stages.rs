//! The `logs` transforming stages: `parse` (preprocess: raw lines → parsed
//! records or rejects) and `enrich` (transform: status class, UTC hour, bot
//! flag). Parsed fields are kept as spans into the batch's own line buffer,
//! so a batch costs a few allocations whatever its size.

use super::batch::LineBatch;
use super::dims::{canonical_ipv6, family_id, first_forwarded, may_be_ipv6, NO_FAMILY};
use super::format::{Kind, LogFormat, Outcome};
use super::parse::{is_bot, parse_line};
use super::tags::Tags;
use super::zone::{LocalClock, Zone};
use super::ClientFrom;
use crate::stage::{BatchInfo, Records, Stage, StageError};
use rustc_hash::FxHashMap;

/// Where a text field lives: in the raw line buffer, or (for a field that
/// had invalid UTF-8 and was converted lossily, or a constant) in the
/// batch's text arena. Either way the bytes are valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

const IN_ARENA: u32 = 1 << 31;

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
    /// declared with [`LogsBuilder::dimension`](super::LogsBuilder::dimension)
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

/// The `parse` stage (docs/logs-workload.md §2; other formats:
/// docs/log-formats.md).
#[derive(Debug, Clone, Default)]
pub struct Parse {
    format: std::sync::Arc<LogFormat>,
    client_from: ClientFrom,
    /// IPv6 clients seen, and their canonical text when they are not
    /// written so (parsing and writing an address costs far more than
    /// looking it up; clients repeat).
    ipv6: FxHashMap<Box<[u8]>, Option<Box<str>>>,
}

impl Parse {
    /// Parses lines of `format`.
    pub fn new(format: LogFormat) -> Parse {
        Parse {
            format: std::sync::Arc::new(format),
            client_from: ClientFrom::Remote,
            ipv6: FxHashMap::default(),
        }
    }

    /// Takes the client from `from` (`--client-from`).
    pub fn with_client_from(mut self, from: ClientFrom) -> Parse {
        self.client_from = from;
        self
    }
}

/// Most IPv6 clients [`Parse`] remembers before it starts over.
const IPV6_CACHE_CAPACITY: usize = 4096;

/// The client's span: an IPv6 address in its RFC 5952 form (in the
/// arena when the line wrote it otherwise), anything else as [`text_span`].
fn client_span(
    field: &[u8],
    data: &[u8],
    arena: &mut Vec<u8>,
    ipv6: &mut FxHashMap<Box<[u8]>, Option<Box<str>>>,
) -> Result<Span, StageError> {
    // Most clients are not IPv6: no lookup for them.
    if !may_be_ipv6(field) {
        return text_span(field, data, arena);
    }
    if !ipv6.contains_key(field) {
        if ipv6.len() >= IPV6_CACHE_CAPACITY {
            ipv6.clear();
        }
        let canonical = canonical_ipv6(field).map(String::into_boxed_str);
        ipv6.insert(field.into(), canonical);
    }
    match ipv6.get(field).and_then(Option::as_deref) {
        Some(canonical) => text_span(canonical.as_bytes(), data, arena),
        None => text_span(field, data, arena),
    }
}

/// A raw field: a span into the line buffer when it lies there, else a
/// copy in the arena (a decoded JSON value, which is text).
fn raw_span(field: &[u8], data: &[u8], arena: &mut Vec<u8>) -> Result<Span, StageError> {
    let base = data.as_ptr() as usize;
    let at = field.as_ptr() as usize;
    if at >= base && at + field.len() <= base + data.len() {
        return Ok(Span {
            start: (at - base) as u32,
            len: field.len() as u32,
        });
    }
    text_span(field, data, arena)
}

/// Where a field sits: in the line buffer when it is valid UTF-8 text
/// borrowed from it; otherwise (invalid UTF-8, or a constant such as the `-`
/// of a malformed request) its lossy text is copied to the arena.
fn text_span(field: &[u8], data: &[u8], arena: &mut Vec<u8>) -> Result<Span, StageError> {
    let base = data.as_ptr() as usize;
    let at = field.as_ptr() as usize;
    let inside = !field.is_empty() && at >= base && at + field.len() <= base + data.len();
    // `is_ascii` first: it is much cheaper than full validation on short fields.
    if inside && (field.is_ascii() || std::str::from_utf8(field).is_ok()) {
        return Ok(Span {
            start: (at - base) as u32,
            len: field.len() as u32,
        });
    }
    let start = u32::try_from(arena.len())
        .ok()
        .filter(|s| s & IN_ARENA == 0)
        .ok_or_else(|| StageError::new("batch too large: text arena over 2 GiB"))?;
    arena.extend_from_slice(String::from_utf8_lossy(field).as_bytes());
    Ok(Span {
        start: start | IN_ARENA,
        len: (arena.len() - start as usize) as u32,
    })
}

impl Stage for Parse {
    type In = LineBatch;
    type Out = ParsedBatch;

    fn uses_record_numbers(&self) -> bool {
        false
    }

    fn process(&mut self, lines: LineBatch, _info: &BatchInfo) -> Result<ParsedBatch, StageError> {
        if lines.data.len() >= IN_ARENA as usize {
            return Err(StageError::new(
                "batch holds over 2 GiB of text (a single line that long cannot be parsed)",
            ));
        }
        let mut arena = Vec::new();
        let mut records = Vec::with_capacity(lines.len());
        let mut rejected = Vec::new();
        let mut directives = 0u32;
        let data = &lines.data[..];
        let mut start = 0usize;
        if self.format.kind == Kind::Combined {
            // The default format keeps its direct path: every field borrowed.
            let span = |f: &[u8]| Span {
                start: (f.as_ptr() as usize - data.as_ptr() as usize) as u32,
                len: f.len() as u32,
            };
            for (i, &end) in lines.ends.iter().enumerate() {
                let line = &data[start..end as usize];
                start = end as usize;
                let Some(p) = parse_line(line) else {
                    rejected.push(i as u32);
                    continue;
                };
                records.push(ParsedRecord {
                    index: i as u32,
                    client: client_span(p.client, data, &mut arena, &mut self.ipv6)?,
                    method: text_span(p.method, data, &mut arena)?,
                    path: text_span(p.path, data, &mut arena)?,
                    user_agent: p.user_agent.map(span),
                    referer: p.referer.map(span),
                    vhost: None,
                    latency_us: None,
                    status: p.status,
                    bytes: p.bytes,
                    utc: p.utc,
                });
            }
            return Ok(ParsedBatch {
                lines,
                arena,
                records,
                rejected,
                dropped: 0,
                directives: 0,
            });
        }
        for (i, &end) in lines.ends.iter().enumerate() {
            let line = &data[start..end as usize];
            start = end as usize;
            let p = match self.format.parse_line(line) {
                Outcome::Parsed(p) => p,
                Outcome::Rejected => {
                    rejected.push(i as u32);
                    continue;
                }
                Outcome::Directive => {
                    directives += 1;
                    continue;
                }
            };
            let raw = |f: Option<&[u8]>, arena: &mut Vec<u8>| {
                f.map(|f| raw_span(f, data, arena)).transpose()
            };
            let user_agent = raw(p.user_agent.as_deref(), &mut arena)?;
            let referer = raw(p.referer.as_deref(), &mut arena)?;
            let vhost = match p.vhost.as_deref() {
                Some(v) => Some(text_span(v, data, &mut arena)?),
                None => None,
            };
            let forwarded = match self.client_from {
                ClientFrom::ForwardedFor => p.forwarded_for.as_deref().and_then(first_forwarded),
                ClientFrom::Remote => None,
            };
            records.push(ParsedRecord {
                index: i as u32,
                client: client_span(
                    forwarded.unwrap_or(&p.client),
                    data,
                    &mut arena,
                    &mut self.ipv6,
                )?,
                method: text_span(&p.method, data, &mut arena)?,
                path: text_span(&p.path, data, &mut arena)?,
                user_agent,
                referer,
                vhost,
                latency_us: p.latency_us,
                status: p.status,
                bytes: p.bytes,
                utc: p.utc,
            });
        }
        Ok(ParsedBatch {
            lines,
            arena,
            records,
            rejected,
            dropped: 0,
            directives,
        })
    }
}

/// The `enrich` stage (docs/logs-workload.md §3).
///
/// User agents repeat heavily in real traffic, so the bot verdict is
/// memoized per distinct user agent (a bounded cache, cleared when full):
/// hashing a user agent costs a fraction of scanning it for four words.
#[derive(Debug, Clone)]
pub struct Enrich {
    /// Per user agent: bot or not, and its family.
    bot_cache: FxHashMap<Box<[u8]>, (bool, u32)>,
    /// The `--tz` clock, or why the zone given cannot be used.
    clock: Result<LocalClock, String>,
}

impl Default for Enrich {
    /// Hours in UTC.
    fn default() -> Self {
        Enrich {
            bot_cache: FxHashMap::default(),
            clock: Ok(LocalClock::new(Zone::Utc)),
        }
    }
}

/// Most user agents the bot cache holds before it starts over.
const BOT_CACHE_CAPACITY: usize = 4096;

impl Enrich {
    /// Hour buckets in `time_zone` (`--tz`: `UTC`, an IANA name or
    /// `±HH:MM`); a zone that cannot be read fails the stage's first batch.
    pub fn in_zone(time_zone: &str) -> Enrich {
        Enrich {
            clock: Zone::parse(time_zone).map(LocalClock::new),
            ..Enrich::default()
        }
    }

    /// Whether `user_agent` marks a bot, and its family.
    fn agent(&mut self, user_agent: &[u8]) -> (bool, u32) {
        if let Some(&known) = self.bot_cache.get(user_agent) {
            return known;
        }
        let known = (is_bot(user_agent), family_id(user_agent));
        if self.bot_cache.len() >= BOT_CACHE_CAPACITY {
            self.bot_cache.clear();
        }
        self.bot_cache.insert(user_agent.into(), known);
        known
    }
}

impl Stage for Enrich {
    type In = ParsedBatch;
    type Out = EnrichedBatch;

    fn uses_record_numbers(&self) -> bool {
        false
    }

    fn process(
        &mut self,
        parsed: ParsedBatch,
        _info: &BatchInfo,
    ) -> Result<EnrichedBatch, StageError> {
        let clock = self
            .clock
            .as_mut()
            .map_err(|e| StageError::new(e.clone()))?;
        let mut hours = Vec::with_capacity(parsed.records.len());
        for r in &parsed.records {
            hours.push(clock.local(r.utc).div_euclid(3600));
        }
        let enriched = parsed
            .records
            .iter()
            .zip(hours)
            .map(|(r, hour)| {
                let (bot, ua_family) = match r.user_agent {
                    Some(ua) => self.agent(parsed.bytes(ua)),
                    None => (false, NO_FAMILY),
                };
                Enrichment {
                    hour,
                    status_class: (r.status / 100) as u8,
                    bot,
                    ua_family,
                }
            })
            .collect();
        Ok(EnrichedBatch {
            parsed,
            enriched,
            tags: Tags::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lines: &[&[u8]]) -> LineBatch {
        let mut b = LineBatch::new(1);
        for l in lines {
            b.push_line(l).unwrap();
        }
        b
    }

    fn info() -> BatchInfo {
        BatchInfo {
            seq: 0,
            first_line: 1,
            records: 0,
        }
    }

    #[test]
    fn parse_keeps_valid_text_in_place_and_converts_invalid_utf8() {
        let lines = batch(&[
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /a?x=1 HTTP/1.0\" 200 2326 \"-\" \"Googlebot/2.1\"",
            b"garbage",
            b"h\xffst - - [10/Oct/2000:13:55:36 -0700] \"-\" 404 -",
        ]);
        let parsed = Parse::default().process(lines, &info()).unwrap();
        assert_eq!(parsed.rejected, vec![1]);
        assert_eq!(parsed.records.len(), 2);
        let (a, b) = (parsed.records[0], parsed.records[2 - 1]);
        assert_eq!(parsed.bytes(a.client), b"1.2.3.4");
        assert_eq!(parsed.bytes(a.path), b"/a");
        assert_eq!(parsed.bytes(a.method), b"GET");
        assert_eq!(b.index, 2);
        assert_eq!(parsed.bytes(b.client), "h\u{fffd}st".as_bytes());
        assert_eq!(parsed.bytes(b.method), b"-");
        assert_eq!(parsed.bytes(b.path), b"-");
        assert_eq!(b.user_agent, None);
        let enriched = Enrich::default().process(parsed, &info()).unwrap();
        assert!(enriched.enriched[0].bot);
        assert!(!enriched.enriched[1].bot);
        assert_eq!(enriched.enriched[0].status_class, 2);
        assert_eq!(enriched.enriched[1].status_class, 4);
        // 13:55:36 -0700 is 20:55:36 UTC.
        assert_eq!(enriched.enriched[0].hour.rem_euclid(24), 20);
    }
}
