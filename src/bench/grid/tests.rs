//! Tests of the grid: its configurations, verdicts and tables.

use super::*;
use crate::mode::Mode;

fn sample(column: Column, config: &str, automatic: bool, rep: usize, wall: f64) -> GridSample {
    GridSample {
        workload: BenchWorkload::Logs,
        size: 100,
        column,
        config: config.into(),
        automatic,
        rep,
        wall_seconds: wall,
        cpu_percent: 100.0,
    }
}

#[test]
fn default_grid_covers_every_knob_and_ends_with_the_automatic_ones() {
    let all = [Mode::Serial, Mode::Pipelined, Mode::Multiprocess];
    let grid = default_grid(BenchWorkload::Logs, &all, 2, 8192);
    let pipeline: Vec<&GridConfig> = grid
        .iter()
        .filter(|c| c.column == Column::Pipeline)
        .collect();
    // replicas: none, parse=2, enrich=2, both; × 3 batch sizes × 2 queue depths; + auto
    assert_eq!(pipeline.len(), 4 * 3 * 2 + 1);
    let mp: Vec<&GridConfig> = grid
        .iter()
        .filter(|c| c.column == Column::Multiprocess)
        .collect();
    // 3 batch sizes × 3 inflight × 2 worker counts; + automatic
    assert_eq!(mp.len(), 3 * 3 * 2 + 1);
    let labels: Vec<String> = grid.iter().map(GridConfig::label).collect();
    for want in [
        "--replicas parse=2 --replicas enrich=2 --batch-size 32768 --queue-depth 8",
        "--batch-size 2048 --queue-depth 2",
        "--batch-size 8192 --inflight 4 --workers 4",
        "--replicas auto",
        "(no knobs)",
    ] {
        assert!(
            labels.iter().any(|l| l == want),
            "no '{want}' in {labels:?}"
        );
    }
    assert_eq!(grid.iter().filter(|c| c.automatic).count(), 2);
    assert!(grid
        .iter()
        .filter(|c| c.automatic)
        .all(|c| !c.args.iter().any(|a| a == "--batch-size")));
    let matrix = default_grid(BenchWorkload::Matrix, &[Mode::Pipelined], 1, 1);
    // one core: no replicas to try; batch sizes 1 and 4 (1/4 of 1 is 1)
    assert_eq!(matrix.len(), 2 * 2 + 1);
    assert!(default_grid(BenchWorkload::Logs, &[Mode::Serial], 2, 8192).is_empty());
}

#[test]
fn choice_pairs_rounds_and_compares_automatic_with_the_best_fixed() {
    let mut samples = Vec::new();
    // Round 1 is slow for everyone; pairing removes it.
    for (rep, k) in [(0, 1.0), (1, 2.0), (2, 1.0)] {
        samples.push(sample(Column::Serial, "", false, rep, 1.0 * k));
        samples.push(sample(Column::Bound, "", false, rep, 0.5 * k));
        samples.push(sample(Column::Pipeline, "a", false, rep, 0.8 * k));
        samples.push(sample(Column::Pipeline, "b", false, rep, 0.625 * k));
        samples.push(sample(
            Column::Pipeline,
            "--replicas auto",
            true,
            rep,
            0.5 * k / 0.8,
        ));
    }
    let mut results = GridResults {
        cores: 2,
        bound_ways: 2,
        repeat: 3,
        workloads: vec![BenchWorkload::Logs],
        sizes: vec![100],
        samples,
        choices: vec![],
    };
    results.choices = choose(&results);
    assert_eq!(
        results.choices.len(),
        1,
        "no multiprocess samples, no verdict"
    );
    let c = &results.choices[0];
    assert_eq!(c.best, "b");
    assert!((c.best_over_serial - 1.6).abs() < 1e-9);
    assert!((c.best_of_bound.unwrap() - 0.8).abs() < 1e-9);
    assert_eq!(c.automatic, "--replicas auto");
    assert!((c.automatic_over_serial - 1.6).abs() < 1e-9);
    assert!((c.automatic_over_best - 1.0).abs() < 1e-9);
    let t = render(&results);
    assert!(
        t.contains("| pipeline | `b` | 1.60 | 0.80 | `--replicas auto` | 1.60 | 0.80 | 1.00 |"),
        "{t}"
    );
    assert!(
        t.contains("| pipeline | `a` | 0.800 | 1.25 | 0.62 | 100 |"),
        "{t}"
    );
    assert!(t.contains("(bound × serial: 2.00)"), "{t}");
}
