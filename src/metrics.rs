//! Run metrics: per-stage counters and timers ([`StageStats`]), the process
//! sampler (CPU and memory through sysinfo), and the [`RunReport`] printed
//! as a table and written as JSON.
//!
//! - `stage.rs`: [`StageKind`], [`StageStats`] and a stage's row of the
//!   report, [`StageReport`].
//! - `report.rs`: [`RunReport`], its worker rows and the [`Bottleneck`];
//!   the table and the JSON.
//! - `progress.rs`: [`Progress`], the live count a progress bar reads.
//! - `process.rs`: [`ProcessSampler`], [`ProcessStats`] and the process's
//!   and threads' CPU time and peak memory.

mod process;
mod progress;
mod report;
mod stage;

pub(crate) use process::{kernel_peak_rss, thread_cpu};
pub use process::{process_cpu_seconds, ProcessSampler, ProcessStats};
pub use progress::Progress;
pub use report::{Bottleneck, RunReport, UnreadableInput, WorkerReport};
pub use stage::{StageKind, StageReport, StageStats};

#[cfg(test)]
mod tests;
