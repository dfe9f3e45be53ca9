//! Run metrics: per-stage counters and timers ([`StageStats`]), the process
//! sampler (CPU and memory through sysinfo), and the [`RunReport`] printed
//! as a table and written as JSON.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Live progress of a run, shared with whoever displays it (a progress
/// bar): records pulled from the source so far, and the total when known.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    records: Arc<std::sync::atomic::AtomicU64>,
    total: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    /// A counter at zero with no known total.
    pub fn new() -> Self {
        Progress::default()
    }

    /// Counts `n` more records read.
    pub fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Sets the expected total (0 = unknown).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// The expected total, when the source knows it.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }
}

/// CPU and memory of a process over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// CPU time / wall time, in percent of one core.
    pub cpu_percent: f64,
    /// Largest resident set size seen.
    pub peak_rss_bytes: u64,
}

/// This process's CPU and peak memory over a run: from the kernel's own
/// high-water mark (Linux `VmHWM`) where it keeps one, else sampled on a
/// background thread (sysinfo).
pub struct ProcessSampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
    started: Instant,
    cpu_at_start: f64,
}

fn current_process() -> Option<(sysinfo::System, sysinfo::Pid)> {
    let pid = sysinfo::get_current_pid().ok()?;
    let mut system = sysinfo::System::new();
    refresh(&mut system, pid);
    Some((system, pid))
}

fn refresh(system: &mut sysinfo::System, pid: sysinfo::Pid) {
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[pid]),
        false,
        sysinfo::ProcessRefreshKind::nothing().with_memory(),
    );
}

/// CPU time (user + system) this process has used so far, in seconds.
/// `getrusage` on Unix (microsecond resolution, so short runs are measured
/// too); elsewhere sysinfo's accumulated time.
pub fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return secs(usage.ru_utime) + secs(usage.ru_stime);
        }
    }
    current_process()
        .and_then(|(s, pid)| s.process(pid).map(|p| p.accumulated_cpu_time()))
        .map_or(0.0, |ms| ms as f64 / 1000.0)
}

/// CPU time consumed by the calling thread.
#[cfg(unix)]
pub(crate) fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Elsewhere, wall time since the first call stands in.
#[cfg(not(unix))]
pub(crate) fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Peak RSS the kernel recorded for this process (Linux: `getrusage`'s
/// `ru_maxrss`, the `VmHWM` of `/proc/self/status`), if known. One system
/// call: a worker asks after every chunk, and reading `/proc/self/status`
/// cost tens of microseconds each time.
pub(crate) fn kernel_peak_rss() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 && usage.ru_maxrss > 0 {
            // Kilobytes on Linux.
            return u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024);
        }
    }
    None
}

impl ProcessSampler {
    /// Starts sampling every `every`, unless the kernel keeps the peak
    /// itself: then nothing runs until [`finish`](Self::finish) (a thread
    /// and its reads would cost a short run more than they tell).
    pub fn start(every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cpu_at_start = process_cpu_seconds();
        let handle = if kernel_peak_rss().is_some() {
            None
        } else {
            std::thread::Builder::new()
                .name("parpipe-sampler".into())
                .spawn(move || {
                    let mut peak = 0u64;
                    if let Some((mut system, pid)) = current_process() {
                        while !flag.load(Ordering::Relaxed) {
                            refresh(&mut system, pid);
                            if let Some(p) = system.process(pid) {
                                peak = peak.max(p.memory());
                            }
                            std::thread::park_timeout(every);
                        }
                    }
                    peak
                })
                .ok()
        };
        ProcessSampler {
            stop,
            handle,
            started: Instant::now(),
            cpu_at_start,
        }
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> ProcessStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut peak = 0;
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            peak = h.join().unwrap_or(0);
        }
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cpu = process_cpu_seconds() - self.cpu_at_start;
        let peak = match kernel_peak_rss() {
            // The kernel's peak is never below any sample.
            Some(kernel) => peak.max(kernel),
            None => {
                let rss_now = current_process()
                    .and_then(|(s, pid)| s.process(pid).map(|p| p.memory()))
                    .unwrap_or(0);
                peak.max(rss_now)
            }
        };
        ProcessStats {
            cpu_percent: cpu.max(0.0) / wall * 100.0,
            peak_rss_bytes: peak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
