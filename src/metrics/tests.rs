//! Tests of the run metrics: utilization, the bottleneck and its reason,
//! the CPU of a multiprocess report, the sampler.

use super::*;
use std::time::Duration;

#[test]
fn bottleneck_is_the_busiest_stage() {
    let wall = Duration::from_secs(10);
    let mut a = StageStats::new("read", StageKind::Source);
    a.busy = Duration::from_secs(2);
    let mut b = StageStats::new("parse", StageKind::Stage);
    b.busy = Duration::from_secs(9);
    let report = RunReport::new(
        "p",
        crate::Mode::Serial,
        wall,
        &[a, b],
        ProcessStats::default(),
    );
    let bottleneck = report.bottleneck.unwrap();
    assert_eq!(bottleneck.stage, "parse");
    assert!((bottleneck.utilization - 0.9).abs() < 1e-9);
    assert!(
        bottleneck.reason.starts_with("parse: 90% busy"),
        "{}",
        bottleneck.reason
    );
}

#[test]
fn a_run_that_waited_for_its_input_has_no_bottleneck_part() {
    let mut a = StageStats::new("read", StageKind::Source);
    a.busy = Duration::from_millis(10);
    let mut b = StageStats::new("parse", StageKind::Stage);
    b.busy = Duration::from_millis(30);
    let report = RunReport::new(
        "p",
        crate::Mode::Pipelined,
        Duration::from_secs(10),
        &[a, b],
        ProcessStats::default(),
    );
    let bottleneck = report.bottleneck.unwrap();
    assert_eq!(bottleneck.stage, "parse");
    assert!(
        bottleneck
            .reason
            .starts_with("none: the busiest part, parse, is 0% busy"),
        "{}",
        bottleneck.reason
    );
}

#[test]
fn utilization_divides_by_replicas() {
    let mut s = StageStats::new("parse", StageKind::Stage);
    s.busy = Duration::from_secs(8);
    s.replicas = 2;
    let row = s.report(Duration::from_secs(5));
    assert!((row.utilization - 0.8).abs() < 1e-9);
}

/// A multiprocess report's CPU counts every process: the coordinator's
/// 30% of a 2 s run plus workers that used 1.1 s and 0.9 s is 130%.
#[test]
fn multiprocess_cpu_counts_the_workers() {
    let mut report = RunReport::new(
        "p",
        crate::Mode::Multiprocess,
        Duration::from_secs(2),
        &[],
        ProcessStats {
            cpu_percent: 30.0,
            peak_rss_bytes: 1,
        },
    );
    let worker = |id, cpu_seconds| WorkerReport {
        id,
        address: format!("127.0.0.1:{id}"),
        name: String::new(),
        chunks: 1,
        records: 1,
        busy_seconds: 1.0,
        requeued_chunks: 0,
        cpu_percent: cpu_seconds / 2.0 * 100.0,
        cpu_seconds,
        peak_rss_bytes: 1,
        shipped_unreadable: 0,
        unreadable_inputs: Vec::new(),
    };
    report.add_workers(vec![worker(1, 1.1), worker(2, 0.9)]);
    assert!(
        (report.cpu_percent - 130.0).abs() < 1e-9,
        "{}",
        report.cpu_percent
    );
    assert_eq!(report.coordinator_cpu_percent, Some(30.0));
    let table = report.to_table();
    assert!(
        table.contains("CPU 130% (all processes; coordinator 30%)"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["cpu_percent"], 130.0);
    assert_eq!(json["coordinator_cpu_percent"], 30.0);
}

#[test]
fn sampler_sees_memory() {
    let sampler = ProcessSampler::start(Duration::from_millis(5));
    let stats = sampler.finish();
    assert!(stats.peak_rss_bytes > 0);
}
