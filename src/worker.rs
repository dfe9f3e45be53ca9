//! The worker entry point of multiprocess mode, public so that any program
//! can be a worker: the `parpipe worker` command and an embedding
//! application's own `main` both call [`run_worker`] with their [`Registry`].
//!
//! A worker connects to a coordinator, authenticates (see
//! [`protocol`](crate::protocol)), receives the job (a registered pipeline
//! name plus parameters), rebuilds the pipeline from its registry, and then
//! processes chunks on a dedicated thread — decode the source batch, run the
//! stages, fold it into an empty partial, encode the partial — while the
//! socket task keeps exchanging heartbeats. With `keep_alive` it serves one
//! job after another. A worker its coordinator started on the same machine
//! may be sent chunks as byte ranges of the input files, which it reads
//! itself (see [`file_range`](crate::file_range)).

use crate::error::RunError;
use crate::file_range::{read_ranges, FileRange};
use crate::metrics::StageStats;
use crate::mode::inline::{run_aggregate, run_stage};
use crate::pipeline::{JobSpec, Pipeline, Registry};
use crate::protocol::{
    client_handshake, read_frame, write_frame, ChunkStats, FrameCodec, Message, ProtocolError,
    Token, DEFAULT_MAX_FRAME, LOCAL_WORKER_ENV,
};
use crate::stage::BatchInfo;
use futures_util::StreamExt;
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
    /// Accept chunks given as byte ranges of local files (`ChunkInFiles`):
    /// only for a worker its coordinator started on its own machine, which
    /// says so through [`LOCAL_WORKER_ENV`] (see [`WorkerConfig::local_from_env`]).
    pub accept_file_chunks: bool,
}

impl WorkerConfig {
    /// A worker for `connect` with defaults: the token from `PARPIPE_TOKEN`
    /// when set, one job, 64 MiB frames, 30 s to connect.
    pub fn new(connect: impl Into<String>) -> Result<Self, RunError> {
        Ok(WorkerConfig {
            connect: connect.into(),
            token: Token::from_env().map_err(RunError::Config)?,
            keep_alive: false,
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Some(Duration::from_secs(30)),
            accept_file_chunks: Self::local_from_env(),
        })
    }

    /// Whether the coordinator that started this process marked it as a
    /// worker on its own machine ([`LOCAL_WORKER_ENV`] is `1`).
    pub fn local_from_env() -> bool {
        std::env::var_os(LOCAL_WORKER_ENV).is_some_and(|v| v == "1")
    }

    /// Parses worker arguments as the coordinator passes them to the
    /// processes it spawns: `--connect HOST:PORT [--max-frame N]
    /// [--keep-alive] [--token-file F]`. An embedding application's `main`
    /// hands its arguments after `worker` to this.
    pub fn from_args<I, S>(args: I) -> Result<Self, RunError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut connect = None;
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
                    config.max_frame = value("--max-frame")?
                        .parse()
                        .map_err(|e| RunError::Config(format!("--max-frame: {e}")))?
                }
                "--token-file" => {
                    config.token = Some(
                        Token::from_file(std::path::Path::new(&value("--token-file")?))
                            .map_err(RunError::Config)?,
                    )
                }
                "--keep-alive" => config.keep_alive = true,
                other => {
                    return Err(RunError::Config(format!(
                        "unknown worker argument '{other}'"
                    )))
                }
            }
        }
        config.connect = connect.ok_or_else(|| RunError::Config("--connect is required".into()))?;
        Ok(config)
    }
}

/// Runs a worker until its job is done (or, with `keep_alive`, forever),
/// blocking the caller on a runtime of its own.
pub fn run_worker(registry: &Registry, config: &WorkerConfig) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Runtime(format!("cannot start the worker runtime: {e}")))?;
    runtime.block_on(async {
        let mut timeout = config.connect_timeout;
        loop {
            let stream = connect(config, timeout).await?;
            // Between jobs the coordinator is gone by design: a keep-alive
            // worker waits for the next one as long as it takes.
            timeout = None;
            let result = serve(registry, config, stream).await;
            match (&result, config.keep_alive) {
                (Ok(()), true) => tracing::info!("job done; waiting for the next one"),
                (Err(e), true) => {
                    tracing::warn!("job ended with an error: {e}; reconnecting");
                    // A coordinator that keeps refusing us (a wrong token, …)
                    // is not hammered in a tight loop.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                (_, false) => return result,
            }
        }
    })
}

/// Connects to the coordinator, retrying with a growing delay for up to
/// `timeout` (`None`: forever).
async fn connect(config: &WorkerConfig, timeout: Option<Duration>) -> Result<TcpStream, RunError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match TcpStream::connect(&config.connect).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
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
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        }
    }
}

