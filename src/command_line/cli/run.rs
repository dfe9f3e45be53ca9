//! The flags of `parpipe run`, and those only a multiprocess run reads.

use super::*;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The workload to run.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Logs)]
    pub(crate) workload: WorkloadArg,
    /// Execution mode: serial (one thread), pipeline (an actor per stage),
    /// multiprocess (worker processes).
    #[arg(long, value_enum, default_value_t = ModeArg::Pipeline)]
    pub(crate) mode: ModeArg,
    /// Input file of access-log lines (repeatable, read in the order given;
    /// `-` is standard input; gzip is detected by its content). Without it,
    /// the built-in generator makes the input.
    #[arg(long = "input", value_name = "PATH")]
    pub(crate) inputs: Vec<String>,
    /// Lines to generate when no input is given (logs, default 1000000);
    /// number of tasks (matrix, default 200); 0 to 10^12.
    #[arg(long, value_parser = int_in::<u64>(0, MAX_RECORDS))]
    pub(crate) records: Option<u64>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Records per batch, and per chunk in multiprocess mode
    /// (default: 8192 lines for logs; for matrix, about 10 ms of work:
    /// 4 tasks of 160×160; without it, multiprocess chunks are sized to
    /// what remains, from 1/8 to 2× the default); 1 to 1048576.
    #[arg(long, value_parser = int_in::<usize>(1, MAX_BATCH))]
    pub(crate) batch_size: Option<usize>,
    /// Matrix size of the matrix workload, 1 to 2048.
    #[arg(long, default_value_t = 160, value_parser = int_in::<usize>(1, MAX_MATRIX))]
    pub(crate) matrix_size: usize,
    /// Batches that may wait before each stage (pipeline mode), 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = int_in::<usize>(1, MAX_QUEUE_DEPTH))]
    pub(crate) queue_depth: usize,
    /// Actors for a stage (pipeline mode): STAGE=N (repeatable: the stage
    /// actors, whatever the input), or `auto`: over plain files a reading
    /// lane per core (as without the flag), else measure the stages first
    /// and give the spare cores to the busiest, or pack cheap stages.
    #[arg(long = "replicas", value_name = "STAGE=N|auto", value_parser = Replicas::parse_one)]
    pub(crate) replicas: Vec<Replicas>,
    /// Worker processes (multiprocess mode; default: number of cores), 0 to
    /// 1024 (0: remote workers only).
    #[arg(long, value_parser = int_in::<usize>(0, MAX_WORKERS))]
    pub(crate) workers: Option<usize>,
    /// Small inputs (logs): pipeline mode's stage actors run inline, as
    /// serial mode does, when the input's estimated size is at most this
    /// many batches (too few to overlap and win back the actors'
    /// start-up); 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 16,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_pipeline: u64,
    /// Small inputs (logs): multiprocess mode runs inline at most this many
    /// batches when its workers read their own byte ranges of the input;
    /// 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 12,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_readers: u64,
    /// Small inputs (logs): multiprocess mode runs inline at most this many
    /// batches when the coordinator reads and ships every chunk (gzip,
    /// generated lines); 0 to 1048576, 0: never.
    #[arg(long, value_name = "BATCHES", default_value_t = 24,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_INLINE_BATCHES))]
    pub(crate) inline_batches_shipped: u64,
    /// Small inputs (logs): from this many records on, an input within
    /// --inline-batches-pipeline runs on the stage actors in smaller
    /// batches (3 × that many) instead of inline; 0 to 2^40.
    #[arg(long, value_name = "RECORDS", default_value_t = 65536,
          value_parser = int_in::<u64>(0, parpipe::plan::limits::MAX_SMALLER_BATCHES_FROM))]
    pub(crate) smaller_batches_from: u64,
    /// Output directory: summary.json, report.json, and with --emit-records
    /// records.jsonl and rejects.txt.
    #[arg(long, default_value = "parpipe-out")]
    pub(crate) out: PathBuf,
    /// Also write records.jsonl and rejects.txt.
    #[arg(long)]
    pub(crate) emit_records: bool,
    /// Where to write the JSON report (default: OUT/report.json).
    #[arg(long, value_name = "PATH")]
    pub(crate) report: Option<PathBuf>,
    /// Serve a live dashboard (/), Prometheus metrics (/metrics) and the
    /// status as JSON (/api/status) while the run lasts; alone, on
    /// 127.0.0.1:7071. A non-loopback address needs the job's token.
    #[arg(long, value_name = "IP:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:7071")]
    pub(crate) dashboard: Option<String>,
    /// Keep serving the dashboard and /metrics this long after the run
    /// ends, so that its final state (parpipe_running 0, the final totals)
    /// can be scraped; SIGINT, SIGTERM or SIGHUP ends it at once. Default
    /// with --dashboard: 16 (one scrape at a 15 s interval). 0 to 3600.
    #[arg(long, value_name = "SECS", requires = "dashboard", value_parser = secs_in(0.0, MAX_LINGER))]
    pub(crate) linger: Option<f64>,
    /// Write the run's final metrics (Prometheus text format) to PATH
    /// when it ends, atomically, for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Read the --input file as it grows, as `tail -F` does (rotation by
    /// rename and truncation followed), until SIGINT or SIGTERM, which end
    /// the run normally with its outputs written (serial and pipeline mode).
    #[arg(long)]
    pub(crate) follow: bool,
    /// Rewrite OUT/summary.json and the report of everything read so far,
    /// atomically, every SECS while the run goes on (logs workload).
    #[arg(long, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) snapshot_every: Option<f64>,
    /// How long a batch of standard input or of a --follow file waits for
    /// more lines once it has its first one; then it leaves partial, so a
    /// slow stream still flows.
    /// 0.001 to 3600
    #[arg(long, value_name = "SECS", default_value_t = 0.2, value_parser = secs_in(0.001, 3600.0))]
    pub(crate) max_batch_delay: f64,
    /// Log format (logs): combined (default), common, vcombined, w3c[:FIELDS],
    /// alb, cloudfront, caddy, traefik, json[:KEY=PATH,…], nginx:'LOG_FORMAT',
    /// apache:'LOGFORMAT' (docs/log-formats.md).
    // The brackets are the help text's notation for an optional part, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "FORMAT", default_value = "combined",
          value_parser = |s: &str| parpipe::workloads::logs::format::LogFormat::parse(s).map(Box::new))]
    pub(crate) log_format: Box<parpipe::workloads::logs::format::LogFormat>,
    /// Fail (exit 1, writing nothing) when more than this share of the
    /// lines is rejected (logs), 0 to 1.
    #[arg(long, value_name = "RATIO", default_value_t = 0.9, value_parser = ratio)]
    pub(crate) max_rejected_ratio: f64,
    /// Entries in every top list of summary.json (logs), 0 for all;
    /// 0 to 1000000.
    #[arg(long, value_name = "N", default_value_t = parpipe::workloads::logs::metrics::TOP_N,
          value_parser = int_in::<usize>(0, parpipe::workloads::logs::metrics::MAX_TOP as u64))]
    pub(crate) top: usize,
    /// Time zone of the hour and day buckets (logs): UTC, an IANA name
    /// such as Europe/Berlin, or an offset such as +02:00.
    #[arg(long, value_name = "ZONE", default_value = "UTC", allow_hyphen_values = true,
          value_parser = |s: &str| parpipe::workloads::logs::zone::Zone::parse(s).map(|_| s.to_string()))]
    pub(crate) tz: String,
    /// Where a line's client comes from (logs): remote (the address
    /// field) or x-forwarded-for (the first address of that field, for
    /// formats that log it; the remote address when a line's is empty).
    #[arg(long, value_name = "FROM", default_value = "remote",
          value_parser = ["remote", "x-forwarded-for"])]
    pub(crate) client_from: String,
    #[command(flatten)]
    pub(crate) multiprocess: MultiprocessArgs,
}

#[derive(Args, Debug)]
pub(crate) struct MultiprocessArgs {
    /// Chunks each worker may hold at once (multiprocess mode), 1 to 256.
    #[arg(long, default_value_t = 2, value_parser = int_in::<usize>(1, MAX_INFLIGHT))]
    pub(crate) inflight: usize,
    /// Address to accept workers on (a non-loopback address needs a token).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub(crate) listen: String,
    /// File holding the shared token (else PARPIPE_TOKEN; never on the command line).
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Seconds of silence after which a worker is dropped and its chunks
    /// re-queued, 0.1 to 86400.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) heartbeat_timeout: f64,
    /// Seconds to wait for a first (or replacement) worker before failing,
    /// 0.1 to 86400.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = secs_in(0.1, MAX_SECS))]
    pub(crate) worker_wait_timeout: f64,
    /// Largest frame accepted or sent, in bytes, 1024 to 4294967295.
    #[arg(long, value_name = "BYTES", default_value_t = parpipe::DEFAULT_MAX_FRAME,
          value_parser = int_in::<usize>(MIN_FRAME, MAX_FRAME))]
    pub(crate) max_frame: usize,
}
