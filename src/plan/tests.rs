//! The plan's rules, case by case: each kind of input (a 25 K-line file, a
//! 1 M-line file, gzip, standard input, a user pipeline on
//! [`sources::Csv`](crate::sources::Csv), matrix) in each mode (serial,
//! pipeline, pipeline `--replicas auto`, multiprocess), then the engine
//! shapes a user chooses and a one-core machine. The facts each kind
//! gives are checked on real pipelines first, so that the hand-made facts
//! of the other tests are the ones a run would see.

use super::*;
use crate::pipeline::JobSpec;
use crate::workloads::logs::{input::InputSpec, LogsInput, LogsParams};
use crate::workloads::{builtin_registry, logs, matrix};

const TWO: Machine = Machine { cores: 2 };

/// A line of the combined format, 64 bytes.
const LINE: &[u8] = b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5\n";

fn logs_pipeline(input: LogsInput) -> Pipeline {
    let params = LogsParams {
        input,
        out_dir: std::env::temp_dir().join("parpipe-plan-unused"),
        emit_records: false,
        snapshot: None,
        max_batch_delay_ms: 200,
        format: Default::default(),
        max_rejected_ppm: 900_000,
        dimensions: Default::default(),
    };
    builtin_registry()
        .build(&JobSpec::new(logs::NAME, &params).unwrap())
        .unwrap()
}

fn file(path: &std::path::Path) -> LogsInput {
    LogsInput::Files(vec![InputSpec::File(path.to_path_buf())])
}

use crate::pipeline::Pipeline;
use crate::stage::{Aggregate, BatchInfo, Source, StageError};

/// A user's CSV row.
#[derive(serde::Deserialize)]
struct Order {
    #[allow(dead_code)]
    id: u32,
}

type Orders = <crate::sources::Csv<Order> as Source>::Out;

/// A user's aggregate that can renumber (it holds no record numbers).
#[derive(Clone)]
struct Count;

impl Aggregate for Count {
    type In = Orders;
    type Partial = u64;
    fn empty(&self) -> u64 {
        0
    }
    fn add(&mut self, acc: &mut u64, rows: Orders, _: &BatchInfo) -> Result<(), StageError> {
        *acc += rows.len() as u64;
        Ok(())
    }
    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
    fn renumbers(&self) -> bool {
        true
    }
}

/// Everything `pipeline` can say: the facts a multiprocess run asks.
fn asked(pipeline: &Pipeline) -> PipelineFacts {
    PipelineFacts::of(
        pipeline,
        &RunConfig {
            mode: Mode::Multiprocess,
            ..RunConfig::default()
        },
        true,
    )
}

/// The facts of each kind of input, as `PipelineFacts::of` gives them.
struct Kinds {
    small_file: PipelineFacts,
    large_file: PipelineFacts,
    gzip: PipelineFacts,
    stdin: PipelineFacts,
    csv: PipelineFacts,
    matrix: PipelineFacts,
}

