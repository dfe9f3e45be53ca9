//! `parpipe bench`: runs each workload, size and mode as a child process of
//! the real binary, plus the two baselines ([`baseline`]), on the same
//! generated input, and records every sample ([`Sample`]). [`table`] turns
//! the samples into the table and ratios; [`chart`] draws `bench.svg`.
//!
//! Every column is measured alike: one child process per sample that
//! reports its own wall time, CPU % and peak RSS. Columns are interleaved
//! within each repetition, so machine noise hits all of them alike, and
//! every sample's `summary.json` must equal the plain baseline's.
//! A mode that `parpipe run` rejects as unavailable is shown as `n/a`.
//! Beside serial and the baselines, every repetition also runs the
//! machine's own bound ([`bound`]), and [`grid`] searches the parallel
//! modes' knobs (`parpipe bench --grid`).

mod args;
pub mod baseline;
pub mod bound;
pub mod chart;
mod child;
pub mod grid;
mod run;
pub mod table;
#[cfg(test)]
mod tests;

pub use args::{parse_modes, parse_sizes};
pub use run::workload_available;

use crate::mode::Mode;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A workload the bench knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchWorkload {
    /// Access-log analytics (docs/logs-workload.md).
    Logs,
    /// The CPU-bound matrix kernel (docs/matrix-workload.md).
    Matrix,
}

impl BenchWorkload {
    /// The name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchWorkload::Logs => "logs",
            BenchWorkload::Matrix => "matrix",
        }
    }
}

/// One column of the bench: a mode of `parpipe run`, or a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Column {
    /// `parpipe run --mode serial`.
    Serial,
    /// `parpipe run --mode pipeline`.
    Pipeline,
    /// `parpipe run --mode multiprocess`.
    Multiprocess,
    /// The plain single-threaded loop.
    Plain,
    /// The in-process rayon version.
    Rayon,
    /// The machine's bound: `bound_ways` serial processes at once, each on
    /// 1/N of the input ([`bound`]).
    Bound,
}

impl Column {
    /// The column's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Column::Serial => "serial",
            Column::Pipeline => "pipeline",
            Column::Multiprocess => "multiprocess",
            Column::Plain => "plain",
            Column::Rayon => "rayon",
            Column::Bound => "bound",
        }
    }

    /// The mode it runs, for a mode column.
    pub fn mode(self) -> Option<Mode> {
        match self {
            Column::Serial => Some(Mode::Serial),
            Column::Pipeline => Some(Mode::Pipelined),
            Column::Multiprocess => Some(Mode::Multiprocess),
            Column::Plain | Column::Rayon | Column::Bound => None,
        }
    }

    /// The column of a mode.
    pub fn of_mode(mode: Mode) -> Column {
        match mode {
            Mode::Serial => Column::Serial,
            Mode::Pipelined => Column::Pipeline,
            Mode::Multiprocess => Column::Multiprocess,
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The workload.
    pub workload: BenchWorkload,
    /// Input size (lines for `logs`).
    pub size: u64,
    /// The mode or baseline.
    pub column: Column,
    /// Repetition number, from 0.
    pub rep: usize,
    /// Wall time the run reported.
    pub wall_seconds: f64,
    /// Records processed.
    pub records: u64,
    /// CPU use (coordinator plus workers), in percent of one core.
    pub cpu_percent: f64,
    /// Peak resident memory (coordinator plus workers' peaks).
    pub peak_rss_bytes: u64,
    /// The mode ran this input inline, as serial mode does (the run's
    /// report gives the reason: too small for the engine to pay).
    #[serde(default)]
    pub inline: bool,
}

impl Sample {
    /// Records per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.wall_seconds.max(1e-9)
    }
}

/// A column that could not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unavailable {
    /// The workload.
    pub workload: BenchWorkload,
    /// The column.
    pub column: Column,
    /// The child's message.
    pub reason: String,
}

/// A parallel mode's medians of paired ratios at one workload and size,
/// as the table shows them (in `bench.json` under `ratios`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeRatios {
    /// The workload.
    pub workload: BenchWorkload,
    /// Input size.
    pub size: u64,
    /// The parallel mode.
    pub column: Column,
    /// Times faster than serial (median of per-repetition ratios).
    pub over_serial: Option<f64>,
    /// Fraction of the bound: bound wall ÷ mode wall, median of
    /// per-repetition ratios (1 = all the machine allowed).
    pub of_bound: Option<f64>,
}

/// Everything one `parpipe bench` run measured: the content of `bench.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    /// Logical cores of the machine.
    pub cores: usize,
    /// Processes of the bound column (`--bound-ways`, default: cores); 0
    /// in a `bench.json` written before the bound existed.
    #[serde(default)]
    pub bound_ways: usize,
    /// Measured repetitions per column (after one warm-up).
    pub repeat: usize,
    /// Workloads run.
    pub workloads: Vec<BenchWorkload>,
    /// Sizes run.
    pub sizes: Vec<u64>,
    /// Columns requested, in table order.
    pub columns: Vec<Column>,
    /// Columns shown as `n/a`.
    pub unavailable: Vec<Unavailable>,
    /// Every raw sample.
    pub samples: Vec<Sample>,
    /// Each parallel mode over serial and as a fraction of the bound, per
    /// workload and size (derived from `samples`).
    #[serde(default)]
    pub ratios: Vec<ModeRatios>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Workloads, in order.
    pub workloads: Vec<BenchWorkload>,
    /// Input sizes, ascending.
    pub sizes: Vec<u64>,
    /// Modes to run (the baselines always run).
    pub modes: Vec<Mode>,
    /// Measured repetitions per column.
    pub repeat: usize,
    /// Output directory (inputs, per-run outputs, bench.json, bench.svg).
    pub out: PathBuf,
    /// The `parpipe` binary to spawn.
    pub exe: PathBuf,
    /// Print one line per sample on stderr.
    pub progress: bool,
    /// Matrix size of the `matrix` workload (its sizes count tasks).
    pub matrix_size: usize,
    /// Processes of the bound column, ≥ 1 (default: cores).
    pub bound_ways: usize,
}

/// Writes `bench.json` and `bench.svg` into `out` and returns the table.
pub fn write_outputs(results: &BenchResults, out: &Path) -> anyhow::Result<String> {
    // Each whole or not at all (a failure leaves no temporary either).
    let json = serde_json::to_string_pretty(results)?;
    let svg = chart::render_svg(results)?;
    crate::outputs::write_atomic(&out.join("bench.json"), (json + "\n").as_bytes())?;
    crate::outputs::write_atomic(&out.join("bench.svg"), svg.as_bytes())?;
    Ok(table::render(results))
}
