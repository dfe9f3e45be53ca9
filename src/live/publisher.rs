//! [`LivePublisher`]: what a mode holds to publish its report so far. It
//! keeps the run's start (wall and CPU clocks) so that every status is
//! measured from the same origin as the final report.

use super::{LiveBoard, LiveStatus, QueueFill, WorkerLiveness};
use crate::metrics::{kernel_peak_rss, process_cpu_seconds, ProcessStats, RunReport};
use crate::metrics::{StageStats, WorkerReport};
use crate::Mode;
use std::time::{Duration, Instant};

/// How often a running mode publishes.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Publishes a mode's numbers on a [`LiveBoard`].
#[derive(Debug, Clone)]
pub(crate) struct LivePublisher {
    board: LiveBoard,
    pipeline: String,
    mode: Mode,
    started: Instant,
    cpu_at_start: f64,
    /// Queue depth of pipeline mode (0: the mode has no queues).
    queue_depth: usize,
}

impl LivePublisher {
    /// A publisher for a run of `pipeline` in `mode` that starts now.
    pub(crate) fn new(board: LiveBoard, pipeline: &str, mode: Mode, queue_depth: usize) -> Self {
        LivePublisher {
            board,
            pipeline: pipeline.to_string(),
            mode,
            started: Instant::now(),
            cpu_at_start: process_cpu_seconds(),
            queue_depth,
        }
    }

    /// Wall time since the run started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Publishes the report so far, from the stages' stats (one row per
    /// part, replicas already combined) and the workers' rows.
    pub(crate) fn publish(
        &self,
        stats: &[StageStats],
        workers: Vec<WorkerReport>,
        liveness: Vec<WorkerLiveness>,
    ) {
        let wall = self.started.elapsed();
        let cpu = (process_cpu_seconds() - self.cpu_at_start).max(0.0);
        let process = ProcessStats {
            cpu_percent: cpu / wall.as_secs_f64().max(1e-9) * 100.0,
            peak_rss_bytes: kernel_peak_rss().unwrap_or(0),
        };
        let mut report = RunReport::new(&self.pipeline, self.mode, wall, stats, process);
        report.workers = workers;
        let queues = if self.queue_depth == 0 {
            Vec::new()
        } else {
            stats
                .iter()
                .filter(|s| s.kind != crate::metrics::StageKind::Source)
                .filter(|s| s.kind != crate::metrics::StageKind::Sink)
                .map(|s| QueueFill {
                    stage: s.name.clone(),
                    length: s.queue_length,
                    depth: self.queue_depth * s.replicas.max(1),
                })
                .collect()
        };
        self.board.publish(LiveStatus {
            running: true,
            report,
            queues,
            liveness,
            history: Vec::new(),
            error: None,
        });
    }
}

/// Publishes the final status of a run: its report, or the error that
/// ended it (keeping the last numbers published).
pub(crate) fn publish_final(board: &LiveBoard, result: Result<&RunReport, String>) {
    let last = board.latest();
    let status = match (result, last) {
        (Ok(report), last) => LiveStatus {
            running: false,
            report: report.clone(),
            queues: last.as_ref().map_or_else(Vec::new, |l| {
                l.queues
                    .iter()
                    .map(|q| QueueFill {
                        length: 0,
                        ..q.clone()
                    })
                    .collect()
            }),
            liveness: last.map_or_else(Vec::new, |l| {
                l.liveness
                    .into_iter()
                    .map(|w| WorkerLiveness {
                        connected: false,
                        ..w
                    })
                    .collect()
            }),
            history: Vec::new(),
            error: None,
        },
        (Err(error), Some(last)) => LiveStatus {
            running: false,
            error: Some(error),
            ..last
        },
        (Err(error), None) => LiveStatus {
            running: false,
            report: RunReport::new(
                "",
                Mode::Serial,
                Duration::ZERO,
                &[],
                ProcessStats::default(),
            ),
            queues: Vec::new(),
            liveness: Vec::new(),
            history: Vec::new(),
            error: Some(error),
        },
    };
    board.publish(status);
}
