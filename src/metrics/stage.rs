//! One stage's numbers: its role ([`StageKind`]), the counters and timers
//! it keeps while a run goes on ([`StageStats`]), and its row of the
//! report ([`StageReport`]), with utilization and throughput worked out.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What part of the pipeline a stage row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Produces the input.
    Source,
    /// A transforming stage.
    Stage,
    /// Folds batches into the result.
    Aggregate,
    /// Writes the result.
    Sink,
}

/// Counters and timers of one stage while a run goes on.
#[derive(Debug, Clone)]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// Its role.
    pub kind: StageKind,
    /// Batches processed.
    pub batches: u64,
    /// Records received.
    pub records_in: u64,
    /// Records produced.
    pub records_out: u64,
    /// Time inside the stage's own code.
    pub busy: Duration,
    /// Time waiting for input.
    pub idle: Duration,
    /// Time waiting for downstream credit.
    pub blocked: Duration,
    /// Most batches ever waiting in the stage's queue.
    pub queue_high_water: usize,
    /// Batches waiting in the stage's queue now (the live view's; not in the report).
    pub queue_length: usize,
    /// Actors running this stage.
    pub replicas: usize,
}

impl StageStats {
    /// Zeroed stats for a stage.
    pub fn new(name: impl Into<String>, kind: StageKind) -> Self {
        StageStats {
            name: name.into(),
            kind,
            batches: 0,
            records_in: 0,
            records_out: 0,
            busy: Duration::ZERO,
            idle: Duration::ZERO,
            blocked: Duration::ZERO,
            queue_high_water: 0,
            queue_length: 0,
            replicas: 1,
        }
    }

    /// Counts one batch that took `busy` and turned `records_in` into `records_out`.
    pub fn record_batch(&mut self, records_in: u64, records_out: u64, busy: Duration) {
        self.batches += 1;
        self.records_in += records_in;
        self.records_out += records_out;
        self.busy += busy;
    }

    /// Adds another replica's stats (same stage) into these.
    pub fn absorb(&mut self, other: &StageStats) {
        self.batches += other.batches;
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.busy += other.busy;
        self.idle += other.idle;
        self.blocked += other.blocked;
        self.queue_high_water = self.queue_high_water.max(other.queue_high_water);
        self.queue_length += other.queue_length;
    }

    /// The stage's row of a report, for a run that lasted `wall`.
    pub fn report(&self, wall: Duration) -> StageReport {
        let wall_s = wall.as_secs_f64().max(1e-9);
        let replicas = self.replicas.max(1) as f64;
        StageReport {
            name: self.name.clone(),
            kind: self.kind,
            replicas: self.replicas,
            batches: self.batches,
            records_in: self.records_in,
            records_out: self.records_out,
            busy_seconds: self.busy.as_secs_f64(),
            idle_seconds: self.idle.as_secs_f64(),
            blocked_seconds: self.blocked.as_secs_f64(),
            utilization: self.busy.as_secs_f64() / wall_s / replicas,
            // A source takes nothing in: its throughput is what it produces.
            records_per_second: match self.kind {
                StageKind::Source => self.records_out,
                _ => self.records_in,
            } as f64
                / wall_s,
            queue_high_water: self.queue_high_water,
        }
    }
}

/// One stage's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Its role.
    pub kind: StageKind,
    /// Actors that ran it.
    pub replicas: usize,
    /// Batches processed.
    pub batches: u64,
    /// Records received.
    pub records_in: u64,
    /// Records produced.
    pub records_out: u64,
    /// Seconds inside the stage's own code (all replicas together).
    pub busy_seconds: f64,
    /// Seconds waiting for input.
    pub idle_seconds: f64,
    /// Seconds waiting for downstream credit.
    pub blocked_seconds: f64,
    /// busy / (wall × replicas).
    pub utilization: f64,
    /// Records received per second of wall time.
    pub records_per_second: f64,
    /// Most batches ever queued before the stage.
    pub queue_high_water: usize,
}
