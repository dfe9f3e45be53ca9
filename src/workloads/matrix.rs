//! The built-in `matrix` workload (docs/matrix-workload.md): a CPU-bound
//! kernel. Task `i` of `tasks` fills two `n×n` f64 matrices from a SplitMix64
//! generator seeded with `(seed, i)`, multiplies them (blocked i-k-j loops,
//! no BLAS), and reports the trace and the Frobenius norm of the product.
//!
//! `summary.json` holds the task count and the sums of both values added in
//! task order. Floating-point addition is not associative, so the partial of
//! a chunk does not pre-add: it carries the per-task `(trace, frobenius)`
//! values in task order, merging concatenates (in chunk order), and the sink
//! adds them one by one as they arrive — the exact left-to-right sum serial
//! mode computes, whatever the chunking or the number of workers.

use crate::pipeline::Pipeline;
use crate::stage::{Aggregate, BatchInfo, Sink, Source, Stage, StageError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The registry name of this workload.
pub const NAME: &str = "matrix";
/// The output file.
pub const SUMMARY_FILE: &str = "summary.json";

/// Parameters of a `matrix` run. They cross the wire to workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixParams {
    /// Number of tasks.
    pub tasks: u64,
    /// Matrix size.
    pub n: usize,
    /// Generator seed.
    pub seed: u64,
    /// Output directory.
    pub out_dir: PathBuf,
}

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for task `task` of a run seeded with `seed`.
    pub fn for_task(seed: u64, task: u64) -> Self {
        let mut g = SplitMix64(seed ^ task.wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in [-1, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Trace and Frobenius norm of `A·B` for task `task`.
pub fn run_task(seed: u64, task: u64, n: usize) -> (f64, f64) {
    let mut g = SplitMix64::for_task(seed, task);
    let a: Vec<f64> = (0..n * n).map(|_| g.next_f64()).collect();
    let b: Vec<f64> = (0..n * n).map(|_| g.next_f64()).collect();
    let mut c = vec![0.0f64; n * n];
    const BLOCK: usize = 64;
    for kk in (0..n).step_by(BLOCK) {
        let k_end = (kk + BLOCK).min(n);
        for i in 0..n {
            let row = &mut c[i * n..(i + 1) * n];
            for k in kk..k_end {
                let aik = a[i * n + k];
                let brow = &b[k * n..(k + 1) * n];
                for (cij, bkj) in row.iter_mut().zip(brow) {
                    *cij += aik * bkj;
                }
            }
        }
    }
    let trace = (0..n).map(|i| c[i * n + i]).sum::<f64>();
    let frobenius = c.iter().map(|x| x * x).sum::<f64>().sqrt();
    (trace, frobenius)
}

/// The source: batches of task numbers.
pub struct TaskSource {
    next: u64,
    tasks: u64,
}

impl Source for TaskSource {
    type Out = Vec<u64>;

    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
        let end = self.tasks.min(self.next + max as u64);
        let batch: Vec<u64> = (self.next..end).collect();
        self.next = end;
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.tasks - self.next)
    }

    /// Generated tasks: nothing to wait for.
    fn may_wait(&self) -> bool {
        false
    }
}

/// The stage: multiplies each task's matrices.
#[derive(Debug, Clone)]
pub struct Multiply {
    seed: u64,
    n: usize,
}

impl Stage for Multiply {
    type In = Vec<u64>;
    type Out = Vec<(f64, f64)>;

    fn process(&mut self, tasks: Vec<u64>, _: &BatchInfo) -> Result<Vec<(f64, f64)>, StageError> {
        Ok(tasks
            .into_iter()
            .map(|t| run_task(self.seed, t, self.n))
            .collect())
    }
}

/// The partial: task count and the per-task values not yet summed, in task order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixPartial {
    /// Tasks folded in.
    pub tasks: u64,
    /// `(trace, frobenius)` per task, in task order, not yet taken by the sink.
    pub values: Vec<(f64, f64)>,
}

/// The aggregate: collects values in order (no addition: see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Collect;

impl Aggregate for Collect {
    type In = Vec<(f64, f64)>;
    type Partial = MatrixPartial;

    fn empty(&self) -> MatrixPartial {
        MatrixPartial::default()
    }

    fn add(
        &mut self,
        acc: &mut MatrixPartial,
        input: Vec<(f64, f64)>,
        _: &BatchInfo,
    ) -> Result<(), StageError> {
        acc.tasks += input.len() as u64;
        acc.values.extend(input);
        Ok(())
    }

    fn merge(&self, acc: &mut MatrixPartial, later: MatrixPartial) {
        // Counts of tasks run here: they cannot come near u64::MAX.
        acc.tasks = acc.tasks.saturating_add(later.tasks);
        acc.values.extend(later.values);
    }

