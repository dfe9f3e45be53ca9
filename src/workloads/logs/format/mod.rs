//! `--log-format`: the line formats the `logs` workload reads
//! (docs/log-formats.md). A [`LogFormat`] is compiled once, from a built-in
//! name or from the server's own configuration line, and travels with the
//! job's parameters, so every mode and every worker parses alike.
//!
//! `combined` is the contract's format (docs/logs-workload.md §2), parsed by
//! the workload's own hand-written parser; the others go through one of
//! three engines: a template of literals and fields (Common, Apache
//! `LogFormat`, nginx `log_format`, vhost, Traefik, ALB), W3C extended
//! fields (IIS, CloudFront) or JSON lines (Caddy and any mapping).

internal_modules!(json, template, values, w3c);

use crate::sources::InputSpec;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The fields a format gives a parsed line. Borrowed from the line, except
/// where a JSON value had to be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The client address or host name.
    pub client: Cow<'a, [u8]>,
    /// The method, `-` when unknown.
    pub method: Cow<'a, [u8]>,
    /// The path (target up to its first `?`), `-` when unknown.
    pub path: Cow<'a, [u8]>,
    /// The status code (0–999).
    pub status: u16,
    /// Response size in bytes.
    pub bytes: u64,
    /// The referer, when the format has one.
    pub referer: Option<Cow<'a, [u8]>>,
    /// The user agent, when the format has one.
    pub user_agent: Option<Cow<'a, [u8]>>,
    /// The virtual host, when the format has one.
    pub vhost: Option<Cow<'a, [u8]>>,
    /// The time, Unix seconds in UTC.
    pub utc: i64,
    /// The request's duration in microseconds, when the format has one.
    pub latency_us: Option<u64>,
    /// The raw X-Forwarded-For value, when the format has one.
    pub forwarded_for: Option<Cow<'a, [u8]>>,
}

impl Fields<'_> {
    /// The fields of a line a format has not filled in yet: `-` for the
    /// client, method and path, zero for the numbers, nothing optional.
    pub fn unknown() -> Self {
        Fields {
            client: Cow::Borrowed(b"-"),
            method: Cow::Borrowed(b"-"),
            path: Cow::Borrowed(b"-"),
            status: 0,
            bytes: 0,
            referer: None,
            user_agent: None,
            vhost: None,
            utc: 0,
            latency_us: None,
            forwarded_for: None,
        }
    }
}

/// What a format makes of one line.
// Not boxed: a line's fields are built and taken apart at once, and a box
// per parsed line would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A request.
    Parsed(Fields<'a>),
    /// Not a line of this format.
    Rejected,
    /// A W3C directive (`#Fields:`, `#Version:` …): neither a request nor
    /// an error, counted as `directives`.
    Directive,
}

/// How lines are read: the name the user gave and the compiled rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFormat {
    /// The name as given on the command line (`combined`, `w3c`,
    /// `nginx:…`), for messages.
    pub name: String,
    /// The compiled rules.
    pub(crate) kind: Kind,
}

/// The engine and its compiled rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// docs/logs-workload.md §2, unchanged.
    Combined,
    /// Literals and fields in a row.
    Template(template::Template),
    /// W3C extended fields.
    W3c(w3c::W3c),
    /// JSON objects, one per line.
    Json(json::JsonMap),
}

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat {
            name: "combined".into(),
            kind: Kind::Combined,
        }
    }
}

/// The built-in names, in the order `--help` and messages list them.
pub const BUILT_IN: &[&str] = &[
    "combined",
    "common",
    "vcombined",
    "w3c",
    "alb",
    "cloudfront",
    "caddy",
    "traefik",
    "json",
];

