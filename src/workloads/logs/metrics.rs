//! The `logs` aggregate (docs/logs-workload.md §4): [`LogsPartial`], the
//! mergeable partial, and [`Summary`], the final `summary.json`. With
//! `--emit-records` the partial also carries each batch's rendered
//! `records.jsonl` and `rejects.txt` lines, which the sink streams out.

use super::counts::Counts;
use super::dims::{PathStats, Traffic};
use super::latency::Histogram;
use super::tags::CustomCounts;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

// This file holds the partial's fields and the summary's options.
mod aggregate; // `LogsMetrics`: counting a batch into a partial
mod merge; // folding partials, checking those from other processes
mod summary; // a partial's `Summary`
#[cfg(test)]
mod tests;

pub use aggregate::LogsMetrics;
pub(crate) use merge::Overflow;
pub use summary::Summary;

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
    /// Their raw bytes (each cut at
    /// [`KEPT_LINE_BYTES`](super::rejection::KEPT_LINE_BYTES)), for the
    /// message of a run that rejects most lines.
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
