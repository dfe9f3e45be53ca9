//! The template engine: a line is literals and fields in a fixed order, as
//! Apache's `LogFormat` and nginx's `log_format` describe it; the built-in
//! `common`, `vcombined`, `traefik` and `alb` are templates too
//! (docs/log-formats.md, "Templates").
//!
//! Matching is one forward pass with no backtracking: a literal must be
//! there byte for byte; a field between double quotes runs to the first
//! quote not escaped by a backslash; the time of `%t` / `$time_local` is
//! exactly 26 bytes; any other field runs to the first byte that starts the
//! literal after it (to the first space, or the end of the line, when it is
//! last) and must not be empty. After the template, the line must end, or
//! go on with a space and anything (ignored), as in the Combined rules.

use super::values::{self, Unit};
use super::{path_of, request_parts, Fields, Outcome};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Apache's Common Log Format.
pub const COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;
/// Apache's `vhost_combined`.
pub const VCOMBINED: &str = r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Field {
    /// Read and ignored.
    Ignore,
    /// The client.
    Client,
    /// `client:port` (the port dropped at the last `:`).
    ClientPort,
    /// `DD/Mon/YYYY:HH:MM:SS +hhmm`.
    TimeClf,
    /// ISO 8601.
    TimeIso,
    /// Unix seconds with a fraction.
    TimeUnix,
    /// `METHOD TARGET PROTOCOL`.
    Request,
    /// The same, with an absolute-URL target (`http://host:port/p`).
    RequestUrl,
    /// The method.
    Method,
    /// A target: the path is up to its first `?`.
    Target,
    /// The path alone.
    Path,
    /// Three digits.
    Status,
    /// Digits or `-`.
    Bytes,
    /// The referer (`-` kept as written).
    Referer,
    /// The user agent.
    UserAgent,
    /// The virtual host.
    Vhost,
    /// The request's duration in this unit.
    Duration(Unit),
    /// An upstream time list (`0.004, 0.002`, or `-`): the sum, in
    /// seconds, used only when the format has no request duration.
    Upstream,
    /// One part of a duration that is the sum of parts (ALB's three
    /// processing times, seconds; `-1` in any part means none).
    DurationPart,
    /// The X-Forwarded-For header (`$http_x_forwarded_for`,
    /// `%{X-Forwarded-For}i`).
    ForwardedFor,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// Bytes that must be there.
    Lit(Vec<u8>),
    /// A field.
    Field(Field),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    items: Vec<Item>,
}

