//! Serving one job on an open connection: the handshake, the job, the
//! runners each with its own copy of the pipeline, and the loop that
//! hands them chunks, sends their results back and keeps the heartbeats
//! going; and how a connection that served no job ended.

use super::chunk::{ChunkProcessor, Task};
use super::runners::Runners;
use super::WorkerConfig;
use crate::error::RunError;
use crate::pipeline::Registry;
use crate::protocol::{
    client_handshake, read_frame, write_frame, FrameCodec, Message, PeerHello, ProtocolError,
    MAX_WORKER_THREADS,
};
use futures_util::StreamExt;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// How a connection to a coordinator ended without an error.
pub(super) enum Served {
    /// The job was done.
    Done,
    /// The coordinator refused the connection for now.
    Busy {
        retry_after: Duration,
        reason: String,
    },
}

pub(super) fn protocol_error(config: &WorkerConfig, e: ProtocolError) -> RunError {
    RunError::Runtime(format!("coordinator {}: {e}", config.connect))
}

/// Why a connection served no job to its end.
pub(super) enum Unserved {
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
pub(super) async fn serve(
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
    let (spec, heartbeat, batch_size, hold) =
        match tokio::time::timeout(crate::protocol::HANDSHAKE_TIMEOUT, read_frame(&mut framed))
            .await
        {
            Ok(Ok(Some(Message::Job {
                spec,
                heartbeat_ms,
                batch_size,
                hold,
            }))) => (
                spec,
                Duration::from_millis(heartbeat_ms.max(100)),
                usize::try_from(batch_size.max(1)).unwrap_or(usize::MAX),
                hold,
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
    if hold && threads != 1 {
        // The coordinator asks it only of a worker of one thread: one
        // partial, and a `Flush` that comes after every chunk before it.
        return Err(Unserved::Failed(protocol_error(
            config,
            ProtocolError::Malformed(format!(
                "the job asks a worker of {threads} threads to hold one partial"
            )),
        )));
    }
    // One pipeline per thread: stages keep per-instance state (scratch
    // buffers, compiled patterns), and each chunk folds into an empty
    // partial of its own (or, told to hold, into the thread's one
    // partial), so copies never need to agree on anything.
    let mut processors = Vec::with_capacity(threads);
    for _ in 0..threads {
        let pipeline = registry.build(&spec).map_err(RunError::from)?;
        let processor = ChunkProcessor::new(
            pipeline,
            config.max_frame,
            batch_size,
            config.allow_read.clone(),
        );
        processors.push(if hold { processor.holding() } else { processor });
    }
    tracing::info!(pipeline = %spec.pipeline, threads, "joined coordinator {}", config.connect);

    let mut runners = Runners::new(processors, config.max_frame, framed.get_ref().as_raw_fd());

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
                        match Task::from_message(msg, !config.allow_read.is_empty()) {
                            Ok(work) => if let Err(e) = runners.submit(work) {
                                break Err(e.into());
                            },
                            Err(other) => break Err(protocol_error(config, ProtocolError::Unexpected {
                                got: other.kind(),
                                during: "the job",
                            }).into()),
                        }
                    }
                    // After the chunks before it, on the one runner (see above).
                    Some(Ok(Message::Flush)) if hold => {
                        if let Err(e) = runners.submit(Task::Flush) {
                            break Err(e.into());
                        }
                    }
                    Some(Ok(Message::Unhold)) if hold => {
                        if let Err(e) = runners.submit(Task::Unhold) {
                            break Err(e.into());
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
            done = runners.next() => {
                let msg = match done {
                    Ok(msg) => msg,
                    Err(e) => break Err(e.into()),
                };
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
    // The runners stop (children are killed and reaped) before the
    // coordinator sees this connection end.
    drop(runners);
    // Clean half-close: we send nothing more; the coordinator sees EOF.
    let _ = framed.get_mut().shutdown().await;
    outcome.map(|()| Served::Done)
}
