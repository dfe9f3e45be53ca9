//! `/metrics`: the latest [`LiveStatus`] in the Prometheus/OpenMetrics text
//! format, encoded by prometheus-client at scrape time (a [`Collector`]
//! reading the board, so the run itself updates nothing for Prometheus).
//!
//! The metric names are a contract (dashboards and alerts depend on them):
//! `parpipe_stage_{busy,idle,blocked}_seconds_total{stage}`,
//! `parpipe_stage_records_{in,out}_total{stage}`,
//! `parpipe_stage_queue_length{stage}`, `parpipe_stage_queue_depth{stage}`,
//! `parpipe_worker_chunks_total{worker}`,
//! `parpipe_worker_requeued_chunks_total{worker}`,
//! `parpipe_worker_records_total{worker}`, `parpipe_records_total`,
//! `parpipe_running`, and the process metrics
//! `process_cpu_seconds_total` and `process_resident_memory_bytes`.

use super::{LiveBoard, LiveStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The registry the server encodes on each scrape.
pub(crate) fn registry(board: LiveBoard) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatusCollector(board)));
    registry
}

/// Encodes the board's latest status.
#[derive(Debug)]
struct StatusCollector(LiveBoard);

/// One counter per stage, labelled `stage`.
fn stage_counters<N: EncodeCounterValue + Default>(
    encoder: &mut DescriptorEncoder,
    status: &LiveStatus,
    name: &str,
    help: &str,
    value: impl Fn(&crate::metrics::StageReport) -> N,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(N::default());
    let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    for s in &status.report.stages {
        let labels = [("stage", s.name.as_str())];
        ConstCounter::new(value(s)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One counter per worker, labelled `worker`.
fn worker_counters(
    encoder: &mut DescriptorEncoder,
    status: &LiveStatus,
    name: &str,
    help: &str,
    value: impl Fn(&crate::metrics::WorkerReport) -> u64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(0u64);
    let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    for w in &status.report.workers {
        let id = w.id.to_string();
        let labels = [("worker", id.as_str())];
        ConstCounter::new(value(w)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

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
        let latest = self.0.latest();
        let cpu = ConstCounter::new(crate::metrics::process_cpu_seconds());
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time this process has used, in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory of this process, in bytes.",
            resident_bytes(latest.as_ref()).min(i64::MAX as u64) as i64,
        )?;
        let Some(status) = latest else {
            return gauge(
                &mut encoder,
                "parpipe_running",
                "1 while the run goes on.",
                1,
            );
        };
        gauge(
            &mut encoder,
            "parpipe_running",
            "1 while the run goes on.",
            i64::from(status.running),
        )?;
        let records = ConstCounter::new(status.report.records);
        records.encode(encoder.encode_descriptor(
            "parpipe_records",
            "Records the source has produced so far.",
            None,
            records.metric_type(),
        )?)?;
        stage_counters(
            &mut encoder,
            &status,
            "parpipe_stage_busy_seconds",
            "Seconds the stage spent in its own code (all replicas).",
            |s| s.busy_seconds,
        )?;
        stage_counters(
            &mut encoder,
            &status,
            "parpipe_stage_idle_seconds",
            "Seconds the stage waited for input (all replicas).",
            |s| s.idle_seconds,
        )?;
        stage_counters(
            &mut encoder,
            &status,
            "parpipe_stage_blocked_seconds",
            "Seconds the stage waited for downstream credit (all replicas).",
            |s| s.blocked_seconds,
        )?;
        stage_counters(
            &mut encoder,
            &status,
            "parpipe_stage_records_in",
            "Records the stage received.",
            |s| s.records_in,
        )?;
        stage_counters(
            &mut encoder,
            &status,
            "parpipe_stage_records_out",
            "Records the stage produced.",
            |s| s.records_out,
        )?;
        for (name, help, depth) in [
            (
                "parpipe_stage_queue_length",
                "Batches waiting in the stage's input queue now.",
                false,
            ),
            (
                "parpipe_stage_queue_depth",
                "Batches that may wait in the stage's input queue at most.",
                true,
            ),
        ] {
            let g = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            for q in &status.queues {
                let labels = [("stage", q.stage.as_str())];
                let v = if depth { q.depth } else { q.length };
                ConstGauge::new(v.min(i64::MAX as usize) as i64)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        worker_counters(
            &mut encoder,
            &status,
            "parpipe_worker_chunks",
            "Chunks the worker completed.",
            |w| w.chunks,
        )?;
        worker_counters(
            &mut encoder,
            &status,
            "parpipe_worker_requeued_chunks",
            "Chunks taken back from the worker and run elsewhere.",
            |w| w.requeued_chunks,
        )?;
        worker_counters(
            &mut encoder,
            &status,
            "parpipe_worker_records",
            "Records in the chunks the worker completed.",
            |w| w.records,
        )?;
        Ok(())
    }
}

/// The exposition text of `board`'s latest status.
pub(crate) fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
