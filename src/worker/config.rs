//! [`WorkerConfig`]: how a worker finds and joins its coordinator, with
//! its defaults and the worker arguments an embedding application's `main`
//! hands over (parsed as the `parpipe worker` command's, ranges included).

use crate::error::{Error, RunError};
use crate::file_range::AllowedRoots;
use crate::protocol::{Token, DEFAULT_MAX_FRAME, MAX_WORKER_THREADS};
use std::time::Duration;

/// How a worker finds and joins its coordinator.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The coordinator's address, `HOST:PORT`.
    pub connect: String,
    /// The shared token (`None`: the empty key, accepted only by a
    /// coordinator that runs without a token on loopback).
    pub token: Option<Token>,
    /// Serve one job after another instead of exiting after the first.
    pub keep_alive: bool,
    /// Largest frame accepted or sent.
    pub max_frame: usize,
    /// How long to keep trying to make the first connection (`None`:
    /// forever). With `keep_alive`, the worker then waits for its next
    /// coordinator without a limit.
    pub connect_timeout: Option<Duration>,
    /// Take a refused connection to mean the coordinator has finished its
    /// job, and return `Ok` rather than retrying: for launchers that start
    /// workers only once the coordinator listens, so that one arriving
    /// after the work is done ends cleanly. Not for keep-alive workers.
    pub done_if_refused: bool,
    /// The directories whose files this worker reads chunks from itself
    /// (`ChunkInFiles`), announced in its hello; empty: it takes every
    /// chunk as bytes, and a `ChunkInFiles` is a protocol error.
    pub allow_read: AllowedRoots,
    /// Chunks processed at once, `1..=`[`MAX_WORKER_THREADS`], each by a
    /// child process forked for the job when this process has never
    /// started a thread, else by a thread; announced in the hello, so that
    /// the coordinator gives this worker `threads` × `inflight` credits.
    pub threads: usize,
}

impl WorkerConfig {
    /// A worker for `connect` with defaults: the token from `PARPIPE_TOKEN`
    /// when set, one job, 64 MiB frames, 30 s to connect, one thread per
    /// core ([`WorkerConfig::default_threads`]).
    pub fn new(connect: impl Into<String>) -> Result<Self, Error> {
        Ok(WorkerConfig {
            connect: connect.into(),
            token: Token::from_env().map_err(RunError::Config)?,
            keep_alive: false,
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Some(Duration::from_secs(30)),
            done_if_refused: false,
            allow_read: AllowedRoots::default(),
            threads: Self::default_threads(),
        })
    }

    /// The machine's cores (at most [`MAX_WORKER_THREADS`]).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_WORKER_THREADS as usize)
    }

    /// Parses worker arguments as the coordinator passes them to the
    /// processes it spawns: `--connect HOST:PORT [--max-frame N]
    /// [--keep-alive] [--done-if-refused] [--token-file F] [--threads N]
    /// [--allow-read DIR]…`. An embedding application's `main`
    /// hands its arguments after `worker` to this.
    pub fn from_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut connect = None;
        let mut roots = Vec::new();
        let mut config = WorkerConfig::new(String::new())?;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .map(|v| v.as_ref().to_string())
                    .ok_or_else(|| RunError::Config(format!("{name} needs a value")))
            };
            match arg.as_ref() {
                "--connect" => connect = Some(value("--connect")?),
                "--max-frame" => {
                    // A frame's length field is a u32; below 1 KiB no job fits.
                    config.max_frame = value("--max-frame")?
                        .parse()
                        .ok()
                        .filter(|n| (MIN_MAX_FRAME..=u32::MAX as usize).contains(n))
                        .ok_or_else(|| {
                            RunError::Config(format!(
                                "--max-frame: expected an integer from {MIN_MAX_FRAME} to {}",
                                u32::MAX
                            ))
                        })?
                }
                "--token-file" => {
                    config.token = Some(
                        Token::from_file(std::path::Path::new(&value("--token-file")?))
                            .map_err(RunError::Config)?,
                    )
                }
                "--keep-alive" => config.keep_alive = true,
                "--done-if-refused" => config.done_if_refused = true,
                "--allow-read" => roots.push(value("--allow-read")?),
                "--threads" => {
                    config.threads = value("--threads")?
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_WORKER_THREADS as usize).contains(n))
                        .ok_or_else(|| {
                            RunError::Config(format!(
                                "--threads: expected an integer from 1 to {MAX_WORKER_THREADS}"
                            ))
                        })?
                }
                other => {
                    return Err(
                        RunError::Config(format!("unknown worker argument '{other}'")).into(),
                    )
                }
            }
        }
        config.connect = connect.ok_or_else(|| RunError::Config("--connect is required".into()))?;
        if config.keep_alive && config.done_if_refused {
            return Err(RunError::Config(
                "--done-if-refused and --keep-alive exclude each other".into(),
            )
            .into());
        }
        config.allow_read = AllowedRoots::new(&roots).map_err(RunError::Config)?;
        Ok(config)
    }
}

/// Smallest `--max-frame`, as the `parpipe worker` command's: room for any
/// handshake or control message.
const MIN_MAX_FRAME: usize = 1024;
