//! The report of a run ([`RunReport`]): its stage and worker rows, the
//! bottleneck and why, and how it prints (a table) and saves (JSON).

use super::{ProcessStats, StageKind, StageReport, StageStats};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;

/// The stage that limits the run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// The stage's name.
    pub stage: String,
    /// Its utilization.
    pub utilization: f64,
    /// A sentence saying why it is the bottleneck.
    pub reason: String,
}

/// One worker process's row (multiprocess mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Worker id given by the coordinator.
    pub id: u64,
    /// Its address as seen by the coordinator.
    pub address: String,
    /// Its name, `HOST/PID` (the host name for a worker on the
    /// coordinator's machine, else the address it connects from), as the
    /// live metrics label it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Chunks it completed.
    pub chunks: u64,
    /// Records in those chunks.
    pub records: u64,
    /// Seconds it spent processing chunks.
    pub busy_seconds: f64,
    /// Chunks taken back from it and re-run elsewhere.
    pub requeued_chunks: u64,
    /// CPU use of the worker process, in percent of one core, over the
    /// time it was connected.
    pub cpu_percent: f64,
    /// CPU time (user + system) the worker process used, in seconds, as it
    /// last reported it.
    #[serde(default)]
    pub cpu_seconds: f64,
    /// Peak resident memory of the worker process.
    pub peak_rss_bytes: u64,
    /// Chunks offered to it as file ranges that it could not read, whose
    /// bytes the coordinator then sent it instead.
    #[serde(default)]
    pub shipped_unreadable: u64,
    /// The inputs it could not read, once each, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_inputs: Vec<UnreadableInput>,
}

/// An input a worker could not read itself (multiprocess mode, `--allow-read`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableInput {
    /// The file, as the chunks' ranges name it.
    pub input: String,
    /// Why the worker could not read it (the operating system's error among it).
    pub reason: String,
}

/// What a run did and where its time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// The mode it ran in.
    pub mode: crate::Mode,
    /// Wall time of the whole run.
    pub wall_seconds: f64,
    /// Records the source produced (lines, for `logs`).
    pub records: u64,
    /// records / wall_seconds.
    pub records_per_second: f64,
    /// CPU use of the run over its wall time, in percent of one core: of
    /// every process of the run (the coordinator and its workers, as they
    /// reported it) in multiprocess mode, of this process otherwise.
    pub cpu_percent: f64,
    /// Multiprocess mode: the coordinator's own share of
    /// [`cpu_percent`](Self::cpu_percent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator_cpu_percent: Option<f64>,
    /// Peak resident memory of this process.
    pub peak_rss_bytes: u64,
    /// One row per source, stage, aggregate and sink, in pipeline order.
    pub stages: Vec<StageReport>,
    /// The stage with the highest utilization.
    pub bottleneck: Option<Bottleneck>,
    /// Worker processes (multiprocess mode only).
    pub workers: Vec<WorkerReport>,
    /// How the run executed and why ([`crate::plan::plan`]): the engine
    /// (`inline` when a parallel mode ran a small input as serial mode
    /// does; `mode` stays the one asked for), the transport, how chunks
    /// were cut and sized, the batch size. Set by every run; absent from
    /// a report that did not come from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::Plan>,
}

impl RunReport {
    /// Builds a report from the stages' stats and the process sample.
    pub fn new(
        pipeline: &str,
        mode: crate::Mode,
        wall: Duration,
        stages: &[StageStats],
        process: ProcessStats,
    ) -> Self {
        let rows: Vec<StageReport> = stages.iter().map(|s| s.report(wall)).collect();
        let records = stages
            .iter()
            .find(|s| s.kind == StageKind::Source)
            .map_or(0, |s| s.records_out);
        let wall_s = wall.as_secs_f64();
        RunReport {
            pipeline: pipeline.to_string(),
            mode,
            wall_seconds: wall_s,
            records,
            records_per_second: records as f64 / wall_s.max(1e-9),
            cpu_percent: process.cpu_percent,
            coordinator_cpu_percent: None,
            peak_rss_bytes: process.peak_rss_bytes,
            bottleneck: find_bottleneck(&rows),
            stages: rows,
            workers: Vec::new(),
            plan: None,
        }
    }

