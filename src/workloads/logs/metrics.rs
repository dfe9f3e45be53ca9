//! The `logs` aggregate (docs/logs-workload.md §4): [`LogsPartial`], the
//! mergeable partial, and [`Summary`], the final `summary.json`. With
//! `--emit-records` the partial also carries each batch's rendered
//! `records.jsonl` and `rejects.txt` lines, which the sink streams out.

use super::counts::{bump_map, Counts, SpareKeys};
use super::dims::{
    for_each_family, referrer_key, PathStats, PathSummary, Traffic, TrafficSummary, UaClass,
    NO_FAMILY,
};
use super::distinct::client_hash;
use super::latency::{Histogram, LatencySummary};
use super::pool::BatchPool;
use super::rejection::KEPT_LINE_BYTES;
use super::render::{write_record, write_reject};
use super::stages::EnrichedBatch;
use super::tags::{CustomCounts, DimensionRow};
use super::time::write_hour_bucket;
use crate::stage::{Aggregate, BatchInfo, StageError};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many rejected line numbers `rejected_samples` keeps.
pub const REJECTED_SAMPLES: usize = 5;
/// How many entries each top list keeps by default (`--top`).
pub const TOP_N: usize = 10;
/// The largest `--top` (0 means every entry).
pub const MAX_TOP: usize = 1_000_000;

/// How a partial's summary is written: the run's `--top` and `--tz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryView {
    /// Entries per top list; 0 for all.
    pub top: usize,
    /// The `time_zone` label of the time buckets.
    pub time_zone: String,
}

impl Default for SummaryView {
    fn default() -> Self {
        SummaryView {
            top: TOP_N,
            time_zone: "UTC".into(),
        }
    }
}

/// Counts over a run of consecutive batches. Text keys are valid UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsPartial {
    /// Lines read.
    pub lines: u64,
    /// Lines parsed.
    pub parsed: u64,
    /// Parsed lines a plugged-in stage removed (`parsed = kept + dropped`;
    /// the other counts are over the kept ones).
    pub dropped: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Lines that were format directives (W3C `#Fields:` …).
    pub directives: u64,
    /// First rejected line numbers, ascending, at most five.
    pub rejected_samples: Vec<u64>,
    /// Their raw bytes (each cut at [`KEPT_LINE_BYTES`]), for the message
    /// of a run that rejects most lines.
    pub rejected_lines: Vec<serde_bytes::ByteBuf>,
    /// Sum of bytes over parsed lines (u128: a sum of u64 values can overflow u64).
    pub bytes: u128,
    /// Parsed lines from bots.
    pub bots: u64,
    /// Count per status code, indexed by code (empty until the first parsed line).
    pub status: Vec<u64>,
    /// Bytes per status class, indexed by the class digit.
    pub status_class_bytes: [u128; 10],
    /// Count per method.
    pub methods: Counts,
    /// Count per path.
    pub paths: Counts,
    /// Count per client.
    pub clients: Counts,
    /// Count per hour (hours since the Unix epoch).
    pub hours: FxHashMap<i64, u64>,
    /// Durations of the requests that have one.
    pub latency: Histogram,
    /// The same per path.
    pub path_latency: FxHashMap<Box<[u8]>, Histogram>,
    /// Count per virtual host (formats that have one).
    pub vhosts: Counts,
    /// Bytes and error counts per path.
    pub path_stats: FxHashMap<Box<[u8]>, PathStats>,
    /// Traffic per local hour (hours since the epoch of the `--tz` wall clock).
    pub traffic: FxHashMap<i64, Traffic>,
    /// Count per referring host (lines with a referer field).
    pub referrers: Counts,
    /// Count per browser family (lines with a user agent, not crawlers).
    pub browsers: Counts,
    /// Count per operating system (the same lines).
    pub systems: Counts,
    /// Count per crawler family.
    pub crawlers: Counts,
    /// Counts per value of the dimensions declared with
    /// [`LogsBuilder::dimension`](super::LogsBuilder::dimension).
    #[serde(default)]
    pub custom: CustomCounts,
    /// How the summary is written (kept from the partial merged into).
    #[serde(default)]
    pub view: SummaryView,
    /// Rendered `records.jsonl` lines not yet taken by the sink.
    #[serde(with = "serde_bytes")]
    pub records_out: Vec<u8>,
    /// Rendered `rejects.txt` lines not yet taken by the sink.
    #[serde(with = "serde_bytes")]
    pub rejects_out: Vec<u8>,
}

