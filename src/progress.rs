//! A progress bar for a running job: a thread that polls the run's
//! [`Progress`] counter about ten times a second and draws it with
//! indicatif on stderr (records done, rate, ETA when the total is known,
//! and the mode). The caller decides whether to show it at all (only on a
//! terminal, never with `--quiet`).

use crate::metrics::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running progress display; [`finish`](Self::finish) removes it.
pub struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Starts drawing `progress` on stderr, labelled with `label` (the mode).
pub fn spawn(progress: Progress, label: &str) -> ProgressDisplay {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let label = label.to_string();
    let handle = std::thread::Builder::new()
        .name("parpipe-progress".into())
        .spawn(move || draw(progress, label, flag))
        .ok();
    ProgressDisplay { stop, handle }
}

fn draw(progress: Progress, label: String, stop: Arc<AtomicBool>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    bar.set_prefix(label);
    let spinner =
        ProgressStyle::with_template("{prefix} {spinner} {human_pos} records  {msg}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let with_total = ProgressStyle::with_template(
        "{prefix} [{bar:24}] {human_pos}/{human_len}  {msg}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(spinner);
    let mut has_total = false;
    while !stop.load(Ordering::Relaxed) {
        if let (false, Some(total)) = (has_total, progress.total()) {
            bar.set_length(total);
            bar.set_style(with_total.clone());
            has_total = true;
        }
        bar.set_position(progress.records());
        bar.set_message(rate(bar.per_sec()));
        std::thread::park_timeout(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// A rate as `1.23 M/s` or `456 K/s`.
fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else {
        format!("{:.0} K/s", per_sec / 1e3)
    }
}

impl ProgressDisplay {
    /// Stops drawing and clears the bar.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_starts_and_stops() {
        let p = Progress::new();
        p.set_total(10);
        let d = spawn(p.clone(), "serial");
        p.add_records(5);
        d.finish();
    }
}
