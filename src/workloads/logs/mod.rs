//! The built-in `logs` workload (docs/logs-workload.md): read or generate
//! access-log lines, parse, enrich, aggregate, write `summary.json`.
//!
//! `read|generate → parse → enrich → metrics → write`.

pub mod builder;
#[cfg(test)]
mod dims_props;
pub mod format;
pub mod metrics;
mod snapshots;
pub mod stages;
pub mod tags;

// The workload's own machinery (public only with the `internals` feature).
internal_modules!(
    generate, report, zone, counts, dims, distinct, latency, parse, rejection, render, sink,
    source, time
);

pub use crate::sources::stop_following;
pub use builder::{builder, LogsBuilder};
pub use generate::Generator;
pub use rejection::KEPT_LINE_BYTES;

use crate::pipeline::Pipeline;
use crate::sources::InputSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The registry name of this workload.
pub const NAME: &str = "logs";

/// Where the lines come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogsInput {
    /// The built-in generator.
    Generate {
        /// Number of lines.
        records: u64,
        /// Generator seed.
        seed: u64,
    },
    /// Files (or `-` for standard input), read in order.
    Files(Vec<InputSpec>),
}

/// Parameters of a `logs` run. They cross the wire to workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsParams {
    /// The input.
    pub input: LogsInput,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Also write `records.jsonl` and `rejects.txt`.
    pub emit_records: bool,
    /// Rewrite `summary.json` of everything read so far while the run goes
    /// on (`--snapshot-every`); `None`: only at the end.
    #[serde(default)]
    pub snapshot: Option<SnapshotPlan>,
    /// How long a batch of standard input or of a followed file waits for
    /// more lines once it has its first one, in milliseconds (`--max-batch-delay`): then it leaves
    /// partial, so a slow stream still flows.
    #[serde(default = "default_batch_delay_ms")]
    pub max_batch_delay_ms: u64,
    /// How lines are read (`--log-format`, docs/log-formats.md).
    #[serde(default)]
    pub format: format::LogFormat,
    /// The largest share of rejected lines a run may have before it fails,
    /// in millionths (`--max-rejected-ratio`; default 90 %).
    #[serde(default = "default_max_rejected_ppm")]
    pub max_rejected_ppm: u32,
    /// `--top`, `--tz` and `--client-from` (docs/logs-workload.md §4a).
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// Where a line's client comes from (`--client-from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrom {
    /// The remote address field (the default).
    #[default]
    Remote,
    /// The first address of the X-Forwarded-For field, when a line has one.
    ForwardedFor,
}

/// The options of the dimensions added to the original contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    /// Entries per top list (`--top`); 0 for all.
    pub top: usize,
    /// The zone of the time buckets (`--tz`): `UTC`, an IANA name or `±HH:MM`.
    pub time_zone: String,
    /// Where the client comes from (`--client-from`).
    pub client_from: ClientFrom,
}

impl Default for Dimensions {
    fn default() -> Self {
        Dimensions {
            top: metrics::TOP_N,
            time_zone: "UTC".into(),
            client_from: ClientFrom::Remote,
        }
    }
}

fn default_max_rejected_ppm() -> u32 {
    rejection::DEFAULT_MAX_REJECTED_PPM
}

fn default_batch_delay_ms() -> u64 {
    crate::sources::Lines::DEFAULT_BATCH_DELAY.as_millis() as u64
}

/// Where and how often a long run rewrites its `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPlan {
    /// The directory the user reads (the run's own outputs are staged
    /// elsewhere until it ends).
    pub dir: PathBuf,
    /// Milliseconds between two snapshots.
    pub every_ms: u64,
    /// The input may pause (`--follow`): a snapshot is also written once
    /// the interval has passed after the last batch, not only at a batch.
    #[serde(default)]
    pub trailing: bool,
}

/// Builds the `logs` pipeline (with no extra stage: see [`builder()`]).
pub fn pipeline(params: LogsParams) -> Pipeline<()> {
    builder().build(params)
}
