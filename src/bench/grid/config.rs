//! The grid itself: the configurations of each parallel mode that
//! `--grid` runs ([`default_grid`]), fixed knobs then the automatic one.

use crate::bench::{BenchWorkload, Column};
use crate::mode::Mode;
use serde::{Deserialize, Serialize};

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
