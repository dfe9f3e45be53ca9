//! [`LiveStatus`]: the report of a run so far plus what only a running
//! pipeline has (queue fill, heartbeats, a short rate history), and
//! [`LiveBoard`], where the engine publishes it and the server reads it.

use super::traffic::{Traffic, TrafficPoint, TrafficView};
use crate::metrics::RunReport;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How full one stage's input queue is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueFill {
    /// The stage's name (as in the report's stage rows).
    pub stage: String,
    /// Batches waiting now.
    pub length: usize,
    /// Batches that may wait at most (the queue depth; 0 where the stage
    /// has no queue, as in serial mode).
    pub depth: usize,
}

/// When a worker was last heard from (multiprocess mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerLiveness {
    /// The worker's id, as in the report's worker rows.
    pub id: u64,
    /// What it is called in metrics: `HOST/PID`, the host being this
    /// machine's name for a worker on it, else the address the worker
    /// connects from, and PID its process id (as its hello announced).
    #[serde(default)]
    pub name: String,
    /// Seconds since its last frame (a heartbeat or a result).
    pub last_heard_seconds_ago: f64,
    /// False once it disconnected or was dropped.
    pub connected: bool,
}

/// One point of the records/s chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Seconds since the run started.
    pub t: f64,
    /// Records per second over the interval that ended at `t`.
    pub records_per_second: f64,
}

/// Everything the live view shows: the run's report so far (the same keys
/// as `report.json`, at the top level) and the live-only parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// True while the run goes on; false in the final status.
    pub running: bool,
    /// The report so far (its keys appear at the top level of the JSON).
    #[serde(flatten)]
    pub report: RunReport,
    /// One row per stage with a queue.
    pub queues: Vec<QueueFill>,
    /// One row per worker that ever connected (multiprocess mode).
    pub liveness: Vec<WorkerLiveness>,
    /// Records/s over the last minutes, oldest first.
    pub history: Vec<RatePoint>,
    /// Set in the final status of a run that failed.
    pub error: Option<String>,
}

/// 64 random bits in hex (the clock and the process id where the system
/// has no randomness to give: still distinct between runs).
fn new_run_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ u64::from(std::process::id()) << 32).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Points kept in the rate history (at 4 publications a second, 2 minutes).
const HISTORY_POINTS: usize = 480;

#[derive(Debug)]
struct Board {
    latest: Option<LiveStatus>,
    history: VecDeque<RatePoint>,
    last: Option<(f64, u64)>,
    /// The workload's traffic so far, when it reports some.
    traffic: Option<(f64, Traffic)>,
    /// The traffic at the end of the last history point (or the first
    /// one set): the next point's rates start there.
    traffic_mark: Option<(f64, Traffic)>,
    traffic_history: VecDeque<TrafficPoint>,
}

/// Where a run publishes its [`LiveStatus`] and the dashboard reads it.
/// Cloning gives another handle to the same board.
#[derive(Debug, Clone)]
pub struct LiveBoard {
    board: Arc<Mutex<Board>>,
    /// Counts publications, so that a reader can wait for the next one.
    published: Arc<tokio::sync::watch::Sender<u64>>,
    /// Tells this run from others in metrics (random, 16 hex digits).
    run_id: Arc<str>,
    /// When the board was made (the run's start), in seconds since the
    /// Unix epoch.
    started_unix: f64,
}

impl Default for LiveBoard {
    fn default() -> Self {
        LiveBoard::new()
    }
}

impl LiveBoard {
    /// An empty board (the dashboard shows "starting" until a status comes).
    pub fn new() -> Self {
        LiveBoard {
            board: Arc::new(Mutex::new(Board {
                latest: None,
                history: VecDeque::new(),
                last: None,
                traffic: None,
                traffic_mark: None,
                traffic_history: VecDeque::new(),
            })),
            published: Arc::new(tokio::sync::watch::channel(0).0),
            run_id: new_run_id().into(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    /// The run's id: random, 16 hex digits, the same for every status
    /// published on this board (one board per run).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// When the board was made, in seconds since the Unix epoch.
    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    /// A receiver that sees a change at every publication.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // A panic elsewhere while holding the lock leaves plain data behind.
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new status. Its `history` is filled in here from the
    /// records and wall time of the statuses published so far.
    pub fn publish(&self, mut status: LiveStatus) {
        let mut board = self.lock();
        let now = (status.report.wall_seconds, status.report.records);
        if let Some((t0, r0)) = board.last {
            let dt = now.0 - t0;
            if dt > 1e-6 {
                let point = RatePoint {
                    t: now.0,
                    records_per_second: now.1.saturating_sub(r0) as f64 / dt,
                };
                if board.history.len() == HISTORY_POINTS {
                    board.history.pop_front();
                }
                board.history.push_back(point);
                board.last = Some(now);
            }
        } else {
            board.last = Some(now);
        }
        status.history = board.history.iter().copied().collect();
        board.latest = Some(status);
        drop(board);
        self.published.send_modify(|n| *n += 1);
    }

    /// The latest status, if any was published.
    pub fn latest(&self) -> Option<LiveStatus> {
        self.lock().latest.clone()
    }

    /// Sets the workload's traffic so far (see [`Traffic`]) and tells the
    /// readers, as a publication does: the dashboard's traffic panels
    /// follow it even while the engine publishes nothing (an input that
    /// paused).
    pub fn set_traffic(&self, traffic: Traffic) {
        let t = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            - self.started_unix)
            .max(0.0);
        let mut board = self.lock();
        // A point per interval of at least TRAFFIC_POINT_SECONDS, however
        // often the workload sets its traffic: the history then spans the
        // same time on every machine.
        let point = match &board.traffic_mark {
            Some((t0, _)) if t - t0 < super::traffic::TRAFFIC_POINT_SECONDS => None,
            Some((t0, before)) => super::traffic::rate_point(before, *t0, &traffic, t),
            None => None,
        };
        if let Some(point) = point {
            if board.traffic_history.len() == super::traffic::TRAFFIC_HISTORY {
                board.traffic_history.pop_front();
            }
            board.traffic_history.push_back(point);
        }
        if point_taken_or_first(&board.traffic_mark, t) {
            board.traffic_mark = Some((t, traffic.clone()));
        }
        board.traffic = Some((t, traffic));
        drop(board);
        self.published.send_modify(|n| *n += 1);
    }

    /// The workload's traffic so far and its history, if it reported any.
    pub fn traffic(&self) -> Option<TrafficView> {
        let board = self.lock();
        let (_, now) = board.traffic.as_ref()?;
        Some(TrafficView {
            now: now.clone(),
            history: board.traffic_history.iter().cloned().collect(),
        })
    }
}

/// Whether traffic set at `t` starts a new history interval: the first
/// traffic set, or one at least a point's length after the mark.
fn point_taken_or_first(mark: &Option<(f64, Traffic)>, t: f64) -> bool {
    mark.as_ref()
        .is_none_or(|(t0, _)| t - t0 >= super::traffic::TRAFFIC_POINT_SECONDS)
}
