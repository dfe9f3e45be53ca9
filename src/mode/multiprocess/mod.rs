//! Multiprocess mode: a coordinator actor fans chunks of the input out to
//! worker processes over authenticated, bincode-framed TCP sockets (see
//! [`protocol`](crate::protocol)), and merges their partial aggregates in
//! chunk order, so the outputs are byte-identical to serial mode.
//!
//! - `coordinator.rs`: the coordinator actor (reading, dealing, merging, recovery).
//! - `connection.rs`: one actor per worker socket (frames, heartbeats).
//! - `coordinator/wire.rs`: the workers as the chunk engine's transport
//!   (its scheduler: [`crate::mode::engine`]).
//! - `spawn.rs`: local worker processes ([`WorkerCommand`]).
//!
//! Workers are local children (as many as the [`Plan`] says: `--workers N`,
//! default one per core) and/or
//! remote processes that join at any time (`parpipe worker --connect`). The
//! coordinator announces `parpipe: listening on ADDR` on stderr once bound
//! when `RunConfig::announce_listen` is set (the CLI does, unless `-q`).

mod connection;
mod coordinator;
mod spawn;

pub use spawn::WorkerCommand;

use crate::error::RunError;
use crate::metrics::{ProcessSampler, RunReport};
use crate::mode::RunConfig;
use crate::pipeline::{JobSpec, Pipeline};
use crate::plan::Plan;
use crate::protocol::{
    server_handshake, write_frame, FrameCodec, Message, ProtocolError, Token, HANDSHAKE_TIMEOUT,
    MAX_PENDING_HANDSHAKES,
};
use actix::prelude::*;
use connection::Connection;
use coordinator::Coordinator;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio_util::codec::{Framed, FramedRead};

/// Checks the multiprocess settings; in particular, listening beyond
/// loopback requires a token.
pub(crate) fn validate(config: &RunConfig) -> Result<(), RunError> {
    let addr: SocketAddr = config.listen.parse().map_err(|e| {
        RunError::Config(format!(
            "--listen '{}' is not an IP:PORT address: {e}",
            config.listen
        ))
    })?;
    if !addr.ip().is_loopback() && config.token.is_none() {
        return Err(RunError::Config(format!(
            "refusing to listen on non-loopback address {addr} without a token \
             (give --token-file FILE or set PARPIPE_TOKEN)"
        )));
    }
    if config.inflight == 0 {
        return Err(RunError::Config("--inflight must be at least 1".into()));
    }
    if config.max_frame < 1024 {
        return Err(RunError::Config(
            "the frame limit must be at least 1024 bytes".into(),
        ));
    }
    if config.heartbeat_timeout < Duration::from_millis(100) {
        return Err(RunError::Config(
            "the heartbeat timeout must be at least 0.1 s".into(),
        ));
    }
    Ok(())
}

