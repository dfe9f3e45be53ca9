//! The two baselines `parpipe bench` compares the modes with: a plain
//! single-threaded loop and an in-process rayon version. For `logs`, both
//! call the workload's real code (the [`Parse`] and [`Enrich`] stages, the
//! [`LogsMetrics`] aggregate) without any actor, and produce the same
//! [`Summary`] as every mode; for `matrix`, both call
//! [`matrix::run_task`] and add the values in task order.
//!
//! Input is read with the same [`LineReader`] and batch limits as the
//! `read` source, so the only difference from serial mode is the framework.

use crate::metrics::ProcessSampler;
use crate::sources::lines::batch::LineBatch;
use crate::sources::lines::input::{InputSpec, LineReader};
use crate::sources::lines::source::MAX_BATCH_BYTES;
use crate::stage::{Aggregate, BatchInfo, Stage, StageError};
use crate::workloads::logs::metrics::{LogsMetrics, LogsPartial, Summary};
use crate::workloads::logs::stages::{Enrich, Parse};
use crate::workloads::matrix::{self, MatrixSummary};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineKind {
    /// One thread, one loop: read a batch, parse, enrich, fold.
    Plain,
    /// A reader thread cuts groups of batches; rayon folds each group's
    /// batches in parallel and the partials merge in input order.
    Rayon,
}

impl BaselineKind {
    /// The name used on the command line and in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineKind::Plain => "plain",
            BaselineKind::Rayon => "rayon",
        }
    }
}

/// What a baseline run measured; the same keys as a run's `report.json`
/// that the bench reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// The baseline.
    pub kind: BaselineKind,
    /// Wall time, from opening the input to the summary in memory.
    pub wall_seconds: f64,
    /// Lines read.
    pub records: u64,
    /// records / wall_seconds.
    pub records_per_second: f64,
    /// CPU use of the process over the run, in percent of one core.
    pub cpu_percent: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
}

/// Folds one batch of raw lines into `acc`, through the real stages.
/// `enrich` keeps a per-instance cache (as each stage actor does), so the
/// caller owns one per thread.
fn fold_batch(
    acc: &mut LogsPartial,
    enrich: &mut Enrich,
    lines: LineBatch,
    seq: u64,
) -> Result<(), StageError> {
    let info = BatchInfo {
        seq,
        first_line: lines.first_line,
        records: lines.len() as u64,
    };
    let parsed = Parse::default().process(lines, &info)?;
    let enriched = enrich.process(parsed, &info)?;
    LogsMetrics::default().add(acc, enriched, &info)
}

fn read_batch(reader: &mut LineReader, batch_size: usize) -> Result<Option<LineBatch>, StageError> {
    let mut batch = LineBatch::new(0);
    let n = reader
        .fill(&mut batch, batch_size, MAX_BATCH_BYTES)
        .map_err(|e| StageError::new(e.to_string()))?;
    Ok((n > 0).then_some(batch))
}

/// The plain loop: the whole `logs` job on the calling thread.
pub fn plain(inputs: Vec<InputSpec>, batch_size: usize) -> Result<Summary, StageError> {
    let mut reader = LineReader::new(inputs);
    let mut acc = LogsPartial::default();
    let mut enrich = Enrich::default();
    let mut seq = 0;
    while let Some(batch) = read_batch(&mut reader, batch_size)? {
        fold_batch(&mut acc, &mut enrich, batch, seq)?;
        seq += 1;
    }
    Ok(acc.summary())
}

