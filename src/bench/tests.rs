//! Tests of the bench's lists, columns and summary check.

use super::run::check_summary;
use super::*;
use crate::mode::Mode;
use std::path::PathBuf;

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
