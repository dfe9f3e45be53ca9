//! A partial's final form: [`Summary`], what `summary.json` holds, and
//! [`LogsPartial::summary`], which ranks the top lists (`--top`) and
//! names the time buckets (`--tz`).

use super::super::counts::Counts;
use super::super::dims::{PathSummary, Traffic, TrafficSummary};
use super::super::latency::LatencySummary;
use super::super::tags::DimensionRow;
use super::super::time::write_hour_bucket;
use super::LogsPartial;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

impl LogsPartial {
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
            // `try_merge` refuses hours out of range; a partial built here
            // has none (saturating keeps a hand-made one from panicking).
            write_hour_bucket(h.saturating_mul(3600), &mut bucket);
            hours.insert(text(&bucket), n);
        }
        let n = self.view.top;
        let top_paths = top(&self.paths, n);
        let (hourly, daily) = self.traffic_summaries();
        let top_paths_stats = top_paths
            .iter()
            .map(|(path, hits)| {
                let s = self
                    .path_stats
                    .get(path.as_bytes())
                    .copied()
                    .unwrap_or_default();
                let detail = PathSummary {
                    client_errors: s.client_errors,
                    server_errors: s.server_errors,
                    bytes: s.bytes,
                    hits: *hits,
                };
                (path.clone(), detail)
            })
            .collect();
        let not_found: Counts = self
            .path_stats
            .iter()
            .filter(|(_, s)| s.not_found > 0)
            .map(|(p, s)| (&p[..], s.not_found))
            .collect();
        Summary {
            bots: self.bots,
            bytes: self.bytes,
            clients: self.clients.len() as u64,
            daily,
            dimensions: self.custom.summary(n),
            directives: self.directives,
            dropped: self.dropped,
            hourly,
            hours,
            lines: self.lines,
            methods: self.methods.iter().map(|(k, v)| (text(k), v)).collect(),
            parsed: self.parsed,
            rejected: self.rejected,
            rejected_samples: self.rejected_samples.clone(),
            status,
            status_class_bytes,
            time_zone: self.view.time_zone.clone(),
            top_browsers: top(&self.browsers, n),
            top_clients: top(&self.clients, n),
            top_crawlers: top(&self.crawlers, n),
            top_not_found: top(&not_found, n),
            top_operating_systems: top(&self.systems, n),
            top_paths_latency: (self.latency.count > 0).then(|| {
                top_paths
                    .iter()
                    .filter_map(|(path, _)| {
                        let h = self.path_latency.get(path.as_bytes())?;
                        Some((path.clone(), h.summary()))
                    })
                    .collect()
            }),
            top_paths,
            top_paths_stats,
            top_referrers: top(&self.referrers, n),
            latency: (self.latency.count > 0).then(|| self.latency.summary()),
            vhosts: (!self.vhosts.is_empty())
                .then(|| self.vhosts.iter().map(|(k, v)| (text(k), v)).collect()),
        }
    }
}

impl LogsPartial {
    /// `hourly` and `daily`: each local hour's traffic, and each day's as
    /// the union of its hours'.
    fn traffic_summaries(
        &self,
    ) -> (
        BTreeMap<String, TrafficSummary>,
        BTreeMap<String, TrafficSummary>,
    ) {
        let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let mut hourly = BTreeMap::new();
        let mut days: BTreeMap<i64, Traffic> = BTreeMap::new();
        let mut bucket = Vec::with_capacity(16);
        for (&h, t) in &self.traffic {
            bucket.clear();
            write_hour_bucket(h.saturating_mul(3600), &mut bucket);
            hourly.insert(
                text(&bucket),
                TrafficSummary {
                    bytes: t.bytes,
                    clients: t.clients.count(),
                    requests: t.requests,
                },
            );
            let day = days.entry(h.div_euclid(24)).or_default();
            // A partial built here cannot overflow; saturate a hand-made one.
            day.requests = day.requests.saturating_add(t.requests);
            day.bytes = day.bytes.saturating_add(t.bytes);
            day.clients.merge(t.clients.clone());
        }
        let daily = days
            .into_iter()
            .map(|(d, t)| {
                bucket.clear();
                write_hour_bucket(d.saturating_mul(86_400), &mut bucket);
                // `YYYY-MM-DDTHH`: the day is what comes before the `T`.
                let date = bucket.split(|&b| b == b'T').next().unwrap_or(&[]);
                let summary = TrafficSummary {
                    bytes: t.bytes,
                    clients: t.clients.count(),
                    requests: t.requests,
                };
                (text(date), summary)
            })
            .collect();
        (hourly, daily)
    }
}

/// The `n` most frequent keys (all for 0), count descending, ties by key
/// ascending (byte order of UTF-8 is code point order).
fn top(counts: &Counts, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(&[u8], u64)> = counts.iter().collect();
    let order = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
    if n > 0 && all.len() > n {
        all.select_nth_unstable_by(n - 1, order);
        all.truncate(n);
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
    /// Traffic per local day `YYYY-MM-DD`.
    pub daily: BTreeMap<String, TrafficSummary>,
    /// Per dimension declared by a plugged-in stage, its most frequent
    /// values (`--top`) with their hits, bytes and errors (left out when
    /// none is declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<BTreeMap<String, Vec<DimensionRow>>>,
    /// Format directive lines (W3C `#Fields:` …): `lines = parsed +
    /// rejected + directives`. Left out when 0, so Combined summaries keep
    /// their bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub directives: u64,
    /// Parsed lines a plugged-in stage removed (`parsed = kept + dropped`;
    /// 0 for the built-in pipeline).
    pub dropped: u64,
    /// Traffic per hour bucket (the keys of `hours`).
    pub hourly: BTreeMap<String, TrafficSummary>,
    /// Count per hour bucket `YYYY-MM-DDTHH` (UTC, or the `--tz` zone).
    pub hours: BTreeMap<String, u64>,
    /// Durations, when the format has them (left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
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
    /// The zone of the time buckets (`UTC`, an IANA name, `+HH:MM`).
    pub time_zone: String,
    /// Most frequent browser families.
    pub top_browsers: Vec<(String, u64)>,
    /// Most frequent clients (`--top`, default ten).
    pub top_clients: Vec<(String, u64)>,
    /// Most frequent crawler families.
    pub top_crawlers: Vec<(String, u64)>,
    /// Paths most often answered 404.
    pub top_not_found: Vec<(String, u64)>,
    /// Most frequent operating systems.
    pub top_operating_systems: Vec<(String, u64)>,
    /// Most frequent paths.
    pub top_paths: Vec<(String, u64)>,
    /// Durations of the `top_paths` that have some, in their order, when
    /// the format has durations (left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_paths_latency: Option<Vec<(String, LatencySummary)>>,
    /// The `top_paths` with their bytes and error counts, in their order.
    pub top_paths_stats: Vec<(String, PathSummary)>,
    /// Most frequent referring hosts (`-`: direct).
    pub top_referrers: Vec<(String, u64)>,
    /// Count per virtual host, when the format has one (left out otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhosts: Option<BTreeMap<String, u64>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// The JSON text written to `summary.json` (one line, sorted keys, LF).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
