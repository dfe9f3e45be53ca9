//! JSON lines (docs/log-formats.md, "json" and "caddy"): one object per
//! line; each field of a request is looked up under a list of key paths
//! (`request.headers.User-Agent`: keys through nested objects, an array
//! giving its first element), the first present one winning. Strings are
//! JSON-decoded; numbers are read from their digits as written.

use super::values::{self, Unit};
use super::{path_of, request_parts, Fields, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// The request fields a mapping can name, as written in `json:KEY=PATH`.
pub const TARGETS: &[&str] = &[
    "client",
    "time",
    "request",
    "method",
    "uri",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "host",
    "duration",
    "duration_ms",
    "duration_us",
    "duration_ns",
    "xff",
];

/// For each of [`TARGETS`], the key paths tried in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMap {
    paths: Vec<Vec<String>>,
}

impl JsonMap {
    fn from_table(table: &[(&str, &[&str])]) -> JsonMap {
        let mut paths = vec![Vec::new(); TARGETS.len()];
        for (target, keys) in table {
            let i = TARGETS.iter().position(|t| t == target).expect("a target");
            paths[i] = keys.iter().map(|k| k.to_string()).collect();
        }
        JsonMap { paths }
    }

    /// The default mapping of `json`: the names nginx variables and common
    /// JSON loggers use.
    pub fn default_mapping() -> JsonMap {
        JsonMap::from_table(&[
            (
                "client",
                &["remote_addr", "client_ip", "client", "remote_ip", "ip"],
            ),
            (
                "time",
                &[
                    "time_iso8601",
                    "time_local",
                    "timestamp",
                    "time",
                    "@timestamp",
                    "ts",
                    "msec",
                ],
            ),
            ("request", &["request"]),
            ("method", &["request_method", "method"]),
            ("uri", &["request_uri", "uri", "path", "url"]),
            ("status", &["status", "status_code"]),
            ("bytes", &["body_bytes_sent", "bytes_sent", "bytes", "size"]),
            ("referer", &["http_referer", "referer", "referrer"]),
            ("user_agent", &["http_user_agent", "user_agent", "agent"]),
            ("host", &["host", "http_host", "server_name", "vhost"]),
            ("duration", &["request_time", "duration"]),
            ("xff", &["http_x_forwarded_for", "x_forwarded_for", "xff"]),
        ])
    }

    /// Caddy's JSON access log (`http.log.access`).
    pub fn caddy() -> JsonMap {
        JsonMap::from_table(&[
            ("client", &["request.client_ip", "request.remote_ip"]),
            ("time", &["ts"]),
            ("method", &["request.method"]),
            ("uri", &["request.uri"]),
            ("status", &["status"]),
            ("bytes", &["size"]),
            ("referer", &["request.headers.Referer"]),
            ("user_agent", &["request.headers.User-Agent"]),
            ("host", &["request.host"]),
            ("duration", &["duration"]),
            ("xff", &["request.headers.X-Forwarded-For"]),
        ])
    }

    /// True when the mapping names an X-Forwarded-For key.
    pub fn has_forwarded_for(&self) -> bool {
        TARGETS
            .iter()
            .position(|t| *t == "xff")
            .and_then(|i| self.paths.get(i))
            .is_some_and(|p| !p.is_empty())
    }

    /// This mapping with `KEY=PATH|PATH,…` overrides (an empty spec changes
    /// nothing); a key given replaces that target's whole list.
    pub fn with(mut self, spec: &str) -> Result<JsonMap, String> {
        for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (target, keys) = pair
                .split_once('=')
                .ok_or_else(|| format!("json mapping '{pair}': expected KEY=PATH"))?;
            let target = target.trim();
            let i = TARGETS.iter().position(|t| *t == target).ok_or_else(|| {
                format!(
                    "json mapping: unknown field '{target}' (known: {})",
                    TARGETS.join(", ")
                )
            })?;
            let keys: Vec<String> = keys.split('|').map(|k| k.trim().to_string()).collect();
            if keys.iter().any(String::is_empty) {
                return Err(format!("json mapping '{pair}': an empty key path"));
            }
            if target.starts_with("duration") {
                // One duration: the one given replaces the others.
                for (j, t) in TARGETS.iter().enumerate() {
                    if t.starts_with("duration") {
                        self.paths[j].clear();
                    }
                }
            }
            self.paths[i] = keys;
        }
        Ok(self)
    }

    fn lookup<'v>(&self, obj: &'v Value, target: &str) -> Option<&'v Value> {
        let i = TARGETS.iter().position(|t| *t == target)?;
        self.paths.get(i)?.iter().find_map(|path| {
            let mut v = obj;
            for key in path.split('.') {
                v = v.get(key)?;
                if let Value::Array(a) = v {
                    v = a.first()?;
                }
            }
            (!v.is_null()).then_some(v)
        })
    }

    /// Reads one line: a JSON object with at least a time and a status.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Outcome<'a> {
        self.fields(line).map_or(Outcome::Rejected, Outcome::Parsed)
    }

    fn fields<'a>(&self, line: &'a [u8]) -> Option<Fields<'a>> {
        let obj: Value = serde_json::from_slice(line).ok()?;
        if !obj.is_object() {
            return None;
        }
        let text = |target: &str| -> Option<Vec<u8>> {
            match self.lookup(&obj, target)? {
                Value::String(s) => Some(s.as_bytes().to_vec()),
                Value::Number(n) => Some(n.to_string().into_bytes()),
                _ => None,
            }
        };
        let time = self.lookup(&obj, "time")?;
        let utc = match time {
            Value::Number(n) => values::unix_time(values::json_number_text(n)?.as_bytes())?,
            Value::String(s) => {
                let b = s.as_bytes();
                values::clf_time(b)
                    .or_else(|| values::iso_time(b))
                    .or_else(|| values::unix_time(b))?
            }
            _ => return None,
        };
        let status = values::status(&text("status")?)?;
        let bytes = match text("bytes") {
            Some(b) => values::bytes(&b)?,
            None => 0,
        };
        let (mut method, mut path) = (b"-".to_vec(), b"-".to_vec());
        if let Some(req) = text("request") {
            let (m, p) = request_parts(&req);
            (method, path) = (m.to_vec(), p.to_vec());
        }
        if let Some(m) = text("method") {
            method = m;
        }
        if let Some(u) = text("uri") {
            path = path_of(&u).to_vec();
        }
        let mut latency_us = None;
        for (target, unit) in [
            ("duration", Unit::Seconds),
            ("duration_ms", Unit::Millis),
            ("duration_us", Unit::Micros),
            ("duration_ns", Unit::Nanos),
        ] {
            if latency_us.is_none() {
                latency_us = match self.lookup(&obj, target) {
                    Some(Value::Number(n)) => values::json_number_text(n)
                        .and_then(|t| values::duration_us(t.as_bytes(), unit)),
                    Some(Value::String(s)) => values::duration_us(s.as_bytes(), unit),
                    _ => None,
                };
            }
        }
        let owned = |v: Option<Vec<u8>>| v.filter(|v| !v.is_empty()).map(Cow::Owned);
        Some(Fields {
            client: Cow::Owned(
                text("client")
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| b"-".to_vec()),
            ),
            method: Cow::Owned(method),
            path: Cow::Owned(path),
            status,
            bytes,
            referer: owned(text("referer")),
            user_agent: owned(text("user_agent")),
            vhost: owned(text("host")),
            utc,
            latency_us,
            forwarded_for: owned(text("xff")),
        })
    }
}