fn protocol_error(config: &WorkerConfig, e: ProtocolError) -> RunError {
    RunError::Runtime(format!("coordinator {}: {e}", config.connect))
}

/// One chunk to process.
struct Work {
    seq: u64,
    first_line: u64,
    records: u64,
    payload: Payload,
}

/// Where a chunk's bytes are.
enum Payload {
    /// In the frame.
    Bytes(bytes::Bytes),
    /// In local files, to be read by the worker thread.
    Files(Vec<FileRange>),
}

/// Serves one job on an open connection.
async fn serve(
    registry: &Registry,
    config: &WorkerConfig,
    stream: TcpStream,
) -> Result<(), RunError> {
    let mut framed = Framed::new(stream, FrameCodec::new(config.max_frame));
    let token = config.token.as_ref().map_or(&[][..], |t| t.expose());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    client_handshake(&mut framed, token, std::process::id() as u64, cores)
        .await
        .map_err(|e| protocol_error(config, e))?;
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
                return Err(protocol_error(
                    config,
                    ProtocolError::Unexpected {
                        got: other.kind(),
                        during: "job",
                    },
                ))
            }
            Ok(Ok(None)) => return Err(protocol_error(config, ProtocolError::Closed("job"))),
            Ok(Err(e)) => return Err(protocol_error(config, e)),
            Err(_) => return Err(protocol_error(config, ProtocolError::Timeout("job"))),
        };
    let pipeline = registry.build(&spec)?;
    tracing::info!(pipeline = %spec.pipeline, "joined coordinator {}", config.connect);

    let (work_tx, work_rx) = std::sync::mpsc::channel::<Work>();
    let max_frame = config.max_frame;
    // Unbounded, but bounded in practice: one result per chunk received, and
    // the coordinator sends at most its credit of chunks at a time.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Message>();
    std::thread::Builder::new()
        .name("parpipe-worker".into())
        .spawn(move || process_loop(pipeline, &spec, max_frame, batch_size, work_rx, done_tx))
        .map_err(|e| RunError::Runtime(format!("cannot start the worker thread: {e}")))?;

    let mut ticker = tokio::time::interval(heartbeat / 4);
    let mut last_heard = Instant::now();
    let outcome = loop {
        tokio::select! {
            frame = framed.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Chunk { seq, first_line, records, payload })) => {
                        let payload = Payload::Bytes(payload);
                        if work_tx.send(Work { seq, first_line, records, payload }).is_err() {
                            break Err(RunError::Runtime("the worker thread stopped".into()));
                        }
                    }
                    Some(Ok(Message::ChunkInFiles { seq, first_line, records, ranges }))
                        if config.accept_file_chunks =>
                    {
                        let payload = Payload::Files(ranges);
                        if work_tx.send(Work { seq, first_line, records, payload }).is_err() {
                            break Err(RunError::Runtime("the worker thread stopped".into()));
                        }
                    }
                    Some(Ok(Message::Heartbeat)) => {}
                    Some(Ok(Message::Shutdown)) => break Ok(()),
                    Some(Ok(other)) => break Err(protocol_error(config, ProtocolError::Unexpected {
                        got: other.kind(),
                        during: "the job",
                    })),
                    Some(Err(e)) => break Err(protocol_error(config, e)),
                    None => break Err(protocol_error(config, ProtocolError::Closed("the job"))),
                }
            }
            Some(msg) = done_rx.recv() => {
                if let Err(e) = write_frame(&mut framed, msg).await {
                    break Err(protocol_error(config, e));
                }
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() > heartbeat {
                    break Err(RunError::Runtime(format!(
                        "coordinator {} silent for more than {:?}", config.connect, heartbeat
                    )));
                }
                if let Err(e) = write_frame(&mut framed, Message::Heartbeat).await {
                    break Err(protocol_error(config, e));
                }
            }
        }
    };
    drop(work_tx);
    // Clean half-close: we send nothing more; the coordinator sees EOF.
    let _ = framed.get_mut().shutdown().await;
    outcome
}

