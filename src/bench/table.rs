//! The bench table: medians per column, and ratios computed pair by pair
//! within each repetition (both sides of a ratio ran back to back), then
//! the median of those ratios. Each parallel mode is also shown as a
//! fraction of the machine's bound (bound wall ÷ mode wall, paired alike).

use super::{BenchResults, BenchWorkload, Column, ModeRatios, Sample};
use std::fmt::Write as _;

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn walls(samples: &[Sample], w: BenchWorkload, size: u64, column: Column) -> Vec<(usize, f64)> {
    samples
        .iter()
        .filter(|s| s.workload == w && s.size == size && s.column == column)
        .map(|s| (s.rep, s.wall_seconds))
        .collect()
}

/// Median wall time of a column.
pub fn median_wall(samples: &[Sample], w: BenchWorkload, size: u64, column: Column) -> Option<f64> {
    let v: Vec<f64> = walls(samples, w, size, column)
        .into_iter()
        .map(|x| x.1)
        .collect();
    median(&v)
}

/// Median records/s of a column.
pub fn median_rate(samples: &[Sample], w: BenchWorkload, size: u64, column: Column) -> Option<f64> {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.workload == w && s.size == size && s.column == column)
        .map(Sample::records_per_second)
        .collect();
    median(&v)
}

/// How many times faster `fast` is than `slow`: the median over
/// repetitions of `wall(slow) / wall(fast)`, pairing samples of the same
/// repetition. With `fast` = a mode and `slow` = a baseline, this is the
/// mode's throughput as a fraction of the baseline's.
pub fn paired_ratio(
    samples: &[Sample],
    w: BenchWorkload,
    size: u64,
    slow: Column,
    fast: Column,
) -> Option<f64> {
    let slow_walls = walls(samples, w, size, slow);
    let ratios: Vec<f64> = walls(samples, w, size, fast)
        .into_iter()
        .filter_map(|(rep, f)| {
            let (_, s) = slow_walls.iter().find(|(r, _)| *r == rep)?;
            (f > 0.0).then(|| s / f)
        })
        .collect();
    median(&ratios)
}

/// Each parallel mode's ratio over serial and fraction of the bound, per
/// workload and size (the `ratios` of `bench.json`).
pub fn mode_ratios(results: &BenchResults) -> Vec<ModeRatios> {
    let mut out = Vec::new();
    for &workload in &results.workloads {
        for &size in &results.sizes {
            for column in [Column::Pipeline, Column::Multiprocess] {
                if !results.columns.contains(&column)
                    || median_wall(&results.samples, workload, size, column).is_none()
                {
                    continue;
                }
                let s = &results.samples;
                out.push(ModeRatios {
                    workload,
                    size,
                    column,
                    over_serial: paired_ratio(s, workload, size, Column::Serial, column),
                    of_bound: paired_ratio(s, workload, size, Column::Bound, column),
                });
            }
        }
    }
    out
}

fn cell(value: Option<f64>, unavailable: bool, fmt: impl Fn(f64) -> String) -> String {
    match value {
        Some(v) => fmt(v),
        None if unavailable => "n/a".into(),
        None => "–".into(),
    }
}

fn size_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} K", n / 1_000)
    } else {
        n.to_string()
    }
}

fn row(t: &mut String, cells: &[String]) {
    let _ = writeln!(t, "| {} |", cells.join(" | "));
}