impl Template {
    fn new(mut items: Vec<Item>) -> Result<Template, String> {
        // Adjacent literals join, so that a field's end is the next literal.
        let mut joined: Vec<Item> = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match (joined.last_mut(), item) {
                (Some(Item::Lit(a)), Item::Lit(b)) => a.extend(b),
                (_, item) => joined.push(item),
            }
        }
        joined.retain(|i| !matches!(i, Item::Lit(l) if l.is_empty()));
        for pair in joined.windows(2) {
            if let [Item::Field(a), Item::Field(b)] = pair {
                return Err(format!(
                    "two fields with nothing between them ({a:?}, {b:?}): the end of the first cannot be found"
                ));
            }
        }
        let has =
            |f: fn(&Field) -> bool| joined.iter().any(|i| matches!(i, Item::Field(x) if f(x)));
        if !has(|f| matches!(f, Field::TimeClf | Field::TimeIso | Field::TimeUnix)) {
            return Err(
                "the format has no time field ($time_local, $time_iso8601, $msec, %t)".into(),
            );
        }
        if !has(|f| matches!(f, Field::Status)) {
            return Err("the format has no status field ($status, %>s, %s)".into());
        }
        Ok(Template { items: joined })
    }

    /// True when a field is the X-Forwarded-For header.
    pub fn has_forwarded_for(&self) -> bool {
        self.items.contains(&Item::Field(Field::ForwardedFor))
    }

    /// Reads one line.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Outcome<'a> {
        self.fields(line).map_or(Outcome::Rejected, Outcome::Parsed)
    }

    fn fields<'a>(&self, line: &'a [u8]) -> Option<Fields<'a>> {
        let mut f = Fields::unknown();
        let (mut duration, mut upstream, mut parts) = (None, None, Some(0u64));
        let mut has_parts = false;
        let mut pos = 0;
        for (i, item) in self.items.iter().enumerate() {
            let field = match item {
                Item::Lit(l) => {
                    if !line.get(pos..)?.starts_with(l) {
                        return None;
                    }
                    pos += l.len();
                    continue;
                }
                Item::Field(field) => *field,
            };
            let next = match self.items.get(i + 1) {
                Some(Item::Lit(l)) => Some(&l[..]),
                _ => None,
            };
            let quoted = pos > 0 && line[pos - 1] == b'"' && next.is_some_and(|l| l[0] == b'"');
            let end = if field == Field::TimeClf {
                pos + 26
            } else if quoted {
                crate::workloads::logs::parse::quoted(line, pos)?
            } else if field == Field::Upstream {
                upstream_end(line, pos, next)
            } else {
                let stop = next.map_or(b' ', |l| l[0]);
                pos + memchr::memchr(stop, &line[pos..]).unwrap_or(line.len() - pos)
            };
            let v = line.get(pos..end)?;
            if v.is_empty() && !quoted {
                return None;
            }
            pos = end;
            match field {
                Field::Ignore => {}
                Field::Client => f.client = Cow::Borrowed(v),
                Field::ClientPort => {
                    let colon = memchr::memrchr(b':', v)?;
                    f.client = Cow::Borrowed(&v[..colon]);
                }
                Field::TimeClf => f.utc = values::clf_time(v)?,
                Field::TimeIso => f.utc = values::iso_time(v)?,
                Field::TimeUnix => f.utc = values::unix_time(v)?,
                Field::Request | Field::RequestUrl => {
                    let (m, p) = request_parts(v);
                    f.method = Cow::Borrowed(m);
                    f.path = Cow::Borrowed(if field == Field::RequestUrl {
                        strip_origin(p)
                    } else {
                        p
                    });
                }
                Field::Method => f.method = Cow::Borrowed(v),
                Field::Target => f.path = Cow::Borrowed(path_of(v)),
                Field::Path => f.path = Cow::Borrowed(v),
                Field::Status => f.status = values::status(v)?,
                Field::Bytes => f.bytes = values::bytes(v)?,
                Field::Referer => f.referer = Some(Cow::Borrowed(v)),
                Field::UserAgent => f.user_agent = Some(Cow::Borrowed(v)),
                Field::Vhost => f.vhost = (v != b"-").then_some(Cow::Borrowed(v)),
                Field::ForwardedFor => f.forwarded_for = Some(Cow::Borrowed(v)),
                Field::Duration(unit) => duration = values::duration_us(v, unit),
                Field::Upstream => upstream = upstream_sum(v),
                Field::DurationPart => {
                    has_parts = true;
                    parts = match (parts, values::duration_us(v, Unit::Seconds)) {
                        (Some(a), Some(b)) => a.checked_add(b),
                        _ => None,
                    };
                }
            }
        }
        match line.get(pos) {
            None | Some(b' ') => {}
            Some(_) => return None,
        }
        if memchr::memchr(b'\n', &line[pos..]).is_some() {
            return None;
        }
        f.latency_us = duration.or(upstream).or(parts.filter(|_| has_parts));
        Some(f)
    }
}

/// Where an upstream time list ends: it may hold `, ` and ` : `
/// separators, so it runs on over them.
fn upstream_end(line: &[u8], pos: usize, next: Option<&[u8]>) -> usize {
    let stop = next.map_or(b' ', |l| l[0]);
    let mut end = pos;
    loop {
        end += memchr::memchr(stop, &line[end..]).unwrap_or(line.len() - end);
        let rest = &line[end..];
        let v = &line[pos..end];
        if stop == b' ' && v.ends_with(b",") && rest.len() > 1 {
            end += 1;
        } else if stop == b' ' && rest.starts_with(b" : ") {
            end += 3;
        } else {
            return end;
        }
    }
}

/// Sum of an upstream time list in microseconds; `None` when any part is
/// not a time (`-`).
fn upstream_sum(v: &[u8]) -> Option<u64> {
    v.split(|&b| b == b',' || b == b':')
        .map(|t| t.trim_ascii())
        .try_fold(0u64, |acc, t| {
            acc.checked_add(values::duration_us(t, Unit::Seconds)?)
        })
}

/// `http://host:port/p` → `/p`; a target without a scheme is kept.
fn strip_origin(target: &[u8]) -> &[u8] {
    for scheme in [&b"http://"[..], b"https://", b"h2://", b"ws://", b"wss://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            return match memchr::memchr(b'/', rest) {
                Some(slash) => &rest[slash..],
                None => b"/",
            };
        }
    }
    target
}