/// Runs `pipeline` (built from `job`) with worker processes, as `plan`
/// says (how many local workers, how chunks are cut and sized).
pub async fn execute(
    pipeline: Pipeline,
    job: &JobSpec,
    config: &RunConfig,
    plan: &Plan,
) -> Result<RunReport, RunError> {
    validate(config)?;
    check_frames(&pipeline, job, config)?;
    let sampler = ProcessSampler::start(Duration::from_millis(50));
    let started = Instant::now();
    tracing::debug!("multiprocess run starts");
    let name = pipeline.name.clone();
    if let Some(total) = pipeline.source.part.size_hint() {
        config.progress.set_total(total);
    }
    let n_local = plan.workers;
    // Local children get a fresh random token unless one is given; without
    // a token (loopback only), remote workers authenticate with the empty key.
    let token = match (&config.token, n_local) {
        (Some(t), _) => Some(t.clone()),
        (None, 0) => None,
        (None, _) => Some(Token::random()),
    };
    let command = match (&config.worker_command, n_local) {
        (_, 0) => None,
        (Some(c), _) => Some(c.clone()),
        // Our own children may read what the source's ranges name, so
        // that they read their chunks themselves.
        (None, _) if plan.chunking.is_ranges() => {
            Some(WorkerCommand::current_exe()?.allow_reading(&pipeline.source.part.range_files()))
        }
        (None, _) => Some(WorkerCommand::current_exe()?),
    };

    let (tx, rx) = oneshot::channel();
    let arbiter = Arbiter::new();
    let coordinator = {
        let (config, plan) = (config.clone(), plan.clone());
        Coordinator::start_in_arbiter(&arbiter.handle(), move |_| {
            Coordinator::new(pipeline, config, &plan, tx)
        })
    };
    // The coordinator's thread owns every socket of the run, the listener
    // included: a worker's frame, its merge and the next chunk it is sent
    // take one wake-up, and the caller's thread (an embedding
    // application's) carries none of it.
    let (bound_tx, bound_rx) = oneshot::channel();
    let (stop_accepting, accept_stopped) = oneshot::channel::<()>();
    {
        let job = Offer {
            spec: job.clone(),
            hold: plan.partial_per_worker,
        };
        let (token, config) = (token.clone(), config.clone());
        arbiter.spawn(async move {
            let bound = TcpListener::bind(&config.listen)
                .await
                .and_then(|l| Ok((l.local_addr()?, l)));
            let listener = match bound {
                Ok((addr, listener)) => {
                    let _ = bound_tx.send(Ok(addr));
                    listener
                }
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            tokio::select! {
                () = accept_loop(listener, coordinator, job, token, config) => {}
                _ = accept_stopped => {}
            }
        });
    }
    let addr = match bound_rx.await {
        Ok(Ok(addr)) => addr,
        failed => {
            stop_arbiter(arbiter).await;
            return Err(match failed {
                Ok(Err(e)) => RunError::Config(format!("cannot listen on {}: {e}", config.listen)),
                _ => RunError::Runtime("the coordinator's thread stopped".into()),
            });
        }
    };
    if config.announce_listen {
        // The machine-readable line scripts and tests wait for.
        eprintln!("parpipe: listening on {addr}");
    } else {
        tracing::info!(%addr, "listening");
    }

    // The children start off the caller's thread (each start waits for an
    // exec); the coordinator's thread takes the first one's handshake while
    // the next one starts.
    let mut children = match (command, &token) {
        (Some(command), Some(token)) => {
            let (token, addr, max_frame) = (token.clone(), addr.to_string(), config.max_frame);
            let started = tokio::task::spawn_blocking(move || {
                spawn::Children::spawn(&command, n_local, &addr, &token, max_frame)
            })
            .await
            .unwrap_or_else(|e| {
                Err(RunError::Runtime(format!(
                    "starting the workers failed: {e}"
                )))
            });
            match started {
                Ok(children) => Some(children),
                Err(e) => {
                    let _ = stop_accepting.send(());
                    stop_arbiter(arbiter).await;
                    return Err(e);
                }
            }
        }
        _ => None,
    };

    let result = outcome_or_undispatched(rx, children.as_mut())
        .await
        .map_err(|_| RunError::Runtime("the coordinator vanished".into()));
    let wall = started.elapsed();
    let _ = stop_accepting.send(());
    // No worker joined: say what became of the ones this run started.
    let result = match (result, children.as_mut()) {
        (Ok(Err(RunError::NoWorkers(why))), Some(c)) => {
            let exited = c.exited();
            if exited.is_empty() {
                Ok(Err(RunError::NoWorkers(why)))
            } else {
                Ok(Err(RunError::NoWorkers(format!(
                    "{why}; {}",
                    exited.join("; ")
                ))))
            }
        }
        (other, _) => other,
    };
    // Workers told to shut down get time to exit cleanly; one that joined
    // too late to get any work (small inputs) is not waited for. They exit
    // while the rest of the run winds down, and the run returns once they
    // have.
    let reaping = children.map(|children| {
        let closed = match &result {
            Ok(Ok(outcome)) => outcome.closed_pids.clone(),
            _ => Vec::new(),
        };
        tokio::task::spawn_blocking(move || children.reap(Duration::from_secs(3), &closed))
    });
    let report = result.and_then(|outcome| {
        let outcome = outcome?;
        let mut report = RunReport::new(
            &name,
            super::Mode::Multiprocess,
            wall,
            &outcome.stats,
            sampler.finish(),
        );
        report.add_workers(outcome.workers);
        Ok(report)
    });
    if let Some(reaping) = reaping {
        let _ = reaping.await;
    }
    // After the reaping: the connections say `Shutdown` until their workers
    // are gone.
    stop_arbiter(arbiter).await;
    report
}

/// Stops `arbiter` and waits until its thread has ended.
async fn stop_arbiter(arbiter: Arbiter) {
    arbiter.stop();
    let _ = tokio::task::spawn_blocking(move || arbiter.join()).await;
}

/// Accepts connections until the run stops accepting (the caller drops
/// this future); each is authenticated on its own
/// task. At most [`MAX_PENDING_HANDSHAKES`] connections are in the
/// handshake at once: one more is closed as soon as it is accepted, so no
/// number of strangers exhausts memory or file descriptors.
async fn accept_loop(
    listener: TcpListener,
    coordinator: Addr<Coordinator>,
    job: Offer,
    token: Option<Token>,
    config: RunConfig,
) {
    let ids = Arc::new(AtomicU64::new(1));
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!(
                peer = %peer,
                "dropping connection (it is told to come back later): \
                 {MAX_PENDING_HANDSHAKES} connections are already in the handshake"
            );
            match refusing.clone().try_acquire_owned() {
                Ok(slot) => {
                    actix::spawn(async move {
                        refuse_busy(stream).await;
                        drop(slot);
                    });
                }
                // A flood: beyond the refusals in progress, no word.
                Err(_) => drop(stream),
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let coordinator = coordinator.clone();
        let job = job.clone();
        let token = token.clone();
        let config = config.clone();
        actix::spawn(async move {
            let result = admit(stream, peer, id, coordinator, job, token, &config).await;
            // The slot is free once the peer is authenticated and has its job, or is gone.
            drop(permit);
            if let Err(e) = result {
                tracing::warn!(peer = %peer, "dropping connection: {e}");
            }
        });
    }
}

/// Most refused connections being told why at once; more are closed
/// without a word.
const MAX_REFUSING: usize = 256;
/// How long a refused worker is asked to wait before it connects again
/// (it adds its own backoff and jitter).
const BUSY_RETRY_AFTER: Duration = Duration::from_millis(250);
/// How long a refused connection is kept open for the worker to read the
/// refusal and hang up.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Tells a connection the coordinator is busy (`Busy`, in place of the
/// challenge), then closes it cleanly: the write side first, then, once
/// the worker has hung up (or after [`REFUSAL_LINGER`]), the socket,
/// its hello read and discarded so that the close is not a reset that
/// could destroy the refusal before the worker reads it.
async fn refuse_busy(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let busy = Message::Busy {
        retry_after_ms: BUSY_RETRY_AFTER.as_millis() as u64,
        reason: format!("{MAX_PENDING_HANDSHAKES} connections are already in the handshake"),
    };
    let Ok(frame) = crate::protocol::encode_frame(&busy, crate::protocol::HANDSHAKE_MAX_FRAME)
    else {
        return;
    };
    let linger = async {
        stream.write_all(&frame).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let mut read = 0;
        // At most a handshake frame's worth is drained.
        while read <= crate::protocol::HANDSHAKE_MAX_FRAME {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, linger).await;
}

/// The job every worker is offered, and whether a worker of one thread is
/// told to hold its partial (the plan's `partial_per_worker`).
#[derive(Clone)]
struct Offer {
    spec: JobSpec,
    hold: bool,
}

/// Handshake, job, then hand the socket to a [`Connection`] actor. The
/// handshake and the job's write share one deadline.
async fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    coordinator: Addr<Coordinator>,
    job: Offer,
    token: Option<Token>,
    config: &RunConfig,
) -> Result<(), ProtocolError> {
    let mut framed = Framed::new(stream, FrameCodec::new(config.max_frame));
    let key = token.as_ref().map_or(&[][..], |t| t.expose());
    let (hello, holds) = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let hello = server_handshake(&mut framed, key).await?;
        // Only a worker of one thread holds a partial: one processing
        // thread, so one partial, and `Flush` comes after every chunk
        // sent before it.
        let holds = job.hold && hello.threads == 1;
        write_frame(&mut framed, job_message(job.spec, config, holds)).await?;
        Ok::<_, ProtocolError>((hello, holds))
    })
    .await
    .unwrap_or(Err(ProtocolError::Timeout("the handshake")))?;
    // A connection from this machine comes from loopback or from the very
    // address it reached (when the coordinator listens on another one).
    let same_host = peer.ip().is_loopback()
        || framed
            .get_ref()
            .local_addr()
            .is_ok_and(|local| local.ip() == peer.ip());
    let parts = framed.into_parts();
    let (read, write) = parts.io.into_split();
    let heartbeat_timeout = config.heartbeat_timeout;
    // The handshake left the session in the codec: the reader's copy
    // checks the worker's frames, the writer's tags ours.
    let codec = parts.codec;
    Connection::create(move |ctx| {
        let mut reader = FramedRead::new(read, codec.clone());
        *reader.read_buffer_mut() = parts.read_buf;
        ctx.add_stream(reader);
        Connection {
            id,
            peer: peer.to_string(),
            same_host,
            hello,
            holds,
            flushes: 0,
            coordinator,
            writer: Some(actix::io::FramedWrite::new(write, codec, ctx)),
            last_heard: Instant::now(),
            heard_forwarded: None,
            heartbeat_timeout,
            closing: false,
            reason: None,
        }
    });
    Ok(())
}