/// Processes chunks until the channel closes.
fn process_loop(
    mut pipeline: Pipeline,
    spec: &JobSpec,
    max_frame: usize,
    batch_size: usize,
    work: std::sync::mpsc::Receiver<Work>,
    done: mpsc::UnboundedSender<Message>,
) {
    let mut usage = ProcessUsage::new();
    // Chunks read from files land here, one after another.
    let mut scratch = Vec::new();
    let mut cuts = Vec::new();
    while let Ok(w) = work.recv() {
        let started = Instant::now();
        let bytes = match &w.payload {
            Payload::Bytes(b) => Ok(&b[..]),
            Payload::Files(ranges) => {
                scratch.clear();
                read_ranges(ranges, &mut scratch, max_frame)
                    .map(|()| &scratch[..])
                    .map_err(|e| format!("cannot read the chunk: {e}"))
            }
        };
        let processed =
            bytes.and_then(|bytes| process_chunk(&mut pipeline, &w, bytes, batch_size, &mut cuts));
        let msg = match processed {
            Ok((partial, parts)) => {
                let (cpu, rss) = usage.sample();
                Message::ChunkDone {
                    seq: w.seq,
                    partial,
                    stats: ChunkStats {
                        parts,
                        busy_nanos: started.elapsed().as_nanos() as u64,
                        process_cpu_seconds: cpu,
                        process_peak_rss: rss,
                    },
                }
            }
            Err(error) => {
                tracing::warn!(pipeline = %spec.pipeline, "chunk {} failed: {error}", w.seq);
                Message::ChunkFailed { seq: w.seq, error }
            }
        };
        if done.send(msg).is_err() {
            return;
        }
    }
}

/// `(records_in, records_out, busy_nanos)` per stage, then the aggregate.
type PartTimes = Vec<(u64, u64, u64)>;

/// Runs the stages and the aggregate of `pipeline` on one chunk, part by
/// part (at most `batch_size` records each, see [`Source::split_chunk`]),
/// into one partial.
///
/// [`Source::split_chunk`]: crate::Source::split_chunk
fn process_chunk(
    pipeline: &mut Pipeline,
    w: &Work,
    payload: &[u8],
    batch_size: usize,
    cuts: &mut Vec<(usize, usize)>,
) -> Result<(Vec<u8>, PartTimes), String> {
    let records = usize::try_from(w.records).map_err(|e| format!("chunk too large: {e}"))?;
    cuts.clear();
    pipeline
        .source
        .part
        .split_chunk(payload, records, batch_size, cuts);
    if cuts.iter().map(|&(_, n)| n as u64).sum::<u64>() != w.records {
        return Err(format!(
            "the chunk's parts do not add up to the {} records its header says",
            w.records
        ));
    }
    let mut stage_stats: Vec<StageStats> = pipeline
        .stages
        .iter()
        .map(|s| StageStats::new(&s.name, crate::metrics::StageKind::Stage))
        .collect();
    let mut agg_stats = StageStats::new(
        &pipeline.aggregate.name,
        crate::metrics::StageKind::Aggregate,
    );
    let mut acc = pipeline.aggregate.part.empty();
    let (mut start, mut first_line) = (0, w.first_line);
    for &(end, part_records) in cuts.iter() {
        let bytes = payload
            .get(start..end)
            .ok_or_else(|| format!("chunk part {start}..{end} out of range"))?;
        start = end;
        let info = BatchInfo {
            seq: w.seq,
            first_line,
            records: part_records as u64,
        };
        first_line += part_records as u64;
        let (mut data, mut n) = pipeline
            .source
            .part
            .decode_chunk(bytes, &info)
            .map_err(|e| format!("cannot decode the chunk: {e}"))?;
        if n != part_records {
            return Err(format!(
                "the chunk holds {n} records where its header says {part_records}"
            ));
        }
        for (stage, stats) in pipeline.stages.iter_mut().zip(&mut stage_stats) {
            (data, n) = run_stage(stage, data, n, &info, stats).map_err(|e| e.to_string())?;
        }
        run_aggregate(
            &mut pipeline.aggregate,
            &mut acc,
            data,
            n,
            &info,
            &mut agg_stats,
        )
        .map_err(|e| e.to_string())?;
    }
    let parts = stage_stats
        .iter()
        .chain(std::iter::once(&agg_stats))
        .map(|s| (s.records_in, s.records_out, s.busy.as_nanos() as u64))
        .collect();
    let partial = pipeline
        .aggregate
        .part
        .encode(&acc)
        .map_err(|e| format!("cannot encode the partial: {e}"))?;
    Ok((partial, parts))
}

/// This process's CPU time and peak memory (sysinfo; the kernel's `VmHWM` when available).
struct ProcessUsage {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
    peak: u64,
}

impl ProcessUsage {
    fn new() -> Self {
        ProcessUsage {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
            peak: 0,
        }
    }

    fn sample(&mut self) -> (f64, u64) {
        let cpu = crate::metrics::process_cpu_seconds();
        // The kernel's own high-water mark, where there is one, is exact and
        // costs one small read; sysinfo's refresh took ~0.2 ms per chunk.
        if let Some(hwm) = crate::metrics::kernel_peak_rss() {
            self.peak = self.peak.max(hwm);
            return (cpu, self.peak);
        }
        let Some(pid) = self.pid else {
            return (cpu, self.peak);
        };
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_memory(),
        );
        let rss = self.system.process(pid).map_or(0, |p| p.memory());
        self.peak = self.peak.max(rss);
        (cpu, self.peak)
    }
}
