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

pub mod baseline;
pub mod bound;
pub mod chart;
mod child;
pub mod grid;
pub mod table;

use crate::mode::Mode;
use anyhow::{bail, Context as _};
use child::Outcome;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Parses `25000,50k,1M` into sizes (sorted, deduplicated, all ≥ 1).
pub fn parse_sizes(text: &str) -> Result<Vec<u64>, String> {
    let mut sizes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase().replace('_', "");
        let (digits, factor) = match lower.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => match lower.strip_suffix('m') {
                Some(d) => (d, 1_000_000),
                None => (lower.as_str(), 1),
            },
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("'{part}' is not a size (use e.g. 25000, 50k or 1M)"))?;
        let n = n
            .checked_mul(factor)
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("size '{part}' is out of range"))?;
        sizes.push(n);
    }
    if sizes.is_empty() {
        return Err("no size given".into());
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// Parses `serial,pipeline,multiprocess` into modes (deduplicated, in the
/// order given).
pub fn parse_modes(text: &str) -> Result<Vec<Mode>, String> {
    let mut modes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mode = match part.to_ascii_lowercase().as_str() {
            "serial" => Mode::Serial,
            "pipeline" => Mode::Pipelined,
            "multiprocess" => Mode::Multiprocess,
            _ => {
                return Err(format!(
                    "unknown mode '{part}' (serial, pipeline, multiprocess)"
                ))
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    if modes.is_empty() {
        return Err("no mode given".into());
    }
    Ok(modes)
}

/// True when `parpipe run --workload W` is accepted by this binary (the
/// `matrix` workload joins `--workload all` once it exists).
pub fn workload_available(exe: &Path, workload: BenchWorkload, scratch: &Path) -> bool {
    if workload == BenchWorkload::Logs {
        return true;
    }
    let out = scratch.join(format!("probe-{}", workload.as_str()));
    Command::new(exe)
        .args([
            "run",
            "--workload",
            workload.as_str(),
            "--records",
            "1",
            "-q",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl BenchPlan {
    /// True when the plan runs pipeline or multiprocess mode (`--grid`
    /// needs one).
    pub fn has_parallel_mode(&self) -> bool {
        self.modes.iter().any(|&m| m != Mode::Serial)
    }

    fn columns(&self) -> Vec<Column> {
        let mut cols: Vec<Column> = self.modes.iter().map(|&m| Column::of_mode(m)).collect();
        cols.sort();
        cols.extend([Column::Plain, Column::Rayon, Column::Bound]);
        cols
    }

    fn input_path(&self, workload: BenchWorkload, size: u64) -> PathBuf {
        self.out
            .join("inputs")
            .join(format!("{}-{size}.log", workload.as_str()))
    }

    /// Writes the generated input for one size (logs: seed 42).
    fn generate_input(&self, workload: BenchWorkload, size: u64) -> anyhow::Result<PathBuf> {
        let path = self.input_path(workload, size);
        if workload == BenchWorkload::Logs {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.out))?;
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create '{}'", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            crate::workloads::logs::generate::Generator::new(42, size).write_all(&mut out)?;
            std::io::Write::flush(&mut out)?;
        }
        Ok(path)
    }

    /// Runs one child of a mode or baseline column and reads its report
    /// and summary.
    fn run_child(
        &self,
        workload: BenchWorkload,
        column: Column,
        size: u64,
        input: &Path,
    ) -> anyhow::Result<Outcome> {
        let dir =
            self.out
                .join("runs")
                .join(format!("{}-{size}-{}", workload.as_str(), column.as_str()));
        let cmd = match column.mode() {
            Some(mode) => {
                // Pipeline mode at its best: measured replicas (README, "Pipeline mode").
                let extra: Vec<String> = if mode == Mode::Pipelined {
                    vec!["--replicas".into(), "auto".into()]
                } else {
                    Vec::new()
                };
                self.mode_command(workload, mode, size, input, &extra)
            }
            None => {
                let mut cmd = Command::new(&self.exe);
                cmd.args(["bench-baseline", "--workload", workload.as_str()])
                    .args(["--kind", column.as_str(), "--records", &size.to_string()])
                    .args(["--matrix-size", &self.matrix_size.to_string()])
                    .arg("--input")
                    .arg(input);
                cmd
            }
        };
        self.run_command(
            cmd,
            &dir,
            format!("{} {column} at {size}", workload.as_str()),
        )
    }

    /// Runs the whole plan.
    pub fn run(&self) -> anyhow::Result<BenchResults> {
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create '{}'", self.out.display()))?;
        if self.bound_ways == 0 {
            bail!("--bound-ways must be at least 1");
        }
        let columns = self.columns();
        let mut results = BenchResults {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bound_ways: self.bound_ways,
            repeat: self.repeat,
            workloads: self.workloads.clone(),
            sizes: self.sizes.clone(),
            columns: columns.clone(),
            unavailable: Vec::new(),
            samples: Vec::new(),
            ratios: Vec::new(),
        };
        for &workload in &self.workloads {
            let mut live = columns.clone();
            for &size in &self.sizes {
                let input = self.generate_input(workload, size)?;
                let mut parts = self.bound_parts(workload, size, &input)?;
                // Warm-up: one run per column, unrecorded; the plain
                // baseline's summary is the reference every run must match.
                let mut reference: Option<String> = None;
                let mut order = live.clone();
                let modes = order.iter().filter(|c| c.mode().is_some()).count();
                order.rotate_left(modes); // baselines first
                for column in order {
                    if column == Column::Bound {
                        self.run_bound(workload, size, 0, &mut parts)?;
                        continue;
                    }
                    match self.run_child(workload, column, size, &input)? {
                        Outcome::Unavailable(reason) => {
                            self.note(format_args!(
                                "{} {column}: n/a ({reason})",
                                workload.as_str()
                            ));
                            live.retain(|&c| c != column);
                            results.unavailable.push(Unavailable {
                                workload,
                                column,
                                reason,
                            });
                        }
                        Outcome::Measured(_, summary) => {
                            check_summary(&mut reference, summary, workload, column, size)?
                        }
                    }
                }
                for rep in 0..self.repeat {
                    for &column in &live {
                        let sample = if column == Column::Bound {
                            self.run_bound(workload, size, rep, &mut parts)?
                        } else {
                            let Outcome::Measured(report, summary) =
                                self.run_child(workload, column, size, &input)?
                            else {
                                bail!("{column} became unavailable during the bench");
                            };
                            check_summary(&mut reference, summary, workload, column, size)?;
                            report.sample(workload, size, column, rep)
                        };
                        self.note(format_args!(
                            "{} {size} {column} rep {}/{}: {:.3} s, {:.0} records/s",
                            workload.as_str(),
                            rep + 1,
                            self.repeat,
                            sample.wall_seconds,
                            sample.records_per_second()
                        ));
                        results.samples.push(sample);
                    }
                }
            }
        }
        results.ratios = table::mode_ratios(&results);
        Ok(results)
    }

    fn note(&self, line: fmt::Arguments<'_>) {
        if self.progress {
            eprintln!("bench: {line}");
        }
    }
}

/// A bench that measures a wrong answer is worthless: every summary must be
/// byte-identical to the first one seen for this workload and size.
fn check_summary(
    reference: &mut Option<String>,
    summary: String,
    workload: BenchWorkload,
    column: Column,
    size: u64,
) -> anyhow::Result<()> {
    match reference {
        None => *reference = Some(summary),
        Some(r) if *r == summary => {}
        Some(_) => bail!(
            "{} {column} at {size}: summary.json differs from the plain baseline's",
            workload.as_str()
        ),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_sorted_and_deduplicated() {
        assert_eq!(
            parse_sizes("1M, 25000,50k,100_000,25K").unwrap(),
            vec![25_000, 50_000, 100_000, 1_000_000]
        );
        assert!(parse_sizes("").is_err());
        // The caller adds the range (1 to 10^12); this names only the size.
        assert_eq!(parse_sizes("0").unwrap_err(), "size '0' is out of range");
        assert_eq!(
            parse_sizes("99999999999999M").unwrap_err(),
            "size '99999999999999M' is out of range"
        );
        assert!(parse_sizes("ten").is_err());
        assert!(parse_sizes("99999999999999999999m").is_err());
    }

    #[test]
    fn modes_parse_in_order_without_duplicates() {
        assert_eq!(
            parse_modes("pipeline,serial,pipeline").unwrap(),
            vec![Mode::Pipelined, Mode::Serial]
        );
        assert!(parse_modes("turbo").is_err());
        assert!(parse_modes(",").is_err());
    }

    #[test]
    fn columns_are_modes_in_table_order_then_baselines() {
        let plan = BenchPlan {
            workloads: vec![BenchWorkload::Logs],
            sizes: vec![10],
            modes: vec![Mode::Multiprocess, Mode::Serial],
            repeat: 1,
            out: PathBuf::new(),
            exe: PathBuf::new(),
            progress: false,
            matrix_size: 16,
            bound_ways: 2,
        };
        assert_eq!(
            plan.columns(),
            vec![
                Column::Serial,
                Column::Multiprocess,
                Column::Plain,
                Column::Rayon,
                Column::Bound
            ]
        );
    }

    #[test]
    fn a_different_summary_is_an_error() {
        let mut r = None;
        let w = BenchWorkload::Logs;
        check_summary(&mut r, "a".into(), w, Column::Plain, 1).unwrap();
        check_summary(&mut r, "a".into(), w, Column::Serial, 1).unwrap();
        assert!(check_summary(&mut r, "b".into(), w, Column::Rayon, 1).is_err());
    }
}