/// The tables, as Markdown: per workload, the seed-style table (rows =
/// sizes; each column's median time, the parallel modes' speedups over
/// serial, serial as a fraction of the plain loop, each parallel mode as a
/// fraction of rayon, each parallel mode as a fraction of the bound), then
/// throughput, CPU and memory per column.
pub fn render(results: &BenchResults) -> String {
    let mut t = String::new();
    let s = &results.samples;
    let cols = &results.columns;
    let na = |w: BenchWorkload, c: Column| {
        results
            .unavailable
            .iter()
            .any(|u| u.workload == w && u.column == c)
    };
    let modes = [Column::Serial, Column::Pipeline, Column::Multiprocess];
    let parallel = [Column::Pipeline, Column::Multiprocess];
    let has_bound = cols.contains(&Column::Bound);
    for &w in &results.workloads {
        let _ = writeln!(
            t,
            "\n{} — median of {} runs after a warm-up, {} cores; times in seconds",
            w.as_str(),
            results.repeat,
            results.cores
        );
        if has_bound {
            let _ = writeln!(
                t,
                "(bound: {} serial processes at once on 1/{} of the input each; \
                 M / bound = bound time ÷ M's time, 1 = all the machine allowed)",
                results.bound_ways, results.bound_ways
            );
        }
        let _ = writeln!(t);
        let mut head = vec!["lines".to_string()];
        head.extend(cols.iter().map(|c| format!("{c} s")));
        let has = |c: Column| cols.contains(&c);
        let speedups: Vec<Column> = parallel.into_iter().filter(|&c| has(c)).collect();
        let with_serial = has(Column::Serial);
        if with_serial {
            head.extend(speedups.iter().map(|c| format!("{c} ×")));
            if has_bound {
                head.push("bound ×".into());
            }
            head.push("serial / plain".into());
        }
        head.extend(speedups.iter().map(|c| format!("{c} / rayon")));
        if has_bound {
            head.extend(speedups.iter().map(|c| format!("{c} / bound")));
        }
        row(&mut t, &head);
        row(&mut t, &vec!["---:".to_string(); head.len()]);
        for &size in &results.sizes {
            let mut cells = vec![size_label(size)];
            for &c in cols {
                cells.push(cell(median_wall(s, w, size, c), na(w, c), |v| {
                    format!("{v:.3}")
                }));
            }
            let ratio = |slow, fast: Column| {
                cell(paired_ratio(s, w, size, slow, fast), na(w, fast), |v| {
                    format!("{v:.2}")
                })
            };
            if with_serial {
                for &c in &speedups {
                    cells.push(ratio(Column::Serial, c));
                }
                if has_bound {
                    cells.push(ratio(Column::Serial, Column::Bound));
                }
                cells.push(ratio(Column::Plain, Column::Serial));
            }
            for &c in &speedups {
                cells.push(ratio(Column::Rayon, c));
            }
            if has_bound {
                for &c in &speedups {
                    cells.push(ratio(Column::Bound, c));
                }
            }
            row(&mut t, &cells);
        }
        let _ = writeln!(t);
        row(
            &mut t,
            &["lines", "column", "M lines/s", "CPU %", "peak RSS MiB"].map(String::from),
        );
        row(&mut t, &vec!["---:".to_string(); 5]);
        for &size in &results.sizes {
            for &c in cols.iter().filter(|&&c| !na(w, c)) {
                let mine: Vec<&Sample> = s
                    .iter()
                    .filter(|x| x.workload == w && x.size == size && x.column == c)
                    .collect();
                let cpu = median(&mine.iter().map(|x| x.cpu_percent).collect::<Vec<_>>());
                let rss = median(
                    &mine
                        .iter()
                        .map(|x| x.peak_rss_bytes as f64 / 1048576.0)
                        .collect::<Vec<_>>(),
                );
                let rate = median_rate(s, w, size, c);
                let f = |v: Option<f64>, d: usize| v.map_or("–".into(), |v| format!("{v:.d$}"));
                row(
                    &mut t,
                    &[
                        size_label(size),
                        c.to_string(),
                        f(rate.map(|r| r / 1e6), 2),
                        f(cpu, 0),
                        f(rss, 1),
                    ],
                );
            }
        }
        for &size in &results.sizes {
            for &c in &parallel {
                let runs = s
                    .iter()
                    .filter(|x| x.workload == w && x.size == size && x.column == c);
                let (inline, all) =
                    runs.fold((0, 0), |(i, a), x| (i + usize::from(x.inline), a + 1));
                if inline > 0 {
                    let _ = writeln!(
                        t,
                        "\n{c} at {} lines: {inline} of {all} runs ran inline, as serial \
                         mode does (too small for the engine to pay: report.json's plan)",
                        size_label(size)
                    );
                }
            }
        }
        for m in modes.iter().filter(|&&m| na(w, m)) {
            let _ = writeln!(t, "\n{m}: n/a (not available in this build)");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: u64, column: Column, rep: usize, wall: f64) -> Sample {
        Sample {
            workload: BenchWorkload::Logs,
            size,
            column,
            rep,
            wall_seconds: wall,
            records: size,
            cpu_percent: 100.0,
            peak_rss_bytes: 1 << 20,
            inline: false,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ratios_pair_samples_of_the_same_repetition() {
        let l = BenchWorkload::Logs;
        // Rep 0: the machine was slow for both; rep 1 fast for both.
        let s = vec![
            sample(100, Column::Serial, 0, 2.0),
            sample(100, Column::Pipeline, 0, 1.0),
            sample(100, Column::Serial, 1, 1.0),
            sample(100, Column::Pipeline, 1, 0.5),
            sample(100, Column::Serial, 2, 1.2),
            sample(100, Column::Pipeline, 2, 0.4),
        ];
        // Per-rep speedups 2, 2, 3 → median 2 (unpaired medians would give 1.2/0.5 = 2.4).
        assert_eq!(
            paired_ratio(&s, l, 100, Column::Serial, Column::Pipeline),
            Some(2.0)
        );
        assert_eq!(median_wall(&s, l, 100, Column::Serial), Some(1.2));
        assert_eq!(median_rate(&s, l, 100, Column::Pipeline), Some(200.0));
        assert_eq!(
            paired_ratio(&s, l, 100, Column::Rayon, Column::Pipeline),
            None
        );
    }

    #[test]
    fn table_has_times_speedups_fractions_and_n_a() {
        let mut samples = Vec::new();
        for rep in 0..3 {
            samples.push(sample(25_000, Column::Serial, rep, 1.0));
            samples.push(sample(25_000, Column::Pipeline, rep, 0.5));
            samples.push(sample(25_000, Column::Plain, rep, 0.95));
            samples.push(sample(25_000, Column::Rayon, rep, 0.4));
            samples.push(sample(25_000, Column::Bound, rep, 0.6));
        }
        let mut results = BenchResults {
            cores: 2,
            bound_ways: 2,
            repeat: 3,
            workloads: vec![BenchWorkload::Logs],
            sizes: vec![25_000],
            columns: vec![
                Column::Serial,
                Column::Pipeline,
                Column::Multiprocess,
                Column::Plain,
                Column::Rayon,
                Column::Bound,
            ],
            unavailable: vec![super::super::Unavailable {
                workload: BenchWorkload::Logs,
                column: Column::Multiprocess,
                reason: "not available".into(),
            }],
            samples,
            ratios: vec![],
        };
        results.ratios = mode_ratios(&results);
        assert_eq!(
            results.ratios,
            vec![ModeRatios {
                workload: BenchWorkload::Logs,
                size: 25_000,
                column: Column::Pipeline,
                over_serial: Some(2.0),
                of_bound: Some(1.2),
            }]
        );
        let t = render(&results);
        let header =
            "| lines | serial s | pipeline s | multiprocess s | plain s | rayon s | bound s | \
                      pipeline × | multiprocess × | bound × | serial / plain | pipeline / rayon | \
                      multiprocess / rayon | pipeline / bound | multiprocess / bound |";
        assert!(t.contains(header), "{t}");
        let line =
            "| 25 K | 1.000 | 0.500 | n/a | 0.950 | 0.400 | 0.600 | 2.00 | n/a | 1.67 | 0.95 \
                    | 0.80 | n/a | 1.20 | n/a |";
        assert!(t.contains(line), "{t}");
        assert!(t.contains("| 25 K | pipeline | 0.05 | 100 | 1.0 |"), "{t}");
        assert!(t.contains("multiprocess: n/a"), "{t}");
        assert!(!t.contains("ran inline"), "{t}");
        // Runs a mode did inline are said so under the table, with their count.
        results.samples[1].inline = true;
        results.samples[6].inline = true;
        let t = render(&results);
        assert!(
            t.contains("pipeline at 25 K lines: 2 of 3 runs ran inline, as serial mode does"),
            "{t}"
        );
    }
}
