//! The worker entry point of multiprocess mode, public so that any program
//! can be a worker: the `parpipe worker` command and an embedding
//! application's own `main` both call [`run_worker`] with their [`Registry`].
//!
//! A worker connects to a coordinator, authenticates (the wire's
//! handshake), receives the job (a registered pipeline
//! name plus parameters), rebuilds the pipeline from its registry, and then
//! processes chunks on `threads` dedicated threads, each with its own copy
//! of the pipeline — decode the source batch, run the stages, fold it into
//! an empty partial, encode the partial — while the socket task keeps
//! exchanging heartbeats. Results go back in the order they finish; the
//! coordinator merges them in input order, so the output does not depend
//! on the thread count. With `keep_alive` it serves one
//! job after another. A worker allowed to read directories
//! (`--allow-read`, announced in its hello) may be sent chunks as byte
//! ranges of input files under them, which it reads itself after checking
//! each path, size, time and fingerprint (see
//! [`file_range`](crate::file_range)). `chunk.rs` holds the
//! processing of one chunk; this file, the connection around it.

mod chunk;
mod dispatch;

pub use dispatch::{dispatch_if_worker, run_worker_anywhere, SPAWNED_BY_ENV};
pub(crate) use dispatch::{exit_if_undispatched, UNDISPATCHED_EXIT, UNDISPATCHED_MESSAGE};

use chunk::{ChunkProcessor, Work};

use crate::error::{Error, RunError};
use crate::file_range::AllowedRoots;
use crate::pipeline::Registry;
use crate::protocol::{
    client_handshake, read_frame, write_frame, FrameCodec, Message, PeerHello, ProtocolError,
    Token, DEFAULT_MAX_FRAME, MAX_WORKER_THREADS,
};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

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
    /// Chunks processed at once, each on its own thread,
    /// `1..=`[`MAX_WORKER_THREADS`]; announced in the hello, so that the
    /// coordinator gives this worker `threads` × `inflight` credits.
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

