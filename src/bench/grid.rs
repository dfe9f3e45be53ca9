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

use super::child::Outcome;
use super::table::median;
use super::{BenchPlan, BenchWorkload, Column};
use crate::mode::Mode;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One configuration of a parallel mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridConfig {
    /// `pipeline` or `multiprocess`.
    pub column: Column,
    /// The flags given to `parpipe run` (empty for multiprocess's automatic one).
    pub args: Vec<String>,
    /// True for the automatic configuration.
    pub automatic: bool,
}

impl GridConfig {
    /// The flags as one string, or `(no knobs)`.
    pub fn label(&self) -> String {
        if self.args.is_empty() {
            "(no knobs)".into()
        } else {
            self.args.join(" ")
        }
    }
}

/// The stages that `--replicas` can replicate in each workload.
fn replicable_stages(workload: BenchWorkload) -> &'static [&'static str] {
    match workload {
        BenchWorkload::Logs => &["parse", "enrich"],
        BenchWorkload::Matrix => &["multiply"],
    }
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

/// The default grid for a workload on `cores` cores, whose default batch
/// size is `batch`: batch sizes batch/4, batch, 4×batch; pipeline replicas
/// none, each stage alone at 2..=cores, and every stage at `cores`; queue
/// depths 2 and 8; multiprocess inflight 1, 2, 4 and workers cores and
/// 2×cores. Then the automatic configurations.
pub fn default_grid(
    workload: BenchWorkload,
    modes: &[Mode],
    cores: usize,
    batch: usize,
) -> Vec<GridConfig> {
    let cores = cores.max(1);
    let mut batches = vec![(batch / 4).max(1), batch.max(1), batch.max(1) * 4];
    batches.dedup();
    let stages = replicable_stages(workload);
    let mut replicas: Vec<Vec<(&str, String)>> = vec![Vec::new()];
    for stage in stages {
        for n in 2..=cores {
            replicas.push(vec![("replicas", format!("{stage}={n}"))]);
        }
    }
    if stages.len() > 1 && cores > 1 {
        replicas.push(
            stages
                .iter()
                .map(|s| ("replicas", format!("{s}={cores}")))
                .collect(),
        );
    }
    let mut workers = vec![cores, cores * 2];
    workers.dedup();
    let mut grid = Vec::new();
    if modes.contains(&Mode::Pipelined) {
        for r in &replicas {
            for &b in &batches {
                for q in [2, 8] {
                    let mut pairs = r.clone();
                    pairs.push(("batch-size", b.to_string()));
                    pairs.push(("queue-depth", q.to_string()));
                    grid.push(GridConfig {
                        column: Column::Pipeline,
                        args: flags(&pairs),
                        automatic: false,
                    });
                }
            }
        }
        grid.push(GridConfig {
            column: Column::Pipeline,
            args: flags(&[("replicas", "auto".into())]),
            automatic: true,
        });
    }
    if modes.contains(&Mode::Multiprocess) {
        for &b in &batches {
            for inflight in [1, 2, 4] {
                for &w in &workers {
                    grid.push(GridConfig {
                        column: Column::Multiprocess,
                        args: flags(&[
                            ("batch-size", b.to_string()),
                            ("inflight", inflight.to_string()),
                            ("workers", w.to_string()),
                        ]),
                        automatic: false,
                    });
                }
            }
        }
        grid.push(GridConfig {
            column: Column::Multiprocess,
            args: Vec::new(),
            automatic: true,
        });
    }
    grid
}

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

/// The runs of one (workload, size, column, config) as (round, wall).
fn walls(s: &[GridSample], w: BenchWorkload, size: u64, c: Column, cfg: &str) -> Vec<(usize, f64)> {
    s.iter()
        .filter(|x| x.workload == w && x.size == size && x.column == c && x.config == cfg)
        .map(|x| (x.rep, x.wall_seconds))
        .collect()
}

/// Median over rounds of wall(slow) ÷ wall(fast), pairing the same round.
fn paired(slow: &[(usize, f64)], fast: &[(usize, f64)]) -> Option<f64> {
    let ratios: Vec<f64> = fast
        .iter()
        .filter_map(|&(rep, f)| {
            let &(_, s) = slow.iter().find(|(r, _)| *r == rep)?;
            (f > 0.0).then(|| s / f)
        })
        .collect();
    median(&ratios)
}

/// The verdicts of every workload, size and parallel mode in `samples`.
pub fn choose(results: &GridResults) -> Vec<GridChoice> {
    let s = &results.samples;
    let mut out = Vec::new();
    for &w in &results.workloads {
        for &size in &results.sizes {
            let serial = walls(s, w, size, Column::Serial, "");
            let bound = walls(s, w, size, Column::Bound, "");
            for column in [Column::Pipeline, Column::Multiprocess] {
                let mut configs: Vec<(String, bool)> = Vec::new();
                for x in s.iter().filter(|x| x.workload == w && x.size == size) {
                    if x.column == column && !configs.iter().any(|(c, _)| *c == x.config) {
                        configs.push((x.config.clone(), x.automatic));
                    }
                }
                let score = |cfg: &str| paired(&serial, &walls(s, w, size, column, cfg));
                let best = configs
                    .iter()
                    .filter(|(_, auto)| !auto)
                    .filter_map(|(c, _)| Some((c, score(c)?)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                let auto = configs
                    .iter()
                    .find(|(_, auto)| *auto)
                    .and_then(|(c, _)| Some((c, score(c)?)));
                let (Some((best, best_x)), Some((auto, auto_x))) = (best, auto) else {
                    continue;
                };
                let best_walls = walls(s, w, size, column, best);
                let auto_walls = walls(s, w, size, column, auto);
                out.push(GridChoice {
                    workload: w,
                    size,
                    column,
                    best: best.clone(),
                    best_over_serial: best_x,
                    best_of_bound: paired(&bound, &best_walls),
                    automatic: auto.clone(),
                    automatic_over_serial: auto_x,
                    automatic_of_bound: paired(&bound, &auto_walls),
                    automatic_over_best: paired(&best_walls, &auto_walls).unwrap_or(f64::NAN),
                });
            }
        }
    }
    out
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

/// The grid's tables, as Markdown: per workload and size, every
/// configuration (best first within each mode), then the verdicts.
pub fn render(results: &GridResults) -> String {
    let mut t = String::new();
    let s = &results.samples;
    for &w in &results.workloads {
        for &size in &results.sizes {
            let serial = walls(s, w, size, Column::Serial, "");
            let bound = walls(s, w, size, Column::Bound, "");
            let _ = writeln!(
                t,
                "\n{} at {size} — grid search, {} rounds after a warm-up, {} cores; \
                 bound: {} serial processes on 1/{} each (bound × serial: {})\n",
                w.as_str(),
                results.repeat,
                results.cores,
                results.bound_ways,
                results.bound_ways,
                opt(paired(&serial, &bound))
            );
            let _ = writeln!(
                t,
                "| mode | configuration | median s | × serial | of bound | CPU % |"
            );
            let _ = writeln!(t, "| --- | --- | ---: | ---: | ---: | ---: |");
            for column in [Column::Pipeline, Column::Multiprocess] {
                let mut rows: Vec<(String, bool, Option<f64>)> = Vec::new();
                for x in s
                    .iter()
                    .filter(|x| x.workload == w && x.size == size && x.column == column)
                {
                    if !rows.iter().any(|r| r.0 == x.config) {
                        let fast = walls(s, w, size, column, &x.config);
                        rows.push((x.config.clone(), x.automatic, paired(&serial, &fast)));
                    }
                }
                rows.sort_by(|a, b| b.2.unwrap_or(0.0).total_cmp(&a.2.unwrap_or(0.0)));
                for (cfg, auto, over) in rows {
                    let mine = walls(s, w, size, column, &cfg);
                    let wall = median(&mine.iter().map(|x| x.1).collect::<Vec<_>>());
                    let cpu = median(
                        &s.iter()
                            .filter(|x| {
                                x.workload == w
                                    && x.size == size
                                    && x.column == column
                                    && x.config == cfg
                            })
                            .map(|x| x.cpu_percent)
                            .collect::<Vec<_>>(),
                    );
                    let note = if auto { " (automatic)" } else { "" };
                    let _ = writeln!(
                        t,
                        "| {column} | `{cfg}`{note} | {} | {} | {} | {} |",
                        wall.map_or("–".into(), |v| format!("{v:.3}")),
                        opt(over),
                        opt(paired(&bound, &mine)),
                        cpu.map_or("–".into(), |v| format!("{v:.0}"))
                    );
                }
            }
            let _ = writeln!(t);
            let _ = writeln!(
                t,
                "| mode | best fixed | × serial | of bound | automatic | × serial | of bound | automatic / best |"
            );
            let _ = writeln!(t, "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |");
            for c in results
                .choices
                .iter()
                .filter(|c| c.workload == w && c.size == size)
            {
                let _ = writeln!(
                    t,
                    "| {} | `{}` | {:.2} | {} | `{}` | {:.2} | {} | {:.2} |",
                    c.column,
                    c.best,
                    c.best_over_serial,
                    opt(c.best_of_bound),
                    c.automatic,
                    c.automatic_over_serial,
                    opt(c.automatic_of_bound),
                    c.automatic_over_best
                );
            }
        }
    }
    t
}

/// Default batch size of a workload in the bench.
fn default_batch(plan: &BenchPlan, workload: BenchWorkload) -> usize {
    match workload {
        BenchWorkload::Logs => 8192,
        BenchWorkload::Matrix => crate::workloads::matrix::default_batch(plan.matrix_size),
    }
}

impl BenchPlan {
    /// Runs the grid search over the plan's workloads and sizes.
    pub fn run_grid(&self) -> anyhow::Result<GridResults> {
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        if self.bound_ways == 0 {
            bail!("--bound-ways must be at least 1");
        }
        std::fs::create_dir_all(&self.out)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut results = GridResults {
            cores,
            bound_ways: self.bound_ways,
            repeat: self.repeat,
            workloads: self.workloads.clone(),
            sizes: self.sizes.clone(),
            samples: Vec::new(),
            choices: Vec::new(),
        };
        for &workload in &self.workloads {
            let grid = default_grid(workload, &self.modes, cores, default_batch(self, workload));
            if grid.is_empty() {
                bail!("--grid needs pipeline or multiprocess among --modes");
            }
            for &size in &self.sizes {
                let input = self.generate_input(workload, size)?;
                let mut parts = self.bound_parts(workload, size, &input)?;
                let mut reference = None;
                // Warm-up: serial (the reference), the bound, the automatic ones.
                self.grid_run(workload, size, None, &input, &mut reference)?;
                self.run_bound(workload, size, 0, &mut parts)?;
                for cfg in grid.iter().filter(|c| c.automatic) {
                    self.grid_run(workload, size, Some(cfg), &input, &mut reference)?;
                }
                for rep in 0..self.repeat {
                    let (wall, cpu) =
                        self.grid_run(workload, size, None, &input, &mut reference)?;
                    results.samples.push(GridSample {
                        workload,
                        size,
                        column: Column::Serial,
                        config: String::new(),
                        automatic: false,
                        rep,
                        wall_seconds: wall,
                        cpu_percent: cpu,
                    });
                    let b = self.run_bound(workload, size, rep, &mut parts)?;
                    results.samples.push(GridSample {
                        workload,
                        size,
                        column: Column::Bound,
                        config: String::new(),
                        automatic: false,
                        rep,
                        wall_seconds: b.wall_seconds,
                        cpu_percent: b.cpu_percent,
                    });
                    // A different start each round, so no configuration
                    // always runs right after the bound or serial.
                    let mut order: Vec<&GridConfig> = grid.iter().collect();
                    let n = order.len();
                    order.rotate_left(rep * 7 % n);
                    for cfg in order {
                        let (wall, cpu) =
                            self.grid_run(workload, size, Some(cfg), &input, &mut reference)?;
                        results.samples.push(GridSample {
                            workload,
                            size,
                            column: cfg.column,
                            config: cfg.label(),
                            automatic: cfg.automatic,
                            rep,
                            wall_seconds: wall,
                            cpu_percent: cpu,
                        });
                    }
                    self.note(format_args!(
                        "{} {size} grid round {}/{}: {} runs",
                        workload.as_str(),
                        rep + 1,
                        self.repeat,
                        n + 2
                    ));
                }
            }
        }
        results.choices = choose(&results);
        Ok(results)
    }

    /// One serial run (`cfg` = None) or one grid configuration; checks the
    /// summary against serial's and returns (wall, CPU %).
    fn grid_run(
        &self,
        workload: BenchWorkload,
        size: u64,
        cfg: Option<&GridConfig>,
        input: &std::path::Path,
        reference: &mut Option<String>,
    ) -> anyhow::Result<(f64, f64)> {
        let (mode, args, label) = match cfg {
            None => (Mode::Serial, Vec::new(), "serial".to_string()),
            Some(c) => {
                let mode = c.column.mode().unwrap_or(Mode::Serial);
                (mode, c.args.clone(), format!("{} {}", c.column, c.label()))
            }
        };
        let dir = self.out.join("runs").join(format!(
            "{}-{size}-grid-{}",
            workload.as_str(),
            mode.as_str()
        ));
        let cmd = self.mode_command(workload, mode, size, input, &args);
        let what = format!("{} {label} at {size}", workload.as_str());
        match self.run_command(cmd, &dir, what.clone())? {
            Outcome::Unavailable(reason) => bail!("{what}: not available ({reason})"),
            Outcome::Measured(report, summary) => {
                match reference {
                    None => *reference = Some(summary),
                    Some(r) if *r == summary => {}
                    Some(_) => bail!("{what}: summary.json differs from serial's"),
                }
                Ok((report.wall_seconds, report.total_cpu()))
            }
        }
    }
}

/// Writes `grid.json` into `out` and returns the tables.
pub fn write_outputs(results: &GridResults, out: &std::path::Path) -> anyhow::Result<String> {
    let json = serde_json::to_string_pretty(results)?;
    crate::outputs::write_atomic(&out.join("grid.json"), (json + "\n").as_bytes())?;
    Ok(render(results))
}

#[cfg(test)]
#[path = "grid_tests.rs"]
mod tests;
