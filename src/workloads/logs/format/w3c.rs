//! W3C extended log files (docs/log-formats.md, "w3c" and "cloudfront"):
//! IIS writes them with a `#Fields:` directive naming the fields, separated
//! by spaces; CloudFront with tabs and a fixed, documented field list.
//!
//! The `#Fields:` header is state of the file: a worker handed a byte range
//! in the middle of a file never sees it. So the fields are resolved before
//! the run ([`resolve_fields`], which reads the inputs' directives) and
//! travel with the job's parameters; every line is then read on its own.

use super::values::{self, Unit};
use super::{path_of, Fields, Outcome};
use crate::sources::lines::batch::LineBatch;
use crate::sources::lines::input::{InputSpec, LineReader};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// What a W3C field is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Not used.
    Ignore,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `c-ip`.
    Client,
    /// `cs-method`.
    Method,
    /// `cs-uri-stem`.
    Path,
    /// `sc-status`.
    Status,
    /// `sc-bytes`.
    Bytes,
    /// `cs(Referer)`.
    Referer,
    /// `cs(User-Agent)`.
    UserAgent,
    /// `cs-host`, `cs(Host)`.
    Vhost,
    /// `time-taken`.
    TimeTaken,
    /// `x-forwarded-for`, `cs(X-Forwarded-For)`.
    ForwardedFor,
}

fn role(name: &str) -> Role {
    match name.to_ascii_lowercase().as_str() {
        "date" => Role::Date,
        "time" => Role::Time,
        "c-ip" => Role::Client,
        "cs-method" => Role::Method,
        "cs-uri-stem" => Role::Path,
        "sc-status" => Role::Status,
        "sc-bytes" => Role::Bytes,
        "cs(referer)" | "cs(referrer)" => Role::Referer,
        "cs(user-agent)" => Role::UserAgent,
        "cs-host" | "cs(host)" => Role::Vhost,
        "time-taken" => Role::TimeTaken,
        "x-forwarded-for" | "cs(x-forwarded-for)" => Role::ForwardedFor,
        _ => Role::Ignore,
    }
}

impl W3c {
    /// True when a field is the X-Forwarded-For header.
    pub fn has_forwarded_for(&self) -> bool {
        self.roles.contains(&Role::ForwardedFor)
    }
}

/// A compiled W3C format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct W3c {
    /// The field names, in order (empty: still to be resolved from the input).
    pub fields: Vec<String>,
    roles: Vec<Role>,
    /// The separator: space (IIS) or tab (CloudFront).
    sep: u8,
    /// The unit of `time-taken`: milliseconds (IIS), seconds (CloudFront).
    time_taken: Unit,
}

/// The standard CloudFront log fields, in the documented order.
pub const CLOUDFRONT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type \
x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol \
ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port \
time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start \
sc-range-end";

/// Splits a field list (as after `#Fields:`), checking that it can be read.
pub fn split_fields(list: &str) -> Result<Vec<String>, String> {
    let fields: Vec<String> = list.split_ascii_whitespace().map(str::to_string).collect();
    let roles: Vec<Role> = fields.iter().map(|f| role(f)).collect();
    for (needed, name) in [
        (Role::Date, "date"),
        (Role::Time, "time"),
        (Role::Status, "sc-status"),
    ] {
        if !roles.contains(&needed) {
            return Err(format!(
                "w3c fields '{}' lack '{name}' (needed: date, time, sc-status)",
                fields.join(" ")
            ));
        }
    }
    Ok(fields)
}

impl W3c {
    /// IIS: space-separated, `time-taken` in milliseconds.
    pub fn iis(fields: Vec<String>) -> W3c {
        W3c {
            roles: fields.iter().map(|f| role(f)).collect(),
            fields,
            sep: b' ',
            time_taken: Unit::Millis,
        }
    }

    /// CloudFront: tab-separated, the fixed list, `time-taken` in seconds.
    pub fn cloudfront() -> W3c {
        let fields = split_fields(CLOUDFRONT_FIELDS).expect("the CloudFront list is valid");
        W3c {
            roles: fields.iter().map(|f| role(f)).collect(),
            fields,
            sep: b'\t',
            time_taken: Unit::Seconds,
        }
    }

