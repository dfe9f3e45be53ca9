//! The verdicts of a grid search ([`choose`]): per mode, the best fixed
//! configuration and the automatic one, each over serial and as a fraction
//! of the bound, from ratios paired within a round.

use super::{GridChoice, GridResults, GridSample};
use crate::bench::table::median;
use crate::bench::{BenchWorkload, Column};

/// The runs of one (workload, size, column, config) as (round, wall).
pub(super) fn walls(
    s: &[GridSample],
    w: BenchWorkload,
    size: u64,
    c: Column,
    cfg: &str,
) -> Vec<(usize, f64)> {
    s.iter()
        .filter(|x| x.workload == w && x.size == size && x.column == c && x.config == cfg)
        .map(|x| (x.rep, x.wall_seconds))
        .collect()
}

/// Median over rounds of wall(slow) ÷ wall(fast), pairing the same round.
pub(super) fn paired(slow: &[(usize, f64)], fast: &[(usize, f64)]) -> Option<f64> {
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
