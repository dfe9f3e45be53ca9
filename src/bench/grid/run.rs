//! Running the grid search ([`BenchPlan::run_grid`]): serial, the bound and
//! every configuration interleaved in each round, every summary checked
//! against serial's.

use super::{choose, GridResults, GridSample};
use super::{default_grid, GridConfig};
use crate::bench::child::Outcome;
use crate::bench::{BenchPlan, BenchWorkload, Column};
use crate::mode::Mode;
use anyhow::bail;

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
