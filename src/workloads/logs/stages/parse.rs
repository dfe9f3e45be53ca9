//! The `parse` stage: raw lines to [`ParsedRecord`]s or rejects, each text
//! field a [`Span`] into the line buffer, or into the arena when it had to
//! be converted or canonicalized.

use super::parsed::{ParsedBatch, ParsedRecord, Span, IN_ARENA};
use crate::sources::lines::batch::LineBatch;
use crate::stage::{BatchInfo, Stage, StageError};
use crate::workloads::logs::dims::{canonical_ipv6, first_forwarded, may_be_ipv6};
use crate::workloads::logs::format::{Kind, LogFormat, Outcome};
use crate::workloads::logs::parse::parse_line;
use crate::workloads::logs::ClientFrom;
use rustc_hash::FxHashMap;

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