/// The coordinator's outcome, unless a local worker exits first because
/// its program never dispatched it (see `worker/dispatch.rs`): that run
/// could never get a worker, and fails at once saying why.
async fn outcome_or_undispatched<T>(
    mut outcome: oneshot::Receiver<Result<T, RunError>>,
    children: Option<&mut spawn::Children>,
) -> Result<Result<T, RunError>, oneshot::error::RecvError> {
    let Some(children) = children else {
        return outcome.await;
    };
    let mut look = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            done = &mut outcome => return done,
            _ = look.tick() => {
                if let Some(why) = children.undispatched() {
                    return Ok(Err(RunError::Config(why)));
                }
            }
        }
    }
}

/// The `Job` message every worker is sent first (`hold`: it keeps one
/// partial, see [`Plan::partial_per_worker`]).
fn job_message(spec: JobSpec, config: &RunConfig, hold: bool) -> Message {
    Message::Job {
        spec,
        heartbeat_ms: config.heartbeat_timeout.as_millis() as u64,
        batch_size: config.batch_size as u64,
        hold,
    }
}

/// A frame limit too small for the frames every run sends, whatever its
/// input, is a usage error, before any worker starts: the job (sent to
/// every worker, each of which would be refused it, and the run would
/// wait for workers that never join) and the answer to a chunk with an
/// empty partial. Chunks themselves fit any limit: the source cuts them to
/// it (`ChunkSource::fit_chunks_to_frame`), and a larger answer fails its
/// chunk saying so.
fn check_frames(pipeline: &Pipeline, job: &JobSpec, config: &RunConfig) -> Result<(), RunError> {
    // Both frames travel after the handshake, where a tag follows the body
    // and counts toward the limit.
    let tag = crate::protocol::TAG_LEN;
    let body_max = config.max_frame.saturating_sub(tag);
    let too_small = |what: &str, e: ProtocolError| match e {
        ProtocolError::TooLarge { len, .. } => Err(RunError::Config(format!(
            "--max-frame {} is too small for this job: {what} takes a frame of {} bytes",
            config.max_frame,
            len + tag
        ))),
        _ => Ok(()),
    };
    let job = job_message(job.clone(), config, true);
    if let Err(e) = crate::protocol::encode_frame(&job, body_max) {
        too_small("the job, sent to every worker,", e)?;
    }
    let aggregate = &pipeline.aggregate.part;
    let empty = aggregate
        .encode(&aggregate.empty())
        .map_err(RunError::Runtime)?;
    // Every number at its longest encoding.
    let done = Message::ChunkDone {
        seq: u64::MAX,
        partial: empty,
        stats: crate::protocol::ChunkStats {
            records: u64::MAX,
            parts: vec![(u64::MAX, u64::MAX, u64::MAX); pipeline.stages.len() + 1],
            busy_nanos: u64::MAX,
            process_cpu_seconds: f64::MAX,
            process_peak_rss: u64::MAX,
        },
    };
    if let Err(e) = crate::protocol::encode_frame(&done, body_max) {
        too_small(
            "a worker's answer to a chunk, with an empty partial result",
            e,
        )?;
    }
    Ok(())
}