fn kinds() -> Kinds {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.log");
    std::fs::write(&small, LINE.repeat(25_000)).unwrap();
    // 200 MB without writing them: large files are estimated from their
    // size alone, at 200 bytes a line.
    let large = dir.path().join("large.log");
    std::fs::File::create(&large)
        .unwrap()
        .set_len(200_000_000)
        .unwrap();
    let gzip = dir.path().join("access.log.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &LINE.repeat(100)).unwrap();
    std::fs::write(&gzip, gz.finish().unwrap()).unwrap();
    let csv_path = dir.path().join("orders.csv");
    std::fs::write(&csv_path, "id,amount\n1,2.5\n2,3.5\n").unwrap();
    let csv = Pipeline::builder_files(
        "orders",
        "read",
        crate::sources::Csv::<Order>::new(InputSpec::File(csv_path)),
    )
    .collect("count", Count)
    .erase();
    let matrix_job = JobSpec::new(
        matrix::NAME,
        &matrix::MatrixParams {
            tasks: 200,
            n: 16,
            seed: 1,
            out_dir: std::env::temp_dir().join("parpipe-plan-unused"),
        },
    )
    .unwrap();
    let matrix = builtin_registry().build(&matrix_job).unwrap();
    Kinds {
        small_file: asked(&logs_pipeline(file(&small))),
        large_file: asked(&logs_pipeline(file(&large))),
        gzip: asked(&logs_pipeline(file(&gzip))),
        stdin: asked(&logs_pipeline(LogsInput::Files(vec![InputSpec::Stdin]))),
        csv: asked(&csv),
        matrix: asked(&matrix),
    }
}

#[test]
fn each_kind_of_input_says_what_it_is() {
    let k = kinds();
    assert_eq!(k.small_file.records, Some(25_000));
    assert!(k.small_file.in_files && k.small_file.decodes_chunks && k.small_file.renumbers);
    assert!(!k.small_file.may_wait);
    assert_eq!(k.small_file.stages, 2, "parse, enrich");
    assert_eq!(k.large_file.records, Some(1_000_000));
    assert!(k.large_file.lanes_can_read());
    // Gzip cannot be cut by bytes, and its size says nothing of its lines.
    assert_eq!(k.gzip.records, None);
    assert!(!k.gzip.in_files && !k.gzip.may_wait);
    assert_eq!(k.stdin.records, None);
    assert!(k.stdin.may_wait && !k.stdin.in_files);
    // A user's CSV: cut by bytes and decoded anywhere, like logs.
    assert!(k.csv.in_files && k.csv.decodes_chunks && !k.csv.may_wait);
    assert_eq!(k.csv.stages, 0);
    // Matrix tasks are generated: counted, not in files.
    assert_eq!(k.matrix.records, Some(200));
    assert!(!k.matrix.in_files && !k.matrix.may_wait);
}

/// A look at the inputs is I/O: only the modes whose plan uses a fact ask it.
#[test]
fn each_mode_asks_only_what_its_plan_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    std::fs::write(&path, LINE.repeat(100)).unwrap();
    let p = logs_pipeline(file(&path));
    let facts = |config: RunConfig| PipelineFacts::of(&p, &config, true);
    let serial = facts(library(Mode::Serial));
    assert_eq!((serial.records, serial.in_files), (None, false));
    let pipeline = facts(library(Mode::Pipeline));
    assert_eq!((pipeline.records, pipeline.in_files), (Some(100), false));
    let lanes = facts(auto(library(Mode::Pipeline)));
    assert!(lanes.in_files && lanes.decodes_chunks);
    assert!(facts(library(Mode::Multiprocess)).in_files);
}

/// `parpipe run`'s settings for `mode` (logs: small inputs may run inline,
/// chunks sized to what remains).
fn logs_config(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        grow_chunks: true,
        inline_small: true,
        ..RunConfig::default()
    }
}

fn auto(mut config: RunConfig) -> RunConfig {
    config.replicas = Replicas::Auto;
    config
}

/// The four ways to run: serial, pipeline, pipeline auto, multiprocess.
fn four(config: impl Fn(Mode) -> RunConfig) -> [RunConfig; 4] {
    [
        config(Mode::Serial),
        config(Mode::Pipeline),
        auto(config(Mode::Pipeline)),
        config(Mode::Multiprocess),
    ]
}

/// (engine, transport, chunking, batch size) of `facts` in each way.
fn shapes(
    facts: &PipelineFacts,
    config: impl Fn(Mode) -> RunConfig,
) -> Vec<(Engine, Transport, Chunking, usize)> {
    four(config)
        .iter()
        .map(|c| {
            let p = plan(facts, c, &TWO);
            (p.engine, p.transport, p.chunking, p.batch_size)
        })
        .collect()
}

use Chunking::*;
use Engine::*;
use Transport::*;