/// Compiles an Apache `LogFormat` string (a surrounding pair of double
/// quotes is removed and `\"` read as `"`, as in the configuration file).
pub fn apache(spec: &str) -> Result<Template, String> {
    let spec = spec.trim();
    let spec = spec
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(spec);
    let spec = spec.replace("\\\"", "\"");
    let b = spec.as_bytes();
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        // Modifiers: `<`, `>`, status conditions such as `!200,304`.
        while i < b.len() && matches!(b[i], b'<' | b'>' | b'!' | b',' | b'0'..=b'9') {
            i += 1;
        }
        let mut arg = "";
        if b.get(i) == Some(&b'{') {
            let close = spec[i..]
                .find('}')
                .ok_or_else(|| format!("apache format: '{{' without '}}' at byte {i}"))?;
            arg = &spec[i + 1..i + close];
            i += close + 1;
        }
        let Some(&d) = b.get(i) else {
            return Err("apache format: '%' at the end".into());
        };
        i += 1;
        if d == b'%' {
            lit.push(b'%');
            continue;
        }
        let field = match (d, arg.to_ascii_lowercase().as_str()) {
            (b'h' | b'a', _) => Field::Client,
            (b't', "") => {
                lit.push(b'[');
                items.push(Item::Lit(std::mem::take(&mut lit)));
                items.push(Item::Field(Field::TimeClf));
                lit.push(b']');
                continue;
            }
            (b't', "sec") => Field::TimeUnix,
            (b't', a) => {
                return Err(format!(
                    "apache format: %{{{a}}}t is not supported (only %t and %{{sec}}t)"
                ))
            }
            (b'r', _) => Field::Request,
            (b's', _) => Field::Status,
            (b'b' | b'B' | b'O', _) => Field::Bytes,
            (b'i', "referer") => Field::Referer,
            (b'i', "user-agent") => Field::UserAgent,
            (b'i', "host") | (b'v' | b'V', _) => Field::Vhost,
            (b'i', "x-forwarded-for") => Field::ForwardedFor,
            (b'D', _) | (b'T', "us") => Field::Duration(Unit::Micros),
            (b'T', "ms") => Field::Duration(Unit::Millis),
            (b'T', _) => Field::Duration(Unit::Seconds),
            (b'm', _) => Field::Method,
            (b'U', _) => Field::Path,
            (
                b'l' | b'u' | b'p' | b'P' | b'q' | b'H' | b'I' | b'S' | b'X' | b'k' | b'L' | b'R'
                | b'f' | b'e' | b'n' | b'o' | b'C' | b'i' | b'A' | b'^',
                _,
            ) => Field::Ignore,
            (other, _) => {
                return Err(format!(
                    "apache format: unknown directive %{}",
                    char::from(other)
                ))
            }
        };
        items.push(Item::Lit(std::mem::take(&mut lit)));
        items.push(Item::Field(field));
    }
    items.push(Item::Lit(lit));
    Template::new(items).map_err(|e| format!("apache format: {e}"))
}