/// Most status codes a partial counts (`000` to `999`).
const STATUS_CODES: usize = 1000;

/// How a merge treats a sum that does not fit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// An error naming the field: the partial came from another process.
    Refuse,
    /// The largest value: the partial was computed here, where counts of
    /// lines and sums of their sizes cannot come near the limits.
    Saturate,
}

impl Overflow {
    pub(crate) fn add_u64(self, acc: &mut u64, by: u64, what: &str) -> Result<(), String> {
        match acc.checked_add(by) {
            Some(v) => *acc = v,
            None if self == Overflow::Refuse => {
                return Err(format!("{what}: {acc} + {by} overflows u64"))
            }
            None => *acc = u64::MAX,
        }
        Ok(())
    }

    fn add_u128(self, acc: &mut u128, by: u128, what: &str) -> Result<(), String> {
        match acc.checked_add(by) {
            Some(v) => *acc = v,
            None if self == Overflow::Refuse => {
                return Err(format!("{what}: {acc} + {by} overflows u128"))
            }
            None => *acc = u128::MAX,
        }
        Ok(())
    }
}

/// The hour keys a summary can name: `hour * 3600` seconds must fit an i64.
fn valid_hour(h: i64) -> bool {
    h.checked_mul(3600).is_some()
}

impl LogsPartial {
    /// Folds `later` (the batches after these) into `self`: for partials
    /// computed in this process, where no count can overflow (a sum that
    /// would saturates). A partial decoded from another process goes
    /// through [`try_merge`](Self::try_merge).
    pub fn merge(&mut self, later: LogsPartial) {
        // Saturate never fails.
        let _ = self.merge_with(later, Overflow::Saturate);
    }

    /// Folds `later`, a partial decoded from another process, into `self`,
    /// refusing one whose numbers would overflow or that does not hold what
    /// a partial built by [`LogsMetrics`] holds (status codes below 1000,
    /// hours a summary can name). On an error, `self` may be partly merged.
    pub fn try_merge(&mut self, later: LogsPartial) -> Result<(), String> {
        if later.status.len() > STATUS_CODES {
            return Err(format!(
                "a status table of {} entries (codes go up to {})",
                later.status.len(),
                STATUS_CODES - 1
            ));
        }
        if later.rejected_lines.len() > REJECTED_SAMPLES
            || later
                .rejected_lines
                .iter()
                .any(|l| l.len() > KEPT_LINE_BYTES)
        {
            return Err("more rejected lines, or longer ones, than a partial keeps".into());
        }
        if let Some(h) = later.hours.keys().find(|&&h| !valid_hour(h)) {
            return Err(format!("hour {h} is out of range"));
        }
        if let Some(h) = later.traffic.keys().find(|&&h| !valid_hour(h)) {
            return Err(format!("traffic hour {h} is out of range"));
        }
        for t in later.traffic.values() {
            t.clients.check()?;
        }
        self.merge_with(later, Overflow::Refuse)
    }