#[test]
fn a_25k_line_file() {
    let f = kinds().small_file;
    assert_eq!(
        shapes(&f, logs_config),
        [
            (Inline, Threads, Records, 8192),
            (Inline, Threads, Records, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (Inline, Threads, Records, 8192),
        ]
    );
    let p = plan(&f, &logs_config(Mode::Multiprocess), &TWO);
    assert!(p.inline() && p.workers == 0, "{p:?}");
    assert!(
        p.why
            .contains("about 25000 records (4 batches of 8192, at most 12"),
        "{}",
        p.why
    );
    let p = plan(&f, &logs_config(Mode::Pipeline), &TWO);
    assert!(p.why.contains("at most 16 run inline"), "{}", p.why);
    let serial = plan(&f, &logs_config(Mode::Serial), &TWO);
    assert!(
        !serial.inline(),
        "serial mode is not a parallel mode run inline"
    );
}

#[test]
fn a_1m_line_file() {
    let f = kinds().large_file;
    assert_eq!(
        shapes(&f, logs_config),
        [
            (Inline, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (WorkerProcesses, LocalWorkers, UncountedRanges, 8192),
        ]
    );
    let lanes = plan(&f, &auto(logs_config(Mode::Pipeline)), &TWO);
    assert_eq!((lanes.lanes, lanes.workers), (2, 0));
    assert_eq!(
        lanes.chunk_sizing.most_batches,
        sizing::MOST_BATCHES_UNCOUNTED
    );
    let mp = plan(&f, &logs_config(Mode::Multiprocess), &TWO);
    assert_eq!((mp.workers, mp.lanes), (2, 0));
    assert!(mp.ships_ranges, "a worker that cannot read gets the bytes");
    assert_eq!(
        mp.chunk_sizing.most_bytes,
        Some(sizing::MOST_BYTES_UNCOUNTED)
    );
    assert!(mp.chunk_sizing.guided);
}

#[test]
fn gzip() {
    let f = kinds().gzip;
    assert_eq!(
        shapes(&f, logs_config),
        [
            (Inline, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (WorkerProcesses, LocalWorkers, ShippedText, 8192),
        ]
    );
    let p = plan(&f, &auto(logs_config(Mode::Pipeline)), &TWO);
    assert!(p.probe, "auto without lanes probes the stages");
    assert!(p.why.contains("not plain files"), "{}", p.why);
    let mp = plan(&f, &logs_config(Mode::Multiprocess), &TWO);
    assert_eq!(mp.chunk_sizing.most_batches, sizing::MOST_BATCHES_COUNTED);
    assert!(!mp.ships_ranges && mp.chunk_sizing.most_bytes.is_none());
}

#[test]
fn standard_input() {
    let f = kinds().stdin;
    assert_eq!(
        shapes(&f, logs_config),
        [
            (Inline, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (WorkerProcesses, LocalWorkers, ShippedText, 8192),
        ]
    );
    let mp = plan(&f, &logs_config(Mode::Multiprocess), &TWO);
    assert!(mp.why.contains("waits for its input"), "{}", mp.why);
}

/// A library run's defaults: nothing inline, chunks a batch each.
fn library(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        ..RunConfig::default()
    }
}

#[test]
fn a_user_pipeline_on_csv() {
    let k = kinds();
    assert_eq!(
        shapes(&k.csv, library),
        [
            (Inline, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (WorkerProcesses, LocalWorkers, UncountedRanges, 8192),
        ]
    );
    // Without inline_small, even a tiny CSV gets the engine it asked for.
    assert_eq!(plan(&k.csv, &library(Mode::Multiprocess), &TWO).workers, 2);
    let mp = plan(&k.csv, &library(Mode::Multiprocess), &TWO);
    assert!(!mp.chunk_sizing.guided, "chunks of a batch");
    assert_eq!(mp.chunk_sizing.records(Some(1 << 30), 2, 0), 8192);
    // Reading lanes size their chunks to what remains, whatever the config.
    let lanes = plan(&k.csv, &auto(library(Mode::Pipeline)), &TWO);
    assert!(lanes.chunk_sizing.guided);
    // A source without a chunk decoder: no lanes; workers still get
    // ranges, uncounted if the source cuts by bytes (asked at the first chunk).
    let no_decoder = PipelineFacts {
        decodes_chunks: false,
        ..k.csv.clone()
    };
    let p = plan(&no_decoder, &auto(library(Mode::Pipeline)), &TWO);
    assert_eq!(p.engine, StageActors);
    assert!(p.why.contains("cannot decode a chunk"), "{}", p.why);
    let p = plan(&no_decoder, &library(Mode::Multiprocess), &TWO);
    assert_eq!(p.chunking, UncountedRanges);
    // An aggregate that cannot renumber: counted ranges, no lanes.
    let counted = PipelineFacts {
        renumbers: false,
        ..k.csv.clone()
    };
    assert_eq!(
        shapes(&counted, library),
        [
            (Inline, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (StageActors, Threads, Records, 8192),
            (WorkerProcesses, LocalWorkers, CountedRanges, 8192),
        ]
    );
}

/// `parpipe run --workload matrix`: no inline (its tasks are heavy), a
/// batch of 4 tasks.
fn matrix_config(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        batch_size: 4,
        grow_chunks: true,
        ..RunConfig::default()
    }
}

#[test]
fn matrix() {
    let k = kinds();
    assert_eq!(
        shapes(&k.matrix, matrix_config),
        [
            (Inline, Threads, Records, 4),
            (StageActors, Threads, Records, 4),
            (StageActors, Threads, Records, 4),
            (WorkerProcesses, LocalWorkers, ShippedText, 4),
        ]
    );
    // With inline_small on, 200 tasks are 50 batches: over every limit.
    let mut c = matrix_config(Mode::Multiprocess);
    c.inline_small = true;
    assert_eq!(plan(&k.matrix, &c, &TWO).engine, WorkerProcesses);
    c.batch_size = 10;
    let p = plan(&k.matrix, &c, &TWO);
    assert_eq!(p.engine, Inline, "20 batches, at most 24 shipped");
    assert!(
        p.why.contains("about 200 records (20 batches of 10"),
        "{}",
        p.why
    );
}

#[test]
fn an_engine_shape_the_user_chose_is_honoured() {
    let f = kinds().small_file;
    let mut c = logs_config(Mode::Multiprocess);
    c.workers = Some(3);
    let p = plan(&f, &c, &TWO);
    assert_eq!(
        (p.engine, p.transport, p.workers),
        (WorkerProcesses, LocalWorkers, 3)
    );
    c.workers = Some(0);
    let p = plan(&f, &c, &TWO);
    assert_eq!(
        (p.engine, p.transport, p.workers),
        (WorkerProcesses, RemoteWorkers, 0)
    );
    assert_eq!(p.chunking, UncountedRanges, "if a worker that reads joins");
    assert!(p.ships_ranges);
    // Listening beyond loopback (with the token it requires): remote
    // workers are expected, so even a small input keeps the engine.
    let mut c = logs_config(Mode::Multiprocess);
    c.listen = "0.0.0.0:0".into();
    c.token = Some(crate::protocol::Token::random());
    let p = plan(&f, &c, &TWO);
    assert_eq!(
        (p.engine, p.transport),
        (WorkerProcesses, LocalAndRemoteWorkers)
    );
    let mut c = logs_config(Mode::Multiprocess);
    c.listen = "127.0.0.1:7070".into();
    assert_eq!(
        plan(&f, &c, &TWO).transport,
        LocalAndRemoteWorkers,
        "a fixed port"
    );
    // Per-stage replicas: the actors, whatever the size.
    let mut c = logs_config(Mode::Pipeline);
    c.replicas = Replicas::Fixed(vec![("parse".into(), 2)]);
    assert_eq!(plan(&f, &c, &TWO).engine, StageActors);
    // A pipeline the workers cannot rebuild is never run inline (it fails).
    let unregistered = PipelineFacts {
        registered: false,
        ..f.clone()
    };
    assert_eq!(
        plan(&unregistered, &logs_config(Mode::Multiprocess), &TWO).engine,
        WorkerProcesses
    );
    // inline_small off: the engine asked for.
    let mut c = logs_config(Mode::Pipeline);
    c.inline_small = false;
    assert_eq!(plan(&f, &c, &TWO).engine, StageActors);
}

#[test]
fn one_core() {
    let one = Machine { cores: 1 };
    let f = kinds().large_file;
    let lanes = plan(&f, &auto(logs_config(Mode::Pipeline)), &one);
    assert_eq!(
        (lanes.engine, lanes.lanes, lanes.cores),
        (StageActors, 0, 1)
    );
    assert!(
        lanes.probe && lanes.why.contains("one core"),
        "{}",
        lanes.why
    );
    let mp = plan(&f, &logs_config(Mode::Multiprocess), &one);
    assert_eq!((mp.engine, mp.workers), (WorkerProcesses, 1));
    // The small-input limits count batches, not cores.
    let small = kinds().small_file;
    assert_eq!(
        plan(&small, &logs_config(Mode::Pipeline), &one).engine,
        Inline
    );
}

#[test]
fn the_limits_are_flags_and_inclusive() {
    let facts = |records| PipelineFacts {
        records: Some(records),
        ..kinds_free_generated()
    };
    let c = |mode| RunConfig {
        batch_size: 1000,
        ..logs_config(mode)
    };
    let engine = |records, c: &RunConfig| plan(&facts(records), c, &TWO).engine;
    let limits = InlineLimits::default();
    let pl = c(Mode::Pipeline);
    // Batch size 1000 is not the default 8192: smaller batches apply only
    // from `smaller_batches_from` records on.
    assert_eq!(engine(limits.pipeline_batches * 1000, &pl), Inline);
    assert_eq!(engine(limits.pipeline_batches * 1000 + 1, &pl), StageActors);
    let mp = c(Mode::Multiprocess);
    assert_eq!(engine(limits.shipped_batches * 1000, &mp), Inline);
    assert_eq!(
        engine(limits.shipped_batches * 1000 + 1, &mp),
        WorkerProcesses
    );
    let mut tight = c(Mode::Multiprocess);
    tight.inline_limits.shipped_batches = 0;
    assert_eq!(engine(1, &tight), WorkerProcesses, "0: never inline");
    let mut bad = c(Mode::Pipeline);
    bad.inline_limits.pipeline_batches = limits::MAX_INLINE_BATCHES + 1;
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("--inline-batches-pipeline"), "{err}");
}

/// Generated lines: counted, not in files, nothing to wait for.
fn kinds_free_generated() -> PipelineFacts {
    asked(&logs_pipeline(LogsInput::Generate {
        records: 0,
        seed: 1,
    }))
}

#[test]
fn pipeline_mode_cuts_a_mid_sized_small_input_into_smaller_batches() {
    let facts = |records| PipelineFacts {
        records: Some(records),
        ..kinds_free_generated()
    };
    let c = logs_config(Mode::Pipeline);
    // 100 K records: 13 default batches, too few to overlap; 48 smaller ones.
    let p = plan(&facts(100_000), &c, &TWO);
    assert_eq!((p.engine, p.batch_size), (StageActors, 100_000 / 48));
    assert!(p.why.contains("--smaller-batches-from"), "{}", p.why);
    // Below 64 Ki records: inline.
    assert_eq!(plan(&facts(50_000), &c, &TWO).engine, Inline);
    // Large inputs keep the default batch.
    assert_eq!(plan(&facts(1_000_000), &c, &TWO).batch_size, 8192);
    // A batch size the user gave, other modes, chosen replicas: untouched.
    let given = RunConfig {
        grow_chunks: false,
        ..c.clone()
    };
    assert_eq!(plan(&facts(100_000), &given, &TWO).batch_size, 8192);
    let mp = logs_config(Mode::Multiprocess);
    assert_eq!(plan(&facts(100_000), &mp, &TWO).batch_size, 8192);
    let fixed = RunConfig {
        replicas: Replicas::parse_one("parse=2").unwrap(),
        ..c.clone()
    };
    assert_eq!(plan(&facts(100_000), &fixed, &TWO).batch_size, 8192);
    // The flag moves the threshold.
    let mut lower = c;
    lower.inline_limits.smaller_batches_from = 40_000;
    assert_eq!(plan(&facts(50_000), &lower, &TWO).batch_size, 50_000 / 48);
}

#[test]
fn the_one_sizing_rule() {
    let s = ChunkSizing::for_ranges(1000, true, 2, UncountedRanges, 1 << 30);
    // Half an even share of what remains...
    assert_eq!(s.records(Some(40_000), 2, 0), 10_000);
    // ...at most 32 batches, at least half a batch.
    assert_eq!(s.records(Some(1 << 40), 2, 0), 32_000);
    assert_eq!(s.records(Some(10), 2, 0), 500);
    // More workers connected than planned: a smaller share.
    assert_eq!(s.records(Some(40_000), 4, 0), 5_000);
    // Unknown size: a batch, then two once every reader had two chunks.
    assert_eq!(s.records(None, 2, 3), 1000);
    assert_eq!(s.records(None, 2, 4), 2000);
    let counted = ChunkSizing::for_ranges(1000, true, 2, CountedRanges, 1 << 30);
    assert_eq!(counted.records(Some(1 << 40), 2, 0), 2000);
    assert_eq!(counted.most_bytes, None);
    // A small frame bounds the bytes of a chunk cut by bytes.
    let framed = ChunkSizing::for_ranges(1000, true, 2, UncountedRanges, 4096);
    assert_eq!(framed.most_bytes, Some(2048));
}

#[test]
fn the_plan_serializes_with_the_names_docs_use() {
    let f = kinds().large_file;
    let p = plan(&f, &logs_config(Mode::Multiprocess), &TWO);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["engine"], "worker_processes");
    assert_eq!(json["transport"], "local_workers");
    assert_eq!(json["chunking"], "uncounted_ranges");
    assert_eq!(json["mode"], "multiprocess");
    assert_eq!(json["chunk_sizing"]["most_batches"], 32);
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
    let lines = p.to_lines();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(
        lines.contains("plan: engine worker processes (2 local); transport local workers; 2 cores")
    );
}