/// Compiles an nginx `log_format` string: when it holds single-quoted
/// parts (as pasted from the configuration), their contents are joined,
/// as nginx joins them.
pub fn nginx(spec: &str) -> Result<Template, String> {
    let spec = if spec.contains('\'') {
        spec.split('\'').skip(1).step_by(2).collect::<String>()
    } else {
        spec.to_string()
    };
    let b = spec.as_bytes();
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    let mut has_request_time = false;
    while i < b.len() {
        if b[i] != b'$' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        let braced = b.get(i) == Some(&b'{');
        if braced {
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &spec[start..i];
        if braced {
            if b.get(i) != Some(&b'}') {
                return Err(format!("nginx format: '${{{name}' without '}}'"));
            }
            i += 1;
        }
        if name.is_empty() {
            return Err(format!(
                "nginx format: '$' without a variable name at byte {start}"
            ));
        }
        let field = match name {
            "remote_addr" | "realip_remote_addr" => Field::Client,
            "time_local" => Field::TimeClf,
            "time_iso8601" => Field::TimeIso,
            "msec" => Field::TimeUnix,
            "request" => Field::Request,
            "request_method" => Field::Method,
            "request_uri" => Field::Target,
            "uri" | "document_uri" => Field::Path,
            "status" => Field::Status,
            "body_bytes_sent" | "bytes_sent" => Field::Bytes,
            "http_referer" => Field::Referer,
            "http_user_agent" => Field::UserAgent,
            "host" | "http_host" | "server_name" => Field::Vhost,
            "http_x_forwarded_for" => Field::ForwardedFor,
            "request_time" => {
                has_request_time = true;
                Field::Duration(Unit::Seconds)
            }
            "upstream_response_time" => Field::Upstream,
            _ => Field::Ignore,
        };
        items.push(Item::Lit(std::mem::take(&mut lit)));
        items.push(Item::Field(field));
    }
    items.push(Item::Lit(lit));
    if has_request_time {
        // The request's own time wins: the upstream list is read and ignored.
        for item in &mut items {
            if *item == Item::Field(Field::Upstream) {
                *item = Item::Field(Field::Ignore);
            }
        }
    }
    // Two body sizes: `$body_bytes_sent` is the one counted.
    if spec.contains("$body_bytes_sent") && spec.contains("$bytes_sent") {
        let mut seen_body = false;
        let vars: Vec<&str> = spec.split('$').skip(1).collect();
        let mut k = 0;
        for item in &mut items {
            if let Item::Field(Field::Bytes) = item {
                while k < vars.len()
                    && !vars[k].starts_with("body_bytes_sent")
                    && !vars[k].starts_with("bytes_sent")
                {
                    k += 1;
                }
                let body = vars
                    .get(k)
                    .is_some_and(|v| v.starts_with("body_bytes_sent"));
                k += 1;
                if !body || seen_body {
                    *item = Item::Field(Field::Ignore);
                }
                seen_body |= body;
            }
        }
    }
    Template::new(items).map_err(|e| format!("nginx format: {e}"))
}

/// Traefik's access log in its default (CLF) form: Combined, then the
/// request count, `"router"`, `"server URL"` and the duration with `ms`.
pub fn traefik() -> Template {
    use Field::*;
    let lit = |s: &str| Item::Lit(s.as_bytes().to_vec());
    Template::new(vec![
        Item::Field(Client),
        lit(" - "),
        Item::Field(Ignore),
        lit(" ["),
        Item::Field(TimeClf),
        lit("] \""),
        Item::Field(Request),
        lit("\" "),
        Item::Field(Status),
        lit(" "),
        Item::Field(Bytes),
        lit(" \""),
        Item::Field(Referer),
        lit("\" \""),
        Item::Field(UserAgent),
        lit("\" "),
        Item::Field(Ignore),
        lit(" \""),
        Item::Field(Ignore),
        lit("\" \""),
        Item::Field(Ignore),
        lit("\" "),
        Item::Field(Duration(Unit::Millis)),
        lit("ms"),
    ])
    .expect("the traefik template is valid")
}

/// An AWS Application Load Balancer access-log entry: the fields up to the
/// domain name are read; the rest of the line is ignored.
pub fn alb() -> Template {
    use Field::*;
    let lit = |s: &str| Item::Lit(s.as_bytes().to_vec());
    let sp = || lit(" ");
    Template::new(vec![
        Item::Field(Ignore), // type
        sp(),
        Item::Field(TimeIso),
        sp(),
        Item::Field(Ignore), // elb
        sp(),
        Item::Field(ClientPort),
        sp(),
        Item::Field(Ignore), // target:port
        sp(),
        Item::Field(DurationPart),
        sp(),
        Item::Field(DurationPart),
        sp(),
        Item::Field(DurationPart),
        sp(),
        Item::Field(Status), // elb_status_code
        sp(),
        Item::Field(Ignore), // target_status_code
        sp(),
        Item::Field(Ignore), // received_bytes
        sp(),
        Item::Field(Bytes), // sent_bytes
        lit(" \""),
        Item::Field(RequestUrl),
        lit("\" \""),
        Item::Field(UserAgent),
        lit("\" "),
        Item::Field(Ignore), // ssl_cipher
        sp(),
        Item::Field(Ignore), // ssl_protocol
        sp(),
        Item::Field(Ignore), // target_group_arn
        lit(" \""),
        Item::Field(Ignore), // trace_id
        lit("\" \""),
        Item::Field(Vhost), // domain_name
        lit("\""),
    ])
    .expect("the alb template is valid")
}
