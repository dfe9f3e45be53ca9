//! The serial probe behind `--replicas auto`: the first few batches run
//! inline, exactly as in serial mode (their results count), while every
//! part's busy time is measured. The pipeline then starts after them.

use crate::error::RunError;
use crate::metrics::StageStats;
use crate::mode::inline::{pull_source, run_aggregate, run_sink_absorb, run_stage};
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline};
use crate::stage::BatchInfo;
use std::time::Duration;

/// The probe stops after this much measured work…
const PROBE_BUSY: Duration = Duration::from_millis(15);
/// …or this many batches, whichever comes first…
const PROBE_BATCHES: u64 = 32;
/// …but runs at least this many (one batch alone is mostly warm-up).
const PROBE_MIN_BATCHES: u64 = 4;

/// Where the probe left the run.
pub(crate) struct Probed {
    /// Sequence number of the next batch.
    pub(crate) seq: u64,
    /// Line number of the next record.
    pub(crate) next_line: u64,
    /// The input ended during the probe.
    pub(crate) exhausted: bool,
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
        seq: 0,
        next_line: 1,
        exhausted: false,
    };
    let total_busy = |stats: &[StageStats]| stats.iter().map(|s| s.busy).sum::<Duration>();
    while at.seq < PROBE_MIN_BATCHES || (at.seq < PROBE_BATCHES && total_busy(stats) < PROBE_BUSY) {
        if config.cancel.is_cancelled() {
            return Err(RunError::Interrupted);
        }
        let pulled = pull_source(
            &mut p.source,
            config.batch_size,
            &mut stats[0],
            &config.progress,
        )?;
        let Some((mut data, mut records)) = pulled else {
            at.exhausted = true;
            break;
        };
        let info = BatchInfo {
            seq: at.seq,
            first_line: at.next_line,
            records: records as u64,
        };
        at.seq += 1;
        at.next_line += records as u64;
        for (i, stage) in p.stages.iter_mut().enumerate() {
            (data, records) = run_stage(stage, data, records, &info, &mut stats[i + 1])?;
        }
        run_aggregate(
            &mut p.aggregate,
            acc,
            data,
            records,
            &info,
            &mut stats[n + 1],
        )?;
        run_sink_absorb(&mut p.sink, acc, &mut stats[n + 2])?;
    }
    Ok(at)
}
