//! `parpipe worker`: its flags into a [`WorkerConfig`], then the library's
//! worker with the built-in workloads.

use super::args::{seconds, token};
use super::cli::WorkerArgs;
use super::{usage, Failure};
use parpipe::worker::WorkerConfig;

pub(super) fn worker(args: WorkerArgs) -> Result<(), Failure> {
    let config = WorkerConfig {
        connect: args.connect,
        token: token(args.token_file.as_deref())?,
        keep_alive: args.keep_alive,
        done_if_refused: args.done_if_refused,
        max_frame: args.max_frame,
        connect_timeout: match args.connect_timeout {
            0.0 => None,
            t => Some(seconds(t, "--connect-timeout")?),
        },
        allow_read: parpipe::file_range::AllowedRoots::new(&args.allow_read)
            .map_err(|e| usage(anyhow::anyhow!(e)))?,
        threads: args.threads.unwrap_or_else(WorkerConfig::default_threads),
    };
    let registry = parpipe::workloads::builtin_registry();
    parpipe::worker::run_worker(&registry, &config)
        .map_err(|e| Failure::from(anyhow::Error::new(e)))
}
