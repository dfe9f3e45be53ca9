//! The families that come from a published status: the run (its id,
//! pipeline, mode and state), its stages and their queues, and the
//! workers of a multiprocess run.

use super::{counters, gauges, one};
use crate::live::{LiveBoard, LiveStatus};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Unit;

/// Everything that comes from a published status.
pub(super) fn encode_status(
    e: &mut DescriptorEncoder,
    board: &LiveBoard,
    status: &LiveStatus,
) -> Result<(), std::fmt::Error> {
    let report = &status.report;
    let (seconds, bytes, ratio) = (Unit::Seconds, Unit::Bytes, Unit::Other("ratio".into()));
    let run = Info::new(vec![
        ("run", board.run_id().to_string()),
        ("pipeline", report.pipeline.clone()),
        ("mode", report.mode.as_str().to_string()),
    ]);
    run.encode(e.encode_descriptor(
        "parpipe_run",
        "The run these metrics describe (always 1): its id, pipeline and mode.",
        None,
        run.metric_type(),
    )?)?;
    let running = f64::from(u8::from(status.running));
    gauges(
        e,
        "parpipe_running",
        "1 while the run goes on, 0 once it ended.",
        None,
        one(running),
    )?;
    let failed = f64::from(u8::from(status.error.is_some()));
    gauges(
        e,
        "parpipe_run_failed",
        "1 once the run ended with an error, else 0.",
        None,
        one(failed),
    )?;
    gauges(
        e,
        "parpipe_run_elapsed",
        "Wall time of the run so far.",
        Some(&seconds),
        one(report.wall_seconds),
    )?;
    counters(
        e,
        "parpipe_records",
        "Records the source has produced so far.",
        None,
        one(report.records as f64),
    )?;
    gauges(
        e,
        "parpipe_peak_resident_memory",
        "Peak resident memory of the process running the pipeline (the coordinator in multiprocess mode).",
        Some(&bytes),
        one(report.peak_rss_bytes as f64),
    )?;
    let stage = |f: &dyn Fn(&crate::metrics::StageReport) -> f64| {
        report
            .stages
            .iter()
            .map(|s| (vec![("stage", s.name.clone())], f(s)))
            .collect::<Vec<_>>()
    };
    counters(
        e,
        "parpipe_stage_busy",
        "Time the stage spent in its own code (all replicas).",
        Some(&seconds),
        stage(&|s| s.busy_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_idle",
        "Time the stage waited for input (all replicas).",
        Some(&seconds),
        stage(&|s| s.idle_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_blocked",
        "Time the stage waited for downstream credit (all replicas).",
        Some(&seconds),
        stage(&|s| s.blocked_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_records_in",
        "Records the stage received.",
        None,
        stage(&|s| s.records_in as f64),
    )?;
    counters(
        e,
        "parpipe_stage_records_out",
        "Records the stage produced.",
        None,
        stage(&|s| s.records_out as f64),
    )?;
    gauges(
        e,
        "parpipe_stage_replicas",
        "Actors (or workers) running the stage.",
        None,
        stage(&|s| s.replicas as f64),
    )?;
    gauges(
        e,
        "parpipe_stage_utilization",
        "Busy time over wall time and replicas, since the run started (0 to 1).",
        Some(&ratio),
        stage(&|s| s.utilization),
    )?;
    let bottleneck = report.bottleneck.as_ref().map(|b| b.stage.as_str());
    gauges(
        e,
        "parpipe_stage_bottleneck",
        "1 for the stage that limits the run (the highest utilization), 0 for the others.",
        None,
        stage(&|s| f64::from(u8::from(Some(s.name.as_str()) == bottleneck))),
    )?;
    let queue = |depth: bool| {
        status
            .queues
            .iter()
            .map(|q| {
                (
                    vec![("stage", q.stage.clone())],
                    if depth { q.depth } else { q.length } as f64,
                )
            })
            .collect::<Vec<_>>()
    };
    gauges(
        e,
        "parpipe_stage_queue_length",
        "Batches waiting in the stage's input queue now (pipeline mode).",
        None,
        queue(false),
    )?;
    gauges(
        e,
        "parpipe_stage_queue_depth",
        "Batches that may wait in the stage's input queue at most (pipeline mode).",
        None,
        queue(true),
    )?;
    encode_workers(e, status)
}

/// The per-worker families, labelled `worker="HOST/PID"`.
fn encode_workers(e: &mut DescriptorEncoder, status: &LiveStatus) -> Result<(), std::fmt::Error> {
    let (seconds, bytes) = (Unit::Seconds, Unit::Bytes);
    // The report's own name first: it stays once the worker has left,
    // as it has by the final state of a run.
    let name = |w: &crate::metrics::WorkerReport| {
        if !w.name.is_empty() {
            return w.name.clone();
        }
        status
            .liveness
            .iter()
            .find(|l| l.id == w.id && !l.name.is_empty())
            .map_or_else(|| format!("worker-{}", w.id), |l| l.name.clone())
    };
    let worker = |f: &dyn Fn(&crate::metrics::WorkerReport) -> f64| {
        status
            .report
            .workers
            .iter()
            .map(|w| (vec![("worker", name(w))], f(w)))
            .collect::<Vec<_>>()
    };
    counters(
        e,
        "parpipe_worker_chunks",
        "Chunks the worker completed.",
        None,
        worker(&|w| w.chunks as f64),
    )?;
    counters(
        e,
        "parpipe_worker_requeued_chunks",
        "Chunks taken back from the worker and run elsewhere.",
        None,
        worker(&|w| w.requeued_chunks as f64),
    )?;
    counters(
        e,
        "parpipe_worker_records",
        "Records in the chunks the worker completed.",
        None,
        worker(&|w| w.records as f64),
    )?;
    counters(
        e,
        "parpipe_worker_busy",
        "Time the worker spent processing chunks.",
        Some(&seconds),
        worker(&|w| w.busy_seconds),
    )?;
    gauges(
        e,
        "parpipe_worker_peak_resident_memory",
        "Peak resident memory of the worker process.",
        Some(&bytes),
        worker(&|w| w.peak_rss_bytes as f64),
    )?;
    let connected = status
        .liveness
        .iter()
        .map(|l| {
            (
                vec![(
                    "worker",
                    if l.name.is_empty() {
                        format!("worker-{}", l.id)
                    } else {
                        l.name.clone()
                    },
                )],
                f64::from(u8::from(l.connected)),
            )
        })
        .collect();
    gauges(
        e,
        "parpipe_worker_connected",
        "1 while the worker is connected, 0 once it left.",
        None,
        connected,
    )
}