    fn merge_with(&mut self, later: LogsPartial, overflow: Overflow) -> Result<(), String> {
        overflow.add_u64(&mut self.lines, later.lines, "lines")?;
        overflow.add_u64(&mut self.parsed, later.parsed, "parsed")?;
        overflow.add_u64(&mut self.dropped, later.dropped, "dropped")?;
        overflow.add_u64(&mut self.rejected, later.rejected, "rejected")?;
        overflow.add_u64(&mut self.directives, later.directives, "directives")?;
        let room = REJECTED_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(later.rejected_samples.into_iter().take(room));
        let room = REJECTED_SAMPLES.saturating_sub(self.rejected_lines.len());
        self.rejected_lines
            .extend(later.rejected_lines.into_iter().take(room));
        overflow.add_u128(&mut self.bytes, later.bytes, "bytes")?;
        overflow.add_u64(&mut self.bots, later.bots, "bots")?;
        if self.status.len() < later.status.len() {
            self.status.resize(later.status.len(), 0);
        }
        for (mine, theirs) in self.status.iter_mut().zip(later.status) {
            overflow.add_u64(mine, theirs, "status count")?;
        }
        for (mine, theirs) in self
            .status_class_bytes
            .iter_mut()
            .zip(later.status_class_bytes)
        {
            overflow.add_u128(mine, theirs, "status class bytes")?;
        }
        self.methods
            .merge_with(later.methods, overflow)
            .map_err(|e| format!("methods: {e}"))?;
        self.paths
            .merge_with(later.paths, overflow)
            .map_err(|e| format!("paths: {e}"))?;
        self.clients
            .merge_with(later.clients, overflow)
            .map_err(|e| format!("clients: {e}"))?;
        self.vhosts
            .merge_with(later.vhosts, overflow)
            .map_err(|e| format!("vhosts: {e}"))?;
        for (k, v) in later.hours {
            overflow.add_u64(self.hours.entry(k).or_insert(0), v, "hour count")?;
        }
        for (name, mine, theirs) in [
            ("referrers", &mut self.referrers, later.referrers),
            ("browsers", &mut self.browsers, later.browsers),
            ("operating systems", &mut self.systems, later.systems),
            ("crawlers", &mut self.crawlers, later.crawlers),
        ] {
            mine.merge_with(theirs, overflow)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let refuse = |what: &str| match overflow {
            Overflow::Refuse => Err(format!("{what}: a sum overflows")),
            Overflow::Saturate => Ok(()),
        };
        self.path_stats.reserve(later.path_stats.len());
        for (path, stats) in later.path_stats {
            match self.path_stats.get_mut(&path) {
                Some(mine) => {
                    if mine.checked_merge(stats).is_none() {
                        refuse("path statistics")?;
                    }
                }
                None => {
                    self.path_stats.insert(path, stats);
                }
            }
        }
        for (hour, t) in later.traffic {
            if self
                .traffic
                .entry(hour)
                .or_default()
                .checked_merge(t)
                .is_none()
            {
                refuse("hourly traffic")?;
            }
        }
        let latency = |r: Result<(), String>| match overflow {
            Overflow::Refuse => r.map_err(|e| format!("latency: {e}")),
            Overflow::Saturate => Ok(()),
        };
        self.custom.merge_with(later.custom, overflow)?;
        latency(self.latency.try_merge(later.latency))?;
        for (path, h) in later.path_latency {
            latency(self.path_latency.entry(path).or_default().try_merge(h))?;
        }
        self.records_out.extend_from_slice(&later.records_out);
        self.rejects_out.extend_from_slice(&later.rejects_out);
        Ok(())
    }

    /// Checks that this partial, a worker's for a chunk of `records` lines
    /// from line `first_line`, is one [`LogsMetrics`] builds from exactly
    /// those lines (see [`Aggregate::check_chunk`]). It cannot tell a
    /// consistent lie (one line's status or path changed for another) from
    /// the truth.
    pub fn check_chunk(&self, first_line: u64, records: u64) -> Result<(), String> {
        let mismatch = |what: &str, got: u64, want: u64| {
            format!("it counts {got} {what}, where the chunk implies {want}")
        };
        if self.lines != records {
            return Err(format!(
                "it counts {} lines, the chunk holds {records}",
                self.lines
            ));
        }
        let classified = self
            .parsed
            .checked_add(self.rejected)
            .and_then(|n| n.checked_add(self.directives));
        if classified != Some(self.lines) {
            return Err(format!(
                "its {} parsed, {} rejected and {} directive lines are not its {} lines",
                self.parsed, self.rejected, self.directives, self.lines
            ));
        }
        let kept = self
            .parsed
            .checked_sub(self.dropped)
            .ok_or_else(|| format!("{} dropped of {} parsed lines", self.dropped, self.parsed))?;
        let tables = [
            ("status counts", total(self.status.iter().copied())),
            ("method counts", total(self.methods.iter().map(|(_, n)| n))),
            ("hour counts", total(self.hours.values().copied())),
            (
                "hourly requests",
                total(self.traffic.values().map(|t| t.requests)),
            ),
        ];
        for (what, got) in tables {
            if got != kept {
                return Err(mismatch(what, got, kept));
            }
        }
        self.custom.check(kept)?;
        if self.bots > kept {
            return Err(mismatch("bots (at most)", self.bots, kept));
        }
        let samples = self.rejected.min(REJECTED_SAMPLES as u64);
        if self.rejected_samples.len() as u64 != samples {
            return Err(mismatch(
                "rejected samples",
                self.rejected_samples.len() as u64,
                samples,
            ));
        }
        let last = first_line.saturating_add(records.saturating_sub(1));
        let ascending = self.rejected_samples.windows(2).all(|w| w[0] < w[1]);
        let inside = self
            .rejected_samples
            .iter()
            .all(|l| (first_line..=last).contains(l));
        if !ascending || !inside {
            return Err(format!(
                "its rejected samples {:?} are not ascending lines of {first_line}-{last}",
                self.rejected_samples
            ));
        }
        Ok(())
    }

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

/// The sum of `values`, or `u64::MAX` when it overflows.
fn total(mut values: impl Iterator<Item = u64>) -> u64 {
    values
        .try_fold(0u64, |a, b| a.checked_add(b))
        .unwrap_or(u64::MAX)
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

std::thread_local! {
    /// The key maps (methods, paths, clients) of the partial this thread
    /// sealed last, for its next chunk's partial: see [`Counts::seal`].
    static SPARE_KEYS: std::cell::RefCell<[Option<SpareKeys>; 3]> =
        const { std::cell::RefCell::new([None, None, None]) };
}

/// The `metrics` aggregate.
#[derive(Debug, Clone, Default)]
pub struct LogsMetrics {
    /// Also render `records.jsonl` and `rejects.txt` lines.
    pub emit_records: bool,
    /// Where the line buffers go back once counted (shared with the source).
    pub pool: BatchPool,
    /// `--top` and the `--tz` label, carried by every partial.
    pub view: SummaryView,
    /// The tag names counted per value (see [`CustomCounts`]).
    pub dimensions: Vec<String>,
}

impl Aggregate for LogsMetrics {
    type In = EnrichedBatch;
    type Partial = LogsPartial;

    fn empty(&self) -> LogsPartial {
        LogsPartial {
            view: self.view.clone(),
            custom: CustomCounts::declare(&self.dimensions),
            ..LogsPartial::default()
        }
    }

    fn add(
        &mut self,
        acc: &mut LogsPartial,
        batch: EnrichedBatch,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        let parsed = &batch.parsed;
        let first_line = info.first_line;
        if acc.lines == 0 {
            SPARE_KEYS.with(|spares| {
                let [methods, paths, clients] = &mut *spares.borrow_mut();
                acc.methods.adopt(methods);
                acc.paths.adopt(paths);
                acc.clients.adopt(clients);
            });
        }
        acc.lines += parsed.lines.len() as u64;
        acc.rejected += parsed.rejected.len() as u64;
        acc.directives += parsed.directives as u64;
        acc.parsed += parsed.dropped as u64;
        acc.dropped += parsed.dropped as u64;
        for &i in &parsed.rejected {
            let line_no = first_line + i as u64;
            if acc.rejected_samples.len() < REJECTED_SAMPLES {
                acc.rejected_samples.push(line_no);
                let raw = parsed.lines.line(i as usize);
                acc.rejected_lines.push(serde_bytes::ByteBuf::from(
                    raw[..raw.len().min(KEPT_LINE_BYTES)].to_vec(),
                ));
            }
            if self.emit_records {
                write_reject(&mut acc.rejects_out, line_no, parsed.lines.line(i as usize));
            }
        }
        if acc.status.is_empty() && !parsed.records.is_empty() {
            acc.status = vec![0; 1000];
        }
        // Consecutive lines mostly share an hour: count runs before touching the maps.
        let mut hour_run: Option<(i64, u64)> = None;
        let mut run_bytes = 0u128;
        // Keys repeat within a batch far more than lines differ: paths,
        // referers and (hour, client) pairs are counted per batch under
        // keys borrowed from the batch (one hash per line, no allocation),
        // and go to the partial's maps once per distinct key at the end.
        let mut batch_paths: FxHashMap<&[u8], (u64, PathStats)> = FxHashMap::default();
        let mut batch_referers: FxHashMap<&[u8], u64> = FxHashMap::default();
        let mut batch_clients: FxHashMap<(i64, &[u8]), u64> = FxHashMap::default();
        let mut families: Vec<u64> = Vec::new();
        let methods = acc.methods.map_mut();
        for (r, e) in parsed.records.iter().zip(&batch.enriched) {
            acc.parsed += 1;
            acc.bytes += r.bytes as u128;
            acc.bots += e.bot as u64;
            acc.status[r.status as usize % 1000] += 1;
            acc.status_class_bytes[e.status_class as usize % 10] += r.bytes as u128;
            bump_map(methods, parsed.bytes(r.method), 1);
            let path = parsed.bytes(r.path);
            let (hits, stats) = batch_paths.entry(path).or_default();
            *hits += 1;
            stats.add(r.status, r.bytes);
            if let Some(referer) = r.referer {
                *batch_referers.entry(parsed.bytes(referer)).or_insert(0) += 1;
            }
            if e.ua_family != NO_FAMILY {
                let id = e.ua_family as usize;
                if families.len() <= id {
                    families.resize(id + 1, 0);
                }
                families[id] += 1;
            }
            if let Some(v) = r.vhost {
                acc.vhosts.bump(parsed.bytes(v), 1);
            }
            if let Some(us) = r.latency_us {
                acc.latency.record(us);
                match acc.path_latency.get_mut(path) {
                    Some(h) => h.record(us),
                    None => {
                        let mut h = Histogram::default();
                        h.record(us);
                        acc.path_latency.insert(path.into(), h);
                    }
                }
            }
            *batch_clients
                .entry((e.hour, parsed.bytes(r.client)))
                .or_insert(0) += 1;
            hour_run = match hour_run {
                Some((h, n)) if h == e.hour => Some((h, n + 1)),
                Some((h, n)) => {
                    *acc.hours.entry(h).or_insert(0) += n;
                    let t = acc.traffic.entry(h).or_default();
                    t.requests += n;
                    t.bytes += std::mem::take(&mut run_bytes);
                    Some((e.hour, 1))
                }
                None => Some((e.hour, 1)),
            };
            run_bytes += u128::from(r.bytes);
            if self.emit_records {
                write_record(
                    &mut acc.records_out,
                    first_line + r.index as u64,
                    parsed,
                    r,
                    e,
                );
            }
        }
        if let Some((h, n)) = hour_run {
            *acc.hours.entry(h).or_insert(0) += n;
            let t = acc.traffic.entry(h).or_default();
            t.requests += n;
            t.bytes += run_bytes;
        }
        let paths = acc.paths.map_mut();
        for (path, (hits, stats)) in batch_paths {
            bump_map(paths, path, hits);
            match acc.path_stats.get_mut(path) {
                // Counted here, in this process: cannot overflow.
                Some(mine) => {
                    let _ = mine.checked_merge(stats);
                }
                None => {
                    acc.path_stats.insert(path.into(), stats);
                }
            }
        }
        let mut scratch = Vec::new();
        for (raw, n) in batch_referers {
            referrer_key(raw, &mut scratch);
            acc.referrers.bump(&scratch, n);
        }
        let clients = acc.clients.map_mut();
        for ((hour, client), n) in batch_clients {
            bump_map(clients, client, n);
            if let Some(t) = acc.traffic.get_mut(&hour) {
                t.clients.insert(client_hash(client));
            }
        }
        for_each_family(&families, |class, n| match class {
            UaClass::Crawler(name) => acc.crawlers.bump(name.as_bytes(), n),
            UaClass::Browser { name, os } => {
                acc.browsers.bump(name.as_bytes(), n);
                acc.systems.bump(os.as_bytes(), n);
            }
        });
        if !acc.custom.is_empty() {
            acc.custom.count(&batch);
        }
        self.pool.give(batch.parsed.lines);
        Ok(())
    }

    fn merge(&self, acc: &mut LogsPartial, later: LogsPartial) {
        acc.merge(later);
    }

    fn try_merge(&self, acc: &mut LogsPartial, later: LogsPartial) -> Result<(), StageError> {
        acc.try_merge(later).map_err(StageError::new)
    }

    /// Yes, unless records are emitted: their rendered lines hold the
    /// line numbers as text.
    fn renumbers(&self) -> bool {
        !self.emit_records
    }

    fn renumber(&self, acc: &mut LogsPartial, lines_before: u64) -> Result<(), StageError> {
        for line in &mut acc.rejected_samples {
            *line = line.checked_add(lines_before).ok_or_else(|| {
                StageError::new(format!("rejected line {line} + {lines_before} overflows"))
            })?;
        }
        Ok(())
    }

    /// A worker's partial of a chunk: its lines are the chunk's, every
    /// line parsed or rejected, the kept lines counted once in each of the
    /// status, method and hour tables, and its rejected samples the first
    /// rejected lines' numbers, ascending, inside the chunk; it counts no
    /// custom dimension but the declared ones.
    fn check_chunk(
        &self,
        acc: &LogsPartial,
        first_line: u64,
        records: u64,
    ) -> Result<(), StageError> {
        acc.check_chunk(first_line, records)
            .and_then(|()| acc.custom.check_declared(&self.dimensions))
            .map_err(StageError::new)
    }

    fn seal(&mut self, acc: &mut LogsPartial) {
        let sealed = [acc.methods.seal(), acc.paths.seal(), acc.clients.seal()];
        SPARE_KEYS.with(|spares| *spares.borrow_mut() = sealed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_moves_rejected_lines_and_refuses_overflow() {
        let agg = LogsMetrics::default();
        assert!(agg.renumbers());
        let mut p = LogsPartial {
            rejected_samples: vec![1, 7],
            ..LogsPartial::default()
        };
        agg.renumber(&mut p, 1000).unwrap();
        assert_eq!(p.rejected_samples, vec![1001, 1007]);
        assert!(agg.renumber(&mut p, u64::MAX).is_err());
        let emitting = LogsMetrics {
            emit_records: true,
            ..LogsMetrics::default()
        };
        assert!(
            !emitting.renumbers(),
            "rendered records hold line numbers as text"
        );
    }

    /// Four lines from line 101: one rejected (103), three parsed, one of
    /// them dropped by a plugged-in stage.
    fn chunk_partial() -> LogsPartial {
        let mut p = LogsPartial {
            lines: 4,
            parsed: 3,
            dropped: 1,
            rejected: 1,
            rejected_samples: vec![103],
            bots: 1,
            status: vec![0; 1000],
            ..LogsPartial::default()
        };
        p.status[200] = 2;
        p.methods.bump(b"GET", 2);
        p.hours.insert(480_000, 2);
        p.traffic.entry(480_000).or_default().requests = 2;
        p
    }

    #[test]
    fn a_chunk_partial_must_account_for_exactly_its_lines() {
        let good = chunk_partial();
        good.check_chunk(101, 4).unwrap();
        assert!(good.check_chunk(101, 5).unwrap_err().contains("4 lines"));
        // Its rejected line must lie inside the chunk.
        assert!(good.check_chunk(104, 4).is_err());
        assert!(good.check_chunk(1, 4).is_err());
        type Alteration = (&'static str, fn(&mut LogsPartial));
        let altered: [Alteration; 10] = [
            ("more lines", |p| p.lines += 1),
            ("more parsed", |p| p.parsed += 1),
            ("more dropped than parsed", |p| p.dropped = 4),
            ("a status more", |p| p.status[404] += 1),
            ("a method more", |p| p.methods.bump(b"POST", 1)),
            ("an hour more", |p| *p.hours.entry(7).or_insert(0) += 1),
            ("an hourly request more", |p| {
                p.traffic.entry(7).or_default().requests += 1
            }),
            ("more bots than kept", |p| p.bots = 3),
            ("a sample too many", |p| p.rejected_samples.push(104)),
            ("a sample out of order", |p| {
                p.rejected += 1;
                p.parsed -= 1;
                p.dropped -= 1;
                p.status[200] -= 1;
                p.methods = Counts::default();
                p.methods.bump(b"GET", 1);
                p.hours.insert(480_000, 1);
                p.traffic.entry(480_000).or_default().requests = 1;
                p.rejected_samples = vec![104, 102];
            }),
        ];
        for (what, alter) in altered {
            let mut p = good.clone();
            alter(&mut p);
            assert!(p.check_chunk(101, 4).is_err(), "{what}");
        }
        // An uncounted chunk: the worker numbers its lines from 1.
        let mut p = good;
        p.rejected_samples = vec![3];
        p.check_chunk(1, 4).unwrap();
    }

    #[test]
    fn partials_round_trip() {
        let mut p = LogsPartial {
            lines: 3,
            ..LogsPartial::default()
        };
        p.clients.bump(b"1.2.3.4", 2);
        p.paths.bump("/caf\u{e9}".as_bytes(), 1);
        p.methods.bump(b"", 7);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&p, config).unwrap();
        let (back, used): (LogsPartial, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!((back, used), (p.clone(), bytes.len()));
    }
}
