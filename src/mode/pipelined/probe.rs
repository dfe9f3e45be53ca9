//! The serial probe behind `--replicas auto`: the first few batches run
//! inline, exactly as in serial mode (their results count), while every
//! part's cost is measured as CPU time of this thread (so that other
//! processes competing for the cores do not distort it). The pipeline then
//! starts after them.

use crate::error::RunError;
use crate::metrics::thread_cpu;
use crate::metrics::StageStats;
use crate::mode::inline::{pull_source, run_batch, run_sink_absorb};
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline, Pulled};
use crate::stage::Numbering;
use std::time::Duration;

// While the probe runs the other cores wait, so it is kept short: 6 ms
// cost `auto` 4% of a 100 K-task matrix run against the best fixed
// configuration, 3 ms 2% (15 interleaved rounds), and 3 ms chose as well
// for logs and matrix at 100 K and 1 M.
/// The probe stops after this much measured work…
const PROBE_BUSY: Duration = Duration::from_millis(3);
/// Longest the probe waits for one batch of a source on its own thread
/// (on a loaded machine that thread may wait tens of milliseconds for a
/// core), and for all of them: a source waiting for input delays the
/// start by at most this.
const PROBE_WAIT: Duration = Duration::from_millis(250);
const PROBE_WAIT_TOTAL: Duration = Duration::from_secs(1);
/// …or this many batches, whichever comes first…
const PROBE_BATCHES: u64 = 32;
/// …but runs at least this many.
const PROBE_MIN_BATCHES: u64 = 6;
/// The first batches are warm-up (fresh buffers fault in, caches are cold,
/// hash maps grow): they count in the run but not in the measurement.
const WARM_UP_BATCHES: u64 = 2;

/// The probe pulls batches this many times smaller than the run's, so
/// that the serial part of the run stays short. (Results do not depend on
/// batch boundaries: a stage's output depends only on its batch.)
const PROBE_BATCH_DIVISOR: usize = 8;

/// Where the probe left the run.
pub(crate) struct Probed {
    /// Where numbering goes on after the probed batches.
    pub(crate) numbering: Numbering,
    /// The input ended during the probe.
    pub(crate) exhausted: bool,
    /// CPU time of each part (source, stages, aggregate, sink) after the
    /// warm-up batches.
    pub(crate) measured: Vec<Duration>,
}

/// Measures consecutive laps of thread CPU time.
struct Laps(Duration);

impl Laps {
    fn lap(&mut self) -> Duration {
        let now = thread_cpu();
        let lap = now.saturating_sub(self.0);
        self.0 = now;
        lap
    }
}

/// Runs batches inline from `seq` 0 into `acc` and `stats` (source, each
/// stage, aggregate, sink) until enough was measured or the input ends.
pub(crate) fn probe(
    p: &mut Pipeline,
    config: &RunConfig,
    acc: &mut AnyData,
    stats: &mut [StageStats],
) -> Result<Probed, RunError> {
    let n = p.stages.len();
    let mut at = Probed {
        numbering: Numbering::new(),
        exhausted: false,
        measured: vec![Duration::ZERO; n + 3],
    };
    // Time spent waiting for a source on its own thread.
    let mut waited = Duration::ZERO;
    while at.numbering.seq < PROBE_MIN_BATCHES
        || (at.numbering.seq < PROBE_BATCHES && at.measured.iter().sum::<Duration>() < PROBE_BUSY)
    {
        if config.cancel.is_cancelled() {
            return Err(RunError::Interrupted);
        }
        let counted = at.numbering.seq >= WARM_UP_BATCHES;
        let mut laps = Laps(thread_cpu());
        let measure = |part: usize, laps: &mut Laps, measured: &mut Vec<Duration>| {
            let lap = laps.lap();
            if counted {
                measured[part] += lap;
            }
        };
        let own_before = p.source.part.own_cpu();
        let pulled = pull_source(
            &mut p.source,
            (config.batch_size / PROBE_BATCH_DIVISOR).max(1),
            &mut stats[0],
            &config.progress,
        )?;
        // CPU time, like every part: this thread's, plus that of the
        // source's own thread if it has one (wall time would count a
        // preemption on a loaded machine as work).
        let own = p.source.part.own_cpu().saturating_sub(own_before);
        let lap = laps.lap() + own;
        if counted {
            at.measured[0] += lap;
        }
        let (data, records) = match pulled {
            Pulled::Data(data, records) => (data, records),
            Pulled::End => {
                at.exhausted = true;
                break;
            }
            // A source on a thread of its own answers a moment later; one
            // still waiting for input then: the actors go on from here
            // (the source is asked again; the measurement is what it is).
            Pulled::Pending(_) => {
                let budget = PROBE_WAIT_TOTAL.saturating_sub(waited);
                let started = std::time::Instant::now();
                let answered = p.source.part.wait_briefly(PROBE_WAIT.min(budget));
                waited += started.elapsed();
                if answered {
                    continue;
                }
                break;
            }
            Pulled::Snapshot(req) => {
                req.answer(p.aggregate.part.as_ref(), acc);
                continue;
            }
            Pulled::Cancelled => return Err(RunError::Interrupted),
        };
        let info = at.numbering.next(records);
        run_batch(
            &mut p.stages,
            &mut p.aggregate,
            acc,
            (data, records),
            &info,
            &mut stats[1..n + 2],
            |i| measure(i + 1, &mut laps, &mut at.measured),
        )?;
        run_sink_absorb(&mut p.sink, acc, &mut stats[n + 2])?;
        measure(n + 2, &mut laps, &mut at.measured);
    }
    Ok(at)
}