    /// A worker's partial of a chunk: one task and one value per record.
    fn check_chunk(&self, p: &MatrixPartial, _: u64, records: u64) -> Result<(), StageError> {
        if p.tasks != records || p.values.len() as u64 != records {
            return Err(StageError::new(format!(
                "it holds {} tasks and {} values, the chunk {records} tasks",
                p.tasks,
                p.values.len()
            )));
        }
        Ok(())
    }

    /// A worker's partial: its task count must match its values, and the
    /// total must fit.
    fn try_merge(&self, acc: &mut MatrixPartial, later: MatrixPartial) -> Result<(), StageError> {
        if later.values.len() as u64 != later.tasks {
            return Err(StageError::new(format!(
                "a partial of {} tasks carries {} values",
                later.tasks,
                later.values.len()
            )));
        }
        acc.tasks = acc.tasks.checked_add(later.tasks).ok_or_else(|| {
            StageError::new(format!(
                "tasks: {} + {} overflows u64",
                acc.tasks, later.tasks
            ))
        })?;
        acc.values.extend(later.values);
        Ok(())
    }
}

/// `summary.json` of the matrix workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixSummary {
    /// Tasks run.
    pub tasks: u64,
    /// Matrix size.
    pub n: usize,
    /// Sum of the traces, in task order.
    pub trace_sum: f64,
    /// Sum of the Frobenius norms, in task order.
    pub frobenius_sum: f64,
}

impl MatrixSummary {
    /// The text of `summary.json` (one line of JSON, LF).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Tasks per chunk that keep a chunk around 10 ms of work whatever the
/// matrix size: 4 tasks of 160×160, 4096 of 16×16.
pub fn default_batch(n: usize) -> usize {
    let cube = (n.max(1) as u64).pow(3);
    ((16u64 << 20) / cube).clamp(1, 65_536) as usize
}

/// The sink: adds the values in task order as they arrive, writes the summary.
pub struct MatrixSink {
    out_dir: PathBuf,
    n: usize,
    trace_sum: f64,
    frobenius_sum: f64,
}

impl Sink for MatrixSink {
    type Partial = MatrixPartial;
    type Output = ();

    fn absorb(&mut self, acc: &mut MatrixPartial) -> Result<(), StageError> {
        for (t, f) in acc.values.drain(..) {
            self.trace_sum += t;
            self.frobenius_sum += f;
        }
        Ok(())
    }

    fn finish(&mut self, mut result: MatrixPartial) -> Result<(), StageError> {
        self.absorb(&mut result)?;
        let summary = MatrixSummary {
            tasks: result.tasks,
            n: self.n,
            trace_sum: self.trace_sum,
            frobenius_sum: self.frobenius_sum,
        };
        std::fs::create_dir_all(&self.out_dir).map_err(|e| {
            StageError::new(format!("cannot create '{}': {e}", self.out_dir.display()))
        })?;
        let path = self.out_dir.join(SUMMARY_FILE);
        // Whole or not at all: a failure removes the temporary.
        crate::outputs::write_atomic(&path, summary.to_json().as_bytes())
            .map_err(|e| StageError::new(e.to_string()))
    }
}

/// Builds the `matrix` pipeline.
pub fn pipeline(params: MatrixParams) -> Result<Pipeline<()>, StageError> {
    if params.n == 0 || params.n > 4096 {
        return Err(StageError::new("matrix size must be between 1 and 4096"));
    }
    Ok(Pipeline::builder(
        NAME,
        "tasks",
        TaskSource {
            next: 0,
            tasks: params.tasks,
        },
    )
    .stage(
        "multiply",
        Multiply {
            seed: params.seed,
            n: params.n,
        },
    )
    .aggregate(
        "collect",
        Collect,
        "write",
        MatrixSink {
            out_dir: params.out_dir,
            n: params.n,
            trace_sum: 0.0,
            frobenius_sum: 0.0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_deterministic_and_distinct() {
        assert_eq!(run_task(1, 0, 8), run_task(1, 0, 8));
        assert_ne!(run_task(1, 0, 8), run_task(1, 1, 8));
        assert_ne!(run_task(1, 0, 8), run_task(2, 0, 8));
    }

    #[test]
    fn identity_like_check() {
        // 1×1: the product of two numbers; trace = |frobenius| = |a·b|.
        let (t, f) = run_task(7, 3, 1);
        assert!((t.abs() - f).abs() < 1e-15);
    }

    #[test]
    fn blocked_matches_naive() {
        let n = 70;
        let mut g = SplitMix64::for_task(5, 2);
        let a: Vec<f64> = (0..n * n).map(|_| g.next_f64()).collect();
        let b: Vec<f64> = (0..n * n).map(|_| g.next_f64()).collect();
        let mut trace = 0.0;
        for i in 0..n {
            let mut s = 0.0;
            for k in 0..n {
                s += a[i * n + k] * b[k * n + i];
            }
            trace += s;
        }
        let (t, _) = run_task(5, 2, n);
        assert!((t - trace).abs() < 1e-9, "{t} vs {trace}");
    }
}