    /// Sets the worker rows of a multiprocess run, and counts their CPU
    /// time in [`cpu_percent`](Self::cpu_percent), which so far held the
    /// coordinator's alone (kept in
    /// [`coordinator_cpu_percent`](Self::coordinator_cpu_percent)).
    pub fn add_workers(&mut self, workers: Vec<WorkerReport>) {
        let seconds: f64 = workers.iter().map(|w| w.cpu_seconds.max(0.0)).sum();
        self.coordinator_cpu_percent = Some(self.cpu_percent);
        self.cpu_percent += seconds / self.wall_seconds.max(1e-9) * 100.0;
        self.workers = workers;
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as a human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<10} {:>5} {:>8} {:>11} {:>11} {:>8} {:>8} {:>8} {:>6} {:>12} {:>5}",
            "stage",
            "repl",
            "batches",
            "records in",
            "records out",
            "busy s",
            "idle s",
            "blocked",
            "util",
            "records/s",
            "queue"
        );
        for s in &self.stages {
            let _ = writeln!(
                t,
                "{:<10} {:>5} {:>8} {:>11} {:>11} {:>8.3} {:>8.3} {:>8.3} {:>5.0}% {:>12.0} {:>5}",
                s.name,
                s.replicas,
                s.batches,
                s.records_in,
                s.records_out,
                s.busy_seconds,
                s.idle_seconds,
                s.blocked_seconds,
                s.utilization * 100.0,
                s.records_per_second,
                s.queue_high_water
            );
        }
        for w in &self.workers {
            let _ = writeln!(
                t,
                "worker {:<3} {:<21} chunks {:>6} records {:>10} busy {:>8.3}s requeued {:>3} cpu {:>5.0}% rss {:>6.1} MiB",
                w.id,
                w.address,
                w.chunks,
                w.records,
                w.busy_seconds,
                w.requeued_chunks,
                w.cpu_percent,
                w.peak_rss_bytes as f64 / 1048576.0
            );
            for u in &w.unreadable_inputs {
                let _ = writeln!(
                    t,
                    "worker {:<3} could not read input '{}' ({}): the coordinator sent its bytes instead",
                    w.id, u.input, u.reason
                );
            }
        }
        let coordinator = match self.coordinator_cpu_percent {
            Some(c) => format!(" (all processes; coordinator {c:.0}%)"),
            None => String::new(),
        };
        let _ = writeln!(
            t,
            "{} mode: {} records in {:.3} s = {:.0} records/s; CPU {:.0}%{coordinator}; peak RSS {:.1} MiB",
            self.mode,
            self.records,
            self.wall_seconds,
            self.records_per_second,
            self.cpu_percent,
            self.peak_rss_bytes as f64 / 1048576.0
        );
        if let Some(b) = &self.bottleneck {
            let _ = writeln!(t, "bottleneck: {}", b.reason);
        }
        if let Some(plan) = &self.plan {
            t.push_str(&plan.to_lines());
        }
        t
    }
}

fn find_bottleneck(rows: &[StageReport]) -> Option<Bottleneck> {
    let mut sorted: Vec<&StageReport> = rows.iter().collect();
    sorted.sort_by(|a, b| b.utilization.total_cmp(&a.utilization));
    let top = sorted.first()?;
    // Below this, no part limited the run: it waited for its input (a
    // followed file, a slow pipe, a handle nobody pushes into).
    const IDLE_RUN: f64 = 0.05;
    let reason = match sorted.get(1) {
        _ if top.utilization < IDLE_RUN => format!(
            "none: the busiest part, {}, is {:.0}% busy; the run's time went to \
             waiting for input (or to starting up)",
            top.name,
            top.utilization * 100.0
        ),
        Some(next) => format!(
            "{}: {:.0}% busy; the next busiest, {}, is {:.0}% busy and waits on it",
            top.name,
            top.utilization * 100.0,
            next.name,
            next.utilization * 100.0
        ),
        None => format!("{}: {:.0}% busy", top.name, top.utilization * 100.0),
    };
    Some(Bottleneck {
        stage: top.name.clone(),
        utilization: top.utilization,
        reason,
    })
}