/// Runs a worker until its job is done (or, with `keep_alive`, forever),
/// blocking the caller on a runtime of its own.
pub fn run_worker(registry: &Registry, config: &WorkerConfig) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(format!("cannot start the worker runtime: {e}")))?;
    let result: Result<(), RunError> = runtime.block_on(async {
        let mut timeout = config.connect_timeout;
        let mut busy = Backoff::default();
        loop {
            let started = Instant::now();
            let Some(stream) = connect(config, timeout).await? else {
                tracing::info!(
                    "coordinator {} refused the connection: its job is over",
                    config.connect
                );
                return Ok(());
            };
            let result = match serve(registry, config, stream).await {
                Ok(Served::Busy {
                    retry_after,
                    reason,
                }) => {
                    // Refused before the handshake: the first connection's
                    // time keeps running.
                    let wait = busy.next(retry_after);
                    let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
                    if left.is_some_and(|left| left < wait) {
                        return Err(RunError::Runtime(format!(
                            "coordinator {} stayed busy ({reason}) for the connect timeout",
                            config.connect
                        )));
                    }
                    tracing::warn!(
                        "coordinator {} is busy ({reason}); connecting again in {} ms",
                        config.connect,
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    timeout = left.map(|left| left - wait);
                    continue;
                }
                Ok(Served::Done) => Ok(()),
                Err(e) => Err(e),
            };
            busy = Backoff::default();
            // Between jobs the coordinator is gone by design: a keep-alive
            // worker waits for the next one as long as it takes.
            timeout = None;
            match (result, config.keep_alive) {
                (Ok(()), true) => tracing::info!("job done; waiting for the next one"),
                (Err(Unserved::NoJob(e)), true) => {
                    // The usual reconnect: right after a job, the ending
                    // coordinator still accepts, then closes.
                    tracing::info!(
                        "coordinator {} closed the connection before giving this worker \
                         any work ({e}): its run is ending; waiting for the next job",
                        config.connect
                    );
                    tokio::time::sleep(MAX_RETRY_DELAY).await;
                }
                (Err(Unserved::Failed(e)), true) => {
                    tracing::warn!("job ended with an error: {e}; reconnecting");
                    // A coordinator that keeps refusing us (a wrong token, …)
                    // is not hammered in a tight loop.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                (Ok(()), false) => return Ok(()),
                (Err(Unserved::NoJob(e)), false) => return Err(protocol_error(config, e)),
                (Err(Unserved::Failed(e)), false) => return Err(e),
            }
        }
    });
    Ok(result?)
}

/// Smallest `--max-frame`, as the `parpipe worker` command's: room for any
/// handshake or control message.
const MIN_MAX_FRAME: usize = 1024;

/// Longest wait between two connection attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Longest wait before connecting again to a coordinator that said it is
/// busy.
const MAX_BUSY_DELAY: Duration = Duration::from_secs(5);

/// The waits before connecting again to a busy coordinator: what it
/// asks, doubled at each refusal in a row up to [`MAX_BUSY_DELAY`], plus
/// up to half as much again at random, so that refused workers do not all
/// come back at once.
#[derive(Default)]
struct Backoff {
    refusals: u32,
}

impl Backoff {
    fn next(&mut self, asked: Duration) -> Duration {
        let base = asked
            .max(Duration::from_millis(50))
            .saturating_mul(1 << self.refusals.min(8))
            .min(MAX_BUSY_DELAY);
        self.refusals += 1;
        let random = crate::protocol::random_bytes(2);
        let jitter = u32::from(u16::from_le_bytes([random[0], random[1]]));
        base + base / 2 * jitter / u32::from(u16::MAX)
    }
}

/// How a connection to a coordinator ended without an error.
enum Served {
    /// The job was done.
    Done,
    /// The coordinator refused the connection for now.
    Busy {
        retry_after: Duration,
        reason: String,
    },
}

/// Connects to the coordinator, retrying with a growing delay for up to
/// `timeout` (`None`: forever); `None` when it refused and
/// [`WorkerConfig::done_if_refused`] says that means its job is over.
async fn connect(
    config: &WorkerConfig,
    timeout: Option<Duration>,
) -> Result<Option<TcpStream>, RunError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match TcpStream::connect(&config.connect).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(Some(s));
            }
            Err(e)
                if config.done_if_refused && e.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                return Ok(None)
            }
            Err(e) => {
                if timeout.is_some_and(|t| started.elapsed() >= t) {
                    return Err(RunError::Runtime(format!(
                        "cannot connect to coordinator {}: {e}",
                        config.connect
                    )));
                }
                tracing::debug!("connect {}: {e}; retrying", config.connect);
                tokio::time::sleep(delay).await;
                // At most 0.1 s apart: a refused connection costs both sides
                // next to nothing, and a keep-alive worker waiting for its
                // next job joins within 0.1 s of the coordinator listening
                // (with 0.5 s, short jobs finished before it came).
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

fn protocol_error(config: &WorkerConfig, e: ProtocolError) -> RunError {
    RunError::Runtime(format!("coordinator {}: {e}", config.connect))
}

/// Why a connection served no job to its end.
enum Unserved {
    /// The coordinator closed the connection before it gave a job or a
    /// chunk (as one whose run is ending does): nothing went wrong here.
    NoJob(ProtocolError),
    /// The job, or the connection, failed.
    Failed(RunError),
}

impl From<RunError> for Unserved {
    fn from(e: RunError) -> Self {
        Unserved::Failed(e)
    }
}

/// A failure before the job: the coordinator closing the connection is
/// [`Unserved::NoJob`], anything else (a wrong token, a bad frame) a failure.
fn before_job(config: &WorkerConfig, e: ProtocolError) -> Unserved {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match &e {
        ProtocolError::Closed(_) | ProtocolError::Truncated(_) => Unserved::NoJob(e),
        ProtocolError::Io(io)
            if matches!(
                io.kind(),
                BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
            ) =>
        {
            Unserved::NoJob(e)
        }
        _ => Unserved::Failed(protocol_error(config, e)),
    }
}

/// Serves one job on an open connection.
async fn serve(
    registry: &Registry,
    config: &WorkerConfig,
    stream: TcpStream,
) -> Result<Served, Unserved> {
    let mut framed = Framed::new(stream, FrameCodec::new(config.max_frame));
    let token = config.token.as_ref().map_or(&[][..], |t| t.expose());
    let threads = config.threads.clamp(1, MAX_WORKER_THREADS as usize);
    let hello = PeerHello {
        worker_id: std::process::id() as u64,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as u32,
        threads: threads as u32,
        allowed_roots: config.allow_read.announced(),
    };
    match client_handshake(&mut framed, token, &hello).await {
        Ok(()) => {}
        Err(ProtocolError::Busy {
            retry_after_ms,
            reason,
        }) => {
            return Ok(Served::Busy {
                retry_after: Duration::from_millis(retry_after_ms),
                reason,
            })
        }
        Err(e) => return Err(before_job(config, e)),
    }
    let (spec, heartbeat, batch_size) =
        match tokio::time::timeout(crate::protocol::HANDSHAKE_TIMEOUT, read_frame(&mut framed))
            .await
        {
            Ok(Ok(Some(Message::Job {
                spec,
                heartbeat_ms,
                batch_size,
            }))) => (
                spec,
                Duration::from_millis(heartbeat_ms.max(100)),
                usize::try_from(batch_size.max(1)).unwrap_or(usize::MAX),
            ),
            Ok(Ok(Some(other))) => {
                return Err(Unserved::Failed(protocol_error(
                    config,
                    ProtocolError::Unexpected {
                        got: other.kind(),
                        during: "job",
                    },
                )))
            }
            Ok(Ok(None)) => return Err(before_job(config, ProtocolError::Closed("job"))),
            Ok(Err(e)) => return Err(before_job(config, e)),
            Err(_) => {
                return Err(Unserved::Failed(protocol_error(
                    config,
                    ProtocolError::Timeout("job"),
                )))
            }
        };
    // One pipeline per thread: stages keep per-instance state (scratch
    // buffers, compiled patterns), and each chunk folds into an empty
    // partial of its own, so copies never need to agree on anything.
    let mut processors = Vec::with_capacity(threads);
    for _ in 0..threads {
        let pipeline = registry.build(&spec).map_err(RunError::from)?;
        processors.push(ChunkProcessor::new(
            pipeline,
            config.max_frame,
            batch_size,
            config.allow_read.clone(),
        ));
    }
    tracing::info!(pipeline = %spec.pipeline, threads, "joined coordinator {}", config.connect);

    let (work_tx, work_rx) = std::sync::mpsc::channel::<Work>();
    // The threads take chunks from one queue, whichever is free first.
    let work_rx = Arc::new(Mutex::new(work_rx));
    // Unbounded, but bounded in practice: one result per chunk received, and
    // the coordinator sends at most its credit of chunks at a time.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Message>();
    for (i, mut processor) in processors.into_iter().enumerate() {
        let (work_rx, done_tx) = (Arc::clone(&work_rx), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("parpipe-worker-{i}"))
            .spawn(move || loop {
                // The lock is held only while waiting for the next chunk.
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(work) = next else { return };
                if done_tx.send(processor.process(work)).is_err() {
                    return;
                }
            })
            .map_err(|e| RunError::Runtime(format!("cannot start a worker thread: {e}")))?;
    }
    drop(done_tx);

    let mut ticker = tokio::time::interval(heartbeat / 4);
    let mut last_heard = Instant::now();
    // A coordinator whose run ends as this worker joins closes before
    // any chunk: no work lost, as if it had closed before the job.
    let mut chunks = 0u64;
    let closed = |chunks: u64, e: ProtocolError| match chunks {
        0 => before_job(config, e),
        _ => Unserved::Failed(protocol_error(config, e)),
    };
    let outcome: Result<(), Unserved> = loop {
        tokio::select! {
            frame = framed.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(msg @ (Message::Chunk { .. } | Message::ChunkInFiles { .. }))) => {
                        // A `ChunkInFiles` to a worker that announced no root comes back here.
                        chunks += 1;
                        match Work::from_message(msg, !config.allow_read.is_empty()) {
                            Ok(work) => if work_tx.send(work).is_err() {
                                break Err(RunError::Runtime("the worker thread stopped".into()).into());
                            },
                            Err(other) => break Err(protocol_error(config, ProtocolError::Unexpected {
                                got: other.kind(),
                                during: "the job",
                            }).into()),
                        }
                    }
                    Some(Ok(Message::Heartbeat)) => {}
                    Some(Ok(Message::Shutdown)) => break Ok(()),
                    Some(Ok(other)) => break Err(protocol_error(config, ProtocolError::Unexpected {
                        got: other.kind(),
                        during: "the job",
                    }).into()),
                    Some(Err(e)) => break Err(closed(chunks, e)),
                    None => break Err(closed(chunks, ProtocolError::Closed("the job"))),
                }
            }
            Some(msg) = done_rx.recv() => {
                if let Err(e) = write_frame(&mut framed, msg).await {
                    break Err(closed(chunks, e));
                }
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() > heartbeat {
                    break Err(RunError::Runtime(format!(
                        "coordinator {} silent for more than {:?}", config.connect, heartbeat
                    )).into());
                }
                if let Err(e) = write_frame(&mut framed, Message::Heartbeat).await {
                    break Err(closed(chunks, e));
                }
            }
        }
    };
    drop(work_tx);
    // Clean half-close: we send nothing more; the coordinator sees EOF.
    let _ = framed.get_mut().shutdown().await;
    outcome.map(|()| Served::Done)
}

#[cfg(test)]
mod tests;