    /// Reads one line: `#…` is a directive; otherwise one value per field
    /// (more values than fields are allowed and ignored: CloudFront appends
    /// fields over time; fewer reject the line).
    pub fn parse<'a>(&self, line: &'a [u8]) -> Outcome<'a> {
        if line.first() == Some(&b'#') {
            return Outcome::Directive;
        }
        self.fields(line).map_or(Outcome::Rejected, Outcome::Parsed)
    }

    fn fields<'a>(&self, line: &'a [u8]) -> Option<Fields<'a>> {
        if self.roles.is_empty() || line.is_empty() {
            return None;
        }
        let mut values = line.split(|&b| b == self.sep);
        let mut f = Fields::unknown();
        let (mut date, mut time) = (None, None);
        for &role in &self.roles {
            let v = values.next()?;
            if v.is_empty() {
                return None;
            }
            let present = (v != b"-").then_some(v);
            match role {
                Role::Ignore => {}
                Role::Date => date = Some(v),
                Role::Time => time = Some(v),
                Role::Client => f.client = Cow::Borrowed(v),
                Role::Method => f.method = Cow::Borrowed(v),
                Role::Path => f.path = Cow::Borrowed(path_of(v)),
                Role::Status => f.status = values::status(v)?,
                Role::Bytes => f.bytes = values::bytes(v)?,
                Role::Referer => f.referer = present.map(Cow::Borrowed),
                Role::UserAgent => f.user_agent = present.map(Cow::Borrowed),
                Role::Vhost => f.vhost = present.map(Cow::Borrowed),
                Role::TimeTaken => f.latency_us = values::duration_us(v, self.time_taken),
                Role::ForwardedFor => f.forwarded_for = present.map(Cow::Borrowed),
            }
        }
        f.utc = values::w3c_time(date?, time?)?;
        Some(f)
    }
}

/// The field list of the `#Fields:` directives of `inputs`: the run reads
/// every line with it. Inputs that name no fields, or two different lists,
/// are an error naming the input and line (the run cannot tell which
/// fields a worker's byte range is under). Standard input cannot be read
/// twice: give its fields as `w3c:FIELD FIELD …`.
pub fn resolve_fields(inputs: &[InputSpec]) -> Result<Vec<String>, String> {
    let mut found: Option<(Vec<String>, String)> = None;
    for spec in inputs {
        let path = match spec {
            InputSpec::File(p) | InputSpec::Follow(p) => p,
            InputSpec::Stdin => {
                return Err("--log-format w3c on standard input needs its fields: \
                     --log-format 'w3c:date time c-ip …' (from the #Fields: line)"
                    .into())
            }
        };
        let mut reader = LineReader::new(vec![InputSpec::File(path.clone())]);
        let mut batch = LineBatch::new(1);
        loop {
            batch.data.clear();
            batch.ends.clear();
            let first = reader.next_line();
            let n = reader
                .fill(&mut batch, 1 << 14, 1 << 24)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            for (k, line) in (0..batch.len()).map(|k| (k, batch.line(k))) {
                let Some(list) = line.strip_prefix(b"#Fields:") else {
                    continue;
                };
                let at = format!("input '{}' line {}", path.display(), first + k as u64);
                let list = String::from_utf8_lossy(list);
                let fields = split_fields(&list).map_err(|e| format!("{at}: {e}"))?;
                match &found {
                    None => found = Some((fields, at)),
                    Some((known, _)) if *known == fields => {}
                    Some((known, where_)) => {
                        return Err(format!(
                            "{at}: #Fields: '{}' differs from '{}' ({where_}); \
                             a run reads one field list: split the input there",
                            fields.join(" "),
                            known.join(" ")
                        ))
                    }
                }
            }
        }
    }
    found
        .map(|(f, _)| f)
        .ok_or_else(|| "no #Fields: directive in the input: give the fields as --log-format 'w3c:date time c-ip …'".into())
}
