//! The grid's Markdown tables ([`render`]): every configuration measured,
//! then the verdicts.

use super::choose::{paired, walls};
use super::GridResults;
use crate::bench::table::median;
use crate::bench::Column;
use std::fmt::Write as _;

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
