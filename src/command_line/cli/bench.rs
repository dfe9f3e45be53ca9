//! The flags of `parpipe bench` and `parpipe bench-baseline`.

use super::*;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BenchWorkloadArg {
    Logs,
    Matrix,
    All,
}

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Workload to benchmark (`all`: every workload this build can run).
    #[arg(long, value_enum, default_value_t = BenchWorkloadArg::Logs)]
    pub(crate) workload: BenchWorkloadArg,
    /// Input sizes in lines, comma-separated (`k`/`M` suffixes allowed;
    /// default 25000,50000,100000,1000000, with --grid 100000).
    #[arg(long)]
    pub(crate) sizes: Option<String>,
    /// Modes, comma-separated; a mode this build lacks is shown as n/a.
    #[arg(long, default_value = "serial,pipeline,multiprocess")]
    pub(crate) modes: String,
    /// Measured runs per column (after one warm-up run), 1 to 1000.
    #[arg(long, default_value_t = 5, value_parser = int_in::<usize>(1, MAX_REPEAT))]
    pub(crate) repeat: usize,
    /// Output directory: inputs, per-run outputs, bench.json, bench.svg.
    #[arg(long, default_value = "parpipe-bench")]
    pub(crate) out: PathBuf,
    /// Matrix size for the `matrix` workload, whose sizes count tasks
    /// (16×16 keeps a million tasks to seconds), 1 to 2048.
    #[arg(long, default_value_t = 16, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    /// Serial processes run at once, each on 1/N of the input, for the
    /// bound column (default: number of cores), 1 to 1024.
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1, MAX_WORKERS))]
    pub(crate) bound_ways: Option<usize>,
    /// Instead of the table, search the parallel modes' knobs (pipeline:
    /// replicas, batch size, queue depth; multiprocess: batch size,
    /// inflight, workers) and compare the best fixed configuration with the
    /// automatic one; writes grid.json.
    #[arg(long)]
    pub(crate) grid: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BaselineKindArg {
    Plain,
    Rayon,
}

#[derive(Args, Debug)]
pub(crate) struct BaselineArgs {
    #[arg(long, value_enum, default_value_t = WorkloadArg::Logs)]
    pub(crate) workload: WorkloadArg,
    #[arg(long, value_enum)]
    pub(crate) kind: BaselineKindArg,
    #[arg(long)]
    pub(crate) input: PathBuf,
    #[arg(long, default_value_t = 0, value_parser = int_in::<u64>(0, MAX_RECORDS))]
    pub(crate) records: u64,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    #[arg(long, default_value_t = 16, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    #[arg(long, default_value_t = 8192, value_parser = int_in::<usize>(1, MAX_BATCH))]
    pub(crate) batch_size: usize,
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[arg(long)]
    pub(crate) report: PathBuf,
}