impl LogFormat {
    /// Reads `--log-format`: a built-in name, `nginx:LOG_FORMAT`,
    /// `apache:LOGFORMAT`, `json:KEY=PATH,…`, `caddy:KEY=PATH,…` or
    /// `w3c:FIELD FIELD …`. The message of an error says what was expected.
    pub fn parse(arg: &str) -> Result<LogFormat, String> {
        let (head, rest) = match arg.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (arg, None),
        };
        let kind = match (head, rest) {
            ("combined", None) => Kind::Combined,
            ("common", None) => Kind::Template(template::apache(template::COMMON)?),
            ("vcombined", None) => Kind::Template(template::apache(template::VCOMBINED)?),
            ("traefik", None) => Kind::Template(template::traefik()),
            ("alb", None) => Kind::Template(template::alb()),
            ("w3c", None) => Kind::W3c(w3c::W3c::iis(Vec::new())),
            ("w3c", Some(fields)) => Kind::W3c(w3c::W3c::iis(w3c::split_fields(fields)?)),
            ("cloudfront", None) => Kind::W3c(w3c::W3c::cloudfront()),
            ("json", r) => Kind::Json(json::JsonMap::default_mapping().with(r.unwrap_or(""))?),
            ("caddy", r) => Kind::Json(json::JsonMap::caddy().with(r.unwrap_or(""))?),
            ("nginx", Some(line)) => Kind::Template(template::nginx(line)?),
            ("apache", Some(line)) => Kind::Template(template::apache(line)?),
            _ => {
                return Err(format!(
                    "unknown log format '{arg}': expected one of {}, or nginx:'LOG_FORMAT', \
                     apache:'LOGFORMAT', json:KEY=PATH,…, w3c:FIELD …",
                    BUILT_IN.join(", ")
                ))
            }
        };
        Ok(LogFormat {
            name: arg.to_string(),
            kind,
        })
    }

    /// The built-in format called `name` (one of [`BUILT_IN`]).
    pub fn built_in(name: &str) -> Option<LogFormat> {
        BUILT_IN
            .contains(&name)
            .then(|| LogFormat::parse(name).ok())
            .flatten()
    }

    /// True when lines of this format can carry an X-Forwarded-For field
    /// (`--client-from x-forwarded-for`): a template or W3C field list
    /// naming it, a W3C format whose fields come from the input's
    /// `#Fields:` header (known only then), or a JSON mapping.
    pub fn has_forwarded_for(&self) -> bool {
        match &self.kind {
            Kind::Combined => false,
            Kind::Template(t) => t.has_forwarded_for(),
            Kind::W3c(w) => w.fields.is_empty() || w.has_forwarded_for(),
            Kind::Json(j) => j.has_forwarded_for(),
        }
    }

    /// A W3C format whose fields still come from the input's `#Fields:`
    /// header (see [`with_fields_of`](Self::with_fields_of)).
    pub fn needs_w3c_fields(&self) -> bool {
        matches!(&self.kind, Kind::W3c(w) if w.fields.is_empty())
    }

    /// This format with the fields of the `#Fields:` directives of
    /// `inputs` when it [`needs_w3c_fields`](Self::needs_w3c_fields) (as
    /// `parpipe run` does before a run, so that every worker parses its
    /// byte ranges alike); any other format unchanged. Inputs that name no
    /// fields, or two different lists, are an error naming the input and
    /// line; standard input cannot be read twice, so its fields must be
    /// given (`w3c:FIELD FIELD …`).
    pub fn with_fields_of(mut self, inputs: &[InputSpec]) -> Result<LogFormat, String> {
        if self.needs_w3c_fields() {
            self.kind = Kind::W3c(w3c::W3c::iis(w3c::resolve_fields(inputs)?));
        }
        Ok(self)
    }

    /// Whether this is `combined`, the contract's format (the only one the
    /// generator writes).
    pub fn is_combined(&self) -> bool {
        self.kind == Kind::Combined
    }

    /// Reads one line (LF and one CR already removed).
    pub fn parse_line<'a>(&self, line: &'a [u8]) -> Outcome<'a> {
        match &self.kind {
            Kind::Combined => match super::parse::parse_line(line) {
                Some(p) => Outcome::Parsed(Fields {
                    client: Cow::Borrowed(p.client),
                    method: Cow::Borrowed(p.method),
                    path: Cow::Borrowed(p.path),
                    status: p.status,
                    bytes: p.bytes,
                    referer: p.referer.map(Cow::Borrowed),
                    user_agent: p.user_agent.map(Cow::Borrowed),
                    vhost: None,
                    utc: p.utc,
                    latency_us: None,
                    forwarded_for: None,
                }),
                None => Outcome::Rejected,
            },
            Kind::Template(t) => t.parse(line),
            Kind::W3c(w) => w.parse(line),
            Kind::Json(j) => j.parse(line),
        }
    }
}

/// Request-line helpers shared by the engines.
pub(crate) fn request_parts(req: &[u8]) -> (&[u8], &[u8]) {
    super::parse::method_path(req)
}

/// The path of a target: up to (not including) its first `?`.
pub(crate) fn path_of(target: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', target) {
        Some(q) => &target[..q],
        None => target,
    }
}

#[cfg(test)]
mod tests;
