//! `parpipe bench` and `parpipe bench-baseline`: their flags checked and
//! handed to the library's private bench runner, the tables printed.

use super::cli::{self, BaselineArgs, BaselineKindArg, BenchArgs, BenchWorkloadArg, WorkloadArg};
use super::{usage, Failure};
use anyhow::Context as _;

pub(super) fn bench(args: BenchArgs, quiet: bool) -> Result<(), Failure> {
    use parpipe::bench::{self, BenchPlan, BenchWorkload};
    let range = format!(
        "expected comma-separated sizes from 1 to {}",
        cli::MAX_RECORDS
    );
    let default_sizes = if args.grid {
        "100000"
    } else {
        "25000,50000,100000,1000000"
    };
    let sizes = bench::parse_sizes(args.sizes.as_deref().unwrap_or(default_sizes))
        .map_err(|e| usage(anyhow::anyhow!("--sizes: {e}; {range}")))?;
    if let Some(big) = sizes.iter().find(|&&n| n > cli::MAX_RECORDS) {
        return Err(usage(anyhow::anyhow!(
            "--sizes: size {big} is out of range; {range}"
        )));
    }
    let modes =
        bench::parse_modes(&args.modes).map_err(|e| usage(anyhow::anyhow!("--modes: {e}")))?;
    let exe = std::env::current_exe().context("cannot find the parpipe binary")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create '{}'", args.out.display()))?;
    let workloads = match args.workload {
        BenchWorkloadArg::Logs => vec![BenchWorkload::Logs],
        BenchWorkloadArg::Matrix => vec![BenchWorkload::Matrix],
        BenchWorkloadArg::All => [BenchWorkload::Logs, BenchWorkload::Matrix]
            .into_iter()
            .filter(|&w| bench::workload_available(&exe, w, &args.out))
            .collect(),
    };
    if workloads == [BenchWorkload::Matrix]
        && !bench::workload_available(&exe, BenchWorkload::Matrix, &args.out)
    {
        return Err(usage(anyhow::anyhow!(
            "workload 'matrix' is not available yet"
        )));
    }
    let plan = BenchPlan {
        workloads,
        sizes,
        modes,
        repeat: args.repeat,
        out: args.out.clone(),
        exe,
        progress: !quiet,
        matrix_size: args.matrix_size,
        bound_ways: args
            .bound_ways
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    if args.grid {
        if !plan.has_parallel_mode() {
            return Err(usage(anyhow::anyhow!(
                "--grid: --modes must include pipeline or multiprocess"
            )));
        }
        let results = plan.run_grid()?;
        let table = bench::grid::write_outputs(&results, &args.out)?;
        println!("{table}");
        if !quiet {
            eprintln!("bench: wrote {}", args.out.join("grid.json").display());
        }
        return Ok(());
    }
    let results = plan.run()?;
    let table = bench::write_outputs(&results, &args.out)?;
    println!("{table}");
    if !quiet {
        eprintln!(
            "bench: wrote {} and {}",
            args.out.join("bench.json").display(),
            args.out.join("bench.svg").display()
        );
    }
    Ok(())
}

pub(super) fn bench_baseline(args: BaselineArgs) -> Result<(), Failure> {
    use parpipe::bench::baseline::{measure, measure_matrix, BaselineKind};
    let kind = match args.kind {
        BaselineKindArg::Plain => BaselineKind::Plain,
        BaselineKindArg::Rayon => BaselineKind::Rayon,
    };
    let report = match args.workload {
        WorkloadArg::Logs => measure(kind, &args.input, &args.out, args.batch_size.max(1)),
        WorkloadArg::Matrix => {
            measure_matrix(kind, args.records, args.matrix_size, args.seed, &args.out)
        }
    }
    .map_err(|e| anyhow::anyhow!("{} baseline: {e}", kind.as_str()))?;
    let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
    parpipe::outputs::write_atomic(&args.report, (json + "\n").as_bytes())?;
    Ok(())
}
