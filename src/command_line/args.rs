//! The arguments of `parpipe run` validated into what the library needs:
//! the workload's parameters and the [`RunConfig`], touching no file but
//! the token's; each refusal is a usage error (exit 2). The token and
//! duration flags that `parpipe worker` shares are read here too.

use super::cli::{ModeArg, RunArgs, WorkloadArg};
use super::{usage, Failure};
use parpipe::sources::InputSpec;
use parpipe::workloads::logs::{self, LogsInput, LogsParams};
use parpipe::workloads::matrix::{self, MatrixParams};
use parpipe::Replicas;
use parpipe::Token;
use parpipe::{JobSpec, RunConfig};

use std::path::Path;
use std::time::Duration;

pub(super) fn token(file: Option<&Path>) -> Result<Option<Token>, Failure> {
    match file {
        Some(path) => Token::from_file(path)
            .map(Some)
            .map_err(|e| usage(anyhow::anyhow!(e))),
        None => Token::from_env().map_err(|e| usage(anyhow::anyhow!(e))),
    }
}

pub(super) fn seconds(value: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value).map_err(|e| usage(anyhow::anyhow!("{flag}: {e}")))
}

/// A workload's parameters, still without the directory it writes into.
pub(super) enum Params {
    Matrix(MatrixParams),
    Logs(LogsParams),
}

impl Params {
    /// The job, writing into `out_dir`.
    pub(super) fn into_job(self, out_dir: &Path) -> Result<JobSpec, Failure> {
        match self {
            Params::Matrix(mut p) => {
                p.out_dir = out_dir.to_path_buf();
                JobSpec::new(matrix::NAME, &p).map_err(usage)
            }
            Params::Logs(mut p) => {
                p.out_dir = out_dir.to_path_buf();
                JobSpec::new(logs::NAME, &p).map_err(usage)
            }
        }
    }
}

/// `--follow` takes one growing file, in serial or pipeline mode.
fn check_follow(args: &RunArgs) -> Result<(), Failure> {
    if !args.follow {
        return Ok(());
    }
    let why = if args.workload != WorkloadArg::Logs {
        Some("--follow is for the logs workload".to_string())
    } else if args.inputs.len() != 1 || args.inputs[0] == "-" {
        Some("--follow takes exactly one --input FILE (not standard input)".to_string())
    } else if matches!(args.mode, ModeArg::Multiprocess) {
        // The coordinator must never wait inside its source (heartbeats,
        // signals): a growing file is read in serial or pipeline mode.
        Some("--follow works in serial and pipeline mode, not multiprocess".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(usage(anyhow::anyhow!(why))),
        None => Ok(()),
    }
}

/// Raw arguments validated into what the library needs (touching no file
/// but the token's).
pub(super) fn job_from_args(args: &RunArgs) -> Result<(Params, RunConfig), Failure> {
    check_follow(args)?;
    let (params, default_batch) = match args.workload {
        WorkloadArg::Matrix => {
            if args.snapshot_every.is_some() {
                return Err(usage(anyhow::anyhow!(
                    "--snapshot-every is for the logs workload (matrix writes its summary at the end)"
                )));
            }
            if !args.inputs.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "workload 'matrix' takes no --input (its tasks are generated)"
                )));
            }
            let params = MatrixParams {
                tasks: args.records.unwrap_or(200),
                n: args.matrix_size,
                seed: args.seed,
                out_dir: args.out.clone(),
            };
            let batch = matrix::default_batch(params.n);
            (Params::Matrix(params), batch)
        }
        WorkloadArg::Logs => {
            let input = if args.inputs.is_empty() {
                LogsInput::Generate {
                    records: args.records.unwrap_or(1_000_000),
                    seed: args.seed,
                }
            } else if args.follow {
                LogsInput::Files(
                    args.inputs
                        .iter()
                        .map(|a| InputSpec::Follow(a.into()))
                        .collect(),
                )
            } else {
                LogsInput::Files(args.inputs.iter().map(|a| InputSpec::parse(a)).collect())
            };
            let format = logs_format(args, &input)?;
            let client_from = if args.client_from == "x-forwarded-for" {
                if !format.has_forwarded_for() {
                    return Err(usage(anyhow::anyhow!(
                        "--client-from x-forwarded-for: the log format '{}' has no X-Forwarded-For field \
                         (give the server's own format, e.g. --log-format nginx:'… \"$http_x_forwarded_for\"')",
                        format.name
                    )));
                }
                logs::ClientFrom::ForwardedFor
            } else {
                logs::ClientFrom::Remote
            };
            let params = LogsParams {
                format,
                max_rejected_ppm: (args.max_rejected_ratio * 1e6).round() as u32,
                input,
                out_dir: args.out.clone(),
                emit_records: args.emit_records,
                snapshot: args.snapshot_every.map(|secs| logs::SnapshotPlan {
                    dir: args.out.clone(),
                    every_ms: (secs * 1000.0) as u64,
                    // An input that can pause: a snapshot also comes
                    // while no batch does.
                    trailing: args.follow || args.inputs.iter().any(|a| a == "-"),
                }),
                max_batch_delay_ms: (args.max_batch_delay * 1000.0).round().max(1.0) as u64,
                dimensions: logs::Dimensions {
                    top: args.top,
                    time_zone: args.tz.clone(),
                    client_from,
                },
            };
            (Params::Logs(params), 8192)
        }
    };
    let mp = &args.multiprocess;
    let config = RunConfig {
        mode: args.mode.into(),
        batch_size: args.batch_size.unwrap_or(default_batch),
        grow_chunks: args.batch_size.is_none(),
        queue_depth: args.queue_depth,
        workers: args.workers,
        replicas: Replicas::combine(args.replicas.iter().cloned())
            .map_err(|e| usage(anyhow::anyhow!("--replicas: {e}")))?,
        inflight: mp.inflight,
        listen: mp.listen.clone(),
        token: token(mp.token_file.as_deref())?,
        heartbeat_timeout: seconds(mp.heartbeat_timeout, "--heartbeat-timeout")?,
        worker_wait_timeout: seconds(mp.worker_wait_timeout, "--worker-wait-timeout")?,
        max_frame: mp.max_frame,
        dashboard: args.dashboard.clone(),
        // The default: this binary's `worker`, allowed to read the input
        // files' directories.
        worker_command: None,
        // Log lines are cheap: a small input is not worth an engine. (A
        // matrix task is heavy: multiprocess mode gains from 16 tasks.)
        inline_small: matches!(params, Params::Logs(_)),
        inline_limits: parpipe::plan::InlineLimits {
            pipeline_batches: args.inline_batches_pipeline,
            reader_batches: args.inline_batches_readers,
            shipped_batches: args.inline_batches_shipped,
            smaller_batches_from: args.smaller_batches_from,
        },
        ..RunConfig::default()
    };
    config.validate().map_err(usage)?;
    Ok((params, config))
}

/// `--log-format`, its W3C fields read from the inputs' `#Fields:`
/// header when not given (so that every worker knows them).
fn logs_format(args: &RunArgs, input: &LogsInput) -> Result<logs::format::LogFormat, Failure> {
    let format = (*args.log_format).clone();
    match input {
        LogsInput::Generate { .. } if !format.is_combined() => Err(usage(anyhow::anyhow!(
            "--log-format is for --input: the generator writes combined lines"
        ))),
        LogsInput::Files(specs) if format.needs_w3c_fields() => {
            let name = format.name.clone();
            format
                .with_fields_of(specs)
                .map_err(|e| Failure::from(anyhow::anyhow!("--log-format {name}: {e}")))
        }
        _ => Ok(format),
    }
}
