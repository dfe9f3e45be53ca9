//! Running the plain bench: the input of each size, one child per sample
//! for every column in turn (warm-up, then the measured repetitions), and
//! the check that every sample's summary matches the plain baseline's.

use super::child::Outcome;
use super::{table, BenchPlan, BenchResults, BenchWorkload, Column, Unavailable};
use crate::mode::Mode;
use anyhow::{bail, Context as _};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

    pub(super) fn columns(&self) -> Vec<Column> {
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
    pub(super) fn generate_input(
        &self,
        workload: BenchWorkload,
        size: u64,
    ) -> anyhow::Result<PathBuf> {
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

    pub(super) fn note(&self, line: fmt::Arguments<'_>) {
        if self.progress {
            eprintln!("bench: {line}");
        }
    }
}

/// A bench that measures a wrong answer is worthless: every summary must be
/// byte-identical to the first one seen for this workload and size.
pub(super) fn check_summary(
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
