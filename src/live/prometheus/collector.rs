//! The [`Collector`] behind `/metrics`, and the families present in
//! every state of a run: this process's CPU and memory, the build, the
//! run's start time, and the `logs` workload's traffic.

use super::run::encode_status;
use super::{counters, gauges, one, StatusCollector};
use crate::live::{LatencyHistogram, LiveStatus, Traffic, LATENCY_BOUNDS_US};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Resident memory of this process now (Linux `/proc/self/statm`), or the
/// run's peak where that cannot be read.
fn resident_bytes(status: Option<&LiveStatus>) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let pages = statm.and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    match pages {
        Some(p) if page > 0 => p * page as u64,
        _ => status.map_or(0, |s| s.report.peak_rss_bytes),
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.board.latest();
        let e = &mut encoder;
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;
        if self.process {
            counters(
                e,
                "process_cpu",
                "User and system CPU time this process has used.",
                Some(&seconds),
                one(crate::metrics::process_cpu_seconds()),
            )?;
            gauges(
                e,
                "process_resident_memory",
                "Resident memory of this process now.",
                Some(&bytes),
                one(resident_bytes(latest.as_ref()) as f64),
            )?;
        }
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        build.encode(e.encode_descriptor(
            "parpipe_build",
            "The parpipe build serving these metrics (always 1).",
            None,
            build.metric_type(),
        )?)?;
        gauges(
            e,
            "parpipe_run_start_time",
            "When the run started, since the Unix epoch.",
            Some(&seconds),
            one(self.board.started_unix()),
        )?;
        if let Some(traffic) = self.board.traffic() {
            encode_traffic(e, &traffic.now)?;
        }
        let Some(status) = latest else {
            let run = Info::new(vec![("run", self.board.run_id().to_string())]);
            run.encode(e.encode_descriptor(
                "parpipe_run",
                "The run these metrics describe (always 1): its id.",
                None,
                run.metric_type(),
            )?)?;
            return gauges(
                e,
                "parpipe_running",
                "1 while the run goes on, 0 once it ended.",
                None,
                one(1.0),
            );
        };
        encode_status(e, &self.board, &status)
    }
}

/// A histogram given by its counts (see [`LatencyHistogram`]).
#[derive(Debug)]
struct ConstHistogram<'a>(&'a LatencyHistogram);

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0;
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(h.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The `logs` workload's traffic so far (docs/live.md): requests per
/// status class, response bytes, and the request durations when the log
/// has them.
fn encode_traffic(e: &mut DescriptorEncoder, t: &Traffic) -> Result<(), std::fmt::Error> {
    let classes = t
        .status_classes
        .iter()
        .map(|(class, &n)| (vec![("status_class", class.clone())], n as f64))
        .collect();
    counters(
        e,
        "parpipe_logs_requests",
        "Requests counted from the log so far, per status class (2xx …).",
        None,
        classes,
    )?;
    counters(
        e,
        "parpipe_logs_response",
        "Response bytes summed over the requests counted so far.",
        Some(&Unit::Bytes),
        one(t.bytes as f64),
    )?;
    if let Some(h) = &t.latency_histogram {
        let metric = ConstHistogram(h);
        metric.encode(e.encode_descriptor(
            "parpipe_logs_request_duration",
            "Durations of the requests counted so far (the log's request time).",
            Some(&Unit::Seconds),
            metric.metric_type(),
        )?)?;
    }
    Ok(())
}
