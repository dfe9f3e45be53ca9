//! `parpipe bench --grid`: for each workload and size, runs the parallel
//! modes over a grid of fixed knobs (pipeline: replicas per stage, batch
//! size, queue depth; multiprocess: batch size, inflight, workers) and the
//! automatic configuration (pipeline `--replicas auto`, multiprocess with
//! no knob), with serial and the bound in every round, all interleaved.
//! It reports the best fixed configuration, the automatic one and
//! automatic ÷ best (best wall ÷ automatic wall, paired within a round), so
//! anyone can check the defaults on their own machine.
//!
//! Every run's `summary.json` must equal serial's, as in the plain bench.

mod choose;
mod config;
mod render;
mod run;
#[cfg(test)]
mod tests;

pub use choose::choose;
pub use config::{default_grid, GridConfig};
pub use render::render;

use super::{BenchWorkload, Column};
use serde::{Deserialize, Serialize};

/// One measured run of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSample {
    /// The workload.
    pub workload: BenchWorkload,
    /// Input size.
    pub size: u64,
    /// `serial`, `bound`, `pipeline` or `multiprocess`.
    pub column: Column,
    /// The configuration's flags ([`GridConfig::label`]; empty for serial
    /// and the bound).
    pub config: String,
    /// True for an automatic configuration.
    pub automatic: bool,
    /// Round number, from 0.
    pub rep: usize,
    /// Wall time the run reported.
    pub wall_seconds: f64,
    /// CPU use (coordinator plus workers), in percent of one core.
    pub cpu_percent: f64,
}

/// One parallel mode's verdict at one workload and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridChoice {
    /// The workload.
    pub workload: BenchWorkload,
    /// Input size.
    pub size: u64,
    /// The parallel mode.
    pub column: Column,
    /// The fixed configuration with the highest median ratio over serial.
    pub best: String,
    /// Its median ratio over serial.
    pub best_over_serial: f64,
    /// Its fraction of the bound (median of per-round ratios).
    pub best_of_bound: Option<f64>,
    /// The automatic configuration.
    pub automatic: String,
    /// Its median ratio over serial.
    pub automatic_over_serial: f64,
    /// Its fraction of the bound.
    pub automatic_of_bound: Option<f64>,
    /// Best wall ÷ automatic wall, median of per-round ratios (1 = the
    /// automatic choice is as good as the best the grid found).
    pub automatic_over_best: f64,
}

/// Everything a grid search measured: the content of `grid.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridResults {
    /// Logical cores of the machine.
    pub cores: usize,
    /// Processes of the bound.
    pub bound_ways: usize,
    /// Measured rounds (after one warm-up of serial, the bound and the
    /// automatic configurations).
    pub repeat: usize,
    /// Workloads run.
    pub workloads: Vec<BenchWorkload>,
    /// Sizes run.
    pub sizes: Vec<u64>,
    /// Every raw sample.
    pub samples: Vec<GridSample>,
    /// The verdicts.
    pub choices: Vec<GridChoice>,
}

/// Writes `grid.json` into `out` and returns the tables.
pub fn write_outputs(results: &GridResults, out: &std::path::Path) -> anyhow::Result<String> {
    let json = serde_json::to_string_pretty(results)?;
    crate::outputs::write_atomic(&out.join("grid.json"), (json + "\n").as_bytes())?;
    Ok(render(results))
}