/// The rayon version: a reader thread sends groups of batches (a few per
/// rayon thread) through a one-slot channel, so reading overlaps folding;
/// each group is folded with `par_iter` and merged, in order, into the total.
pub fn rayon(inputs: Vec<InputSpec>, batch_size: usize) -> Result<Summary, StageError> {
    let group = rayon::current_num_threads().max(1) * 4;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<LineBatch>, StageError>>(1);
    let reader = std::thread::spawn(move || {
        let mut reader = LineReader::new(inputs);
        loop {
            let mut batches = Vec::with_capacity(group);
            let mut failed = None;
            while batches.len() < group {
                match read_batch(&mut reader, batch_size) {
                    Ok(Some(b)) => batches.push(b),
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let last = batches.len() < group || failed.is_some();
            if !batches.is_empty() && tx.send(Ok(batches)).is_err() {
                return;
            }
            if let Some(e) = failed {
                let _ = tx.send(Err(e));
            }
            if last {
                return;
            }
        }
    });
    let mut total = LogsPartial::default();
    let mut seq = 0u64;
    for batches in rx {
        let batches = batches?;
        let first_seq = seq;
        seq += batches.len() as u64;
        let part = batches
            .into_par_iter()
            .enumerate()
            .try_fold(
                || (LogsPartial::default(), Enrich::default()),
                |(mut acc, mut enrich), (i, b)| {
                    fold_batch(&mut acc, &mut enrich, b, first_seq + i as u64)
                        .map(|()| (acc, enrich))
                },
            )
            .map(|r| r.map(|(acc, _)| acc))
            .try_reduce(LogsPartial::default, |mut a, b| {
                a.merge(b);
                Ok(a)
            })?;
        total.merge(part);
    }
    let _ = reader.join();
    Ok(total.summary())
}

/// Runs a baseline on `input` as the bench's child process does: measures
/// wall time, CPU and peak RSS, writes `summary.json` into `out_dir`, and
/// returns the measurements.
pub fn measure(
    kind: BaselineKind,
    input: &Path,
    out_dir: &Path,
    batch_size: usize,
) -> Result<BaselineReport, StageError> {
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let started = Instant::now();
    let inputs = vec![InputSpec::parse(&input.to_string_lossy())];
    let summary = match kind {
        BaselineKind::Plain => plain(inputs, batch_size)?,
        BaselineKind::Rayon => rayon(inputs, batch_size)?,
    };
    // Writing summary.json is part of the job (the modes' sink does it too).
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(
        out_dir.join(crate::workloads::logs::sink::SUMMARY_FILE),
        summary.to_json(),
    )?;
    let wall = started.elapsed().as_secs_f64();
    let process = sampler.finish();
    Ok(BaselineReport {
        kind,
        wall_seconds: wall,
        records: summary.lines,
        records_per_second: summary.lines as f64 / wall.max(1e-9),
        cpu_percent: process.cpu_percent,
        peak_rss_bytes: process.peak_rss_bytes,
    })
}

/// The `matrix` job without actors: `(trace, frobenius)` of every task, on
/// one thread (plain) or with `par_iter` (rayon), then added in task order
/// exactly as the sink does, so the summary is byte-identical.
pub fn matrix_summary(kind: BaselineKind, tasks: u64, n: usize, seed: u64) -> MatrixSummary {
    let values: Vec<(f64, f64)> = match kind {
        BaselineKind::Plain => (0..tasks).map(|i| matrix::run_task(seed, i, n)).collect(),
        BaselineKind::Rayon => (0..tasks)
            .into_par_iter()
            .map(|i| matrix::run_task(seed, i, n))
            .collect(),
    };
    let (mut trace_sum, mut frobenius_sum) = (0.0, 0.0);
    for (t, f) in values {
        trace_sum += t;
        frobenius_sum += f;
    }
    MatrixSummary {
        tasks,
        n,
        trace_sum,
        frobenius_sum,
    }
}

/// [`measure`] for the `matrix` workload.
pub fn measure_matrix(
    kind: BaselineKind,
    tasks: u64,
    n: usize,
    seed: u64,
    out_dir: &Path,
) -> Result<BaselineReport, StageError> {
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let started = Instant::now();
    let summary = matrix_summary(kind, tasks, n, seed);
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join(matrix::SUMMARY_FILE), summary.to_json())?;
    let wall = started.elapsed().as_secs_f64();
    let process = sampler.finish();
    Ok(BaselineReport {
        kind,
        wall_seconds: wall,
        records: tasks,
        records_per_second: tasks as f64 / wall.max(1e-9),
        cpu_percent: process.cpu_percent,
        peak_rss_bytes: process.peak_rss_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::logs::generate::Generator;
    use crate::workloads::logs::{LogsInput, LogsParams};
    use crate::{JobSpec, Mode, RunConfig};

    #[test]
    fn both_baselines_give_exactly_the_serial_summary() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.log");
        let file = std::fs::File::create(&input).unwrap();
        // Several batches of 97 lines, with the generator's malformed lines.
        Generator::new(7, 3001).write_all(file).unwrap();
        let spec = || vec![InputSpec::parse(input.to_str().unwrap())];

        let out = dir.path().join("serial");
        let params = LogsParams {
            input: LogsInput::Files(spec()),
            out_dir: out.clone(),
            emit_records: false,
            snapshot: None,
            max_batch_delay_ms: 200,
            format: Default::default(),
            max_rejected_ppm: 900_000,
            dimensions: Default::default(),
        };
        let job = JobSpec::new(crate::workloads::logs::NAME, &params).unwrap();
        let config = RunConfig {
            mode: Mode::Serial,
            batch_size: 97,
            ..RunConfig::default()
        };
        crate::run(&crate::workloads::builtin_registry(), &job, &config).unwrap();
        let serial = std::fs::read_to_string(out.join("summary.json")).unwrap();

        let plain = plain(spec(), 97).unwrap();
        assert_eq!(plain.to_json(), serial);
        assert_eq!(plain.lines, 3001);
        assert!(plain.rejected > 0, "the input should hold malformed lines");
        assert_eq!(rayon(spec(), 97).unwrap().to_json(), serial);
        // A different batch size must not change the answer either.
        assert_eq!(rayon(spec(), 1000).unwrap().to_json(), serial);

        let report = measure(BaselineKind::Rayon, &input, &dir.path().join("r"), 500).unwrap();
        assert_eq!(report.records, 3001);
        let written = std::fs::read_to_string(dir.path().join("r/summary.json")).unwrap();
        assert_eq!(written, serial);
    }

    #[test]
    fn matrix_baselines_give_exactly_the_serial_summary() {
        let dir = tempfile::tempdir().unwrap();
        let params = crate::workloads::matrix::MatrixParams {
            tasks: 37,
            n: 12,
            seed: 5,
            out_dir: dir.path().to_path_buf(),
        };
        let job = JobSpec::new(matrix::NAME, &params).unwrap();
        let config = RunConfig {
            mode: Mode::Serial,
            batch_size: 5,
            ..RunConfig::default()
        };
        crate::run(&crate::workloads::builtin_registry(), &job, &config).unwrap();
        let serial = std::fs::read_to_string(dir.path().join(matrix::SUMMARY_FILE)).unwrap();
        for kind in [BaselineKind::Plain, BaselineKind::Rayon] {
            assert_eq!(
                matrix_summary(kind, 37, 12, 5).to_json(),
                serial,
                "{kind:?}"
            );
        }
    }
}
