//! This process's resources: CPU time (the process's and the calling
//! thread's), peak resident memory, and the [`ProcessSampler`] that
//! measures both over a run into [`ProcessStats`].

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
