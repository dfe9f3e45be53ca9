//! The plan's rules, case by case: each kind of input (a 25 K-line file, a
//! 1 M-line file, gzip, standard input, a user pipeline on
//! [`sources::Csv`](crate::sources::Csv), matrix) in each mode (serial,
//! pipeline, pipeline `--replicas auto`, multiprocess), then the engine
//! shapes a user chooses and a one-core machine. The facts each kind
//! gives are checked on real pipelines first, so that the hand-made facts
//! of the other tests are the ones a run would see.

use super::*;
use crate::pipeline::JobSpec;
use crate::sources::InputSpec;
use crate::workloads::logs::{LogsInput, LogsParams};
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
    #[allow(dead_code)]
    amount: String,
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
        // A fixed budget: the default follows this machine's cache.
        crate::sources::Csv::<Order>::new(InputSpec::File(csv_path)).with_batch_bytes(48 << 10),
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
    // Pipeline mode may run reading lanes unless the actors were fixed.
    let pipeline = facts(library(Mode::Pipelined));
    assert_eq!((pipeline.records, pipeline.in_files), (Some(100), true));
    let lanes = facts(auto(library(Mode::Pipelined)));
    assert!(lanes.in_files && lanes.decodes_chunks);
    let mut fixed = library(Mode::Pipelined);
    fixed.replicas = Replicas::Fixed(vec![("parse".into(), 2)]);
    let fixed = facts(fixed);
    assert_eq!((fixed.records, fixed.in_files), (Some(100), false));
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
        config(Mode::Pipelined),
        auto(config(Mode::Pipelined)),
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

/// A library run's defaults: nothing inline, chunks sized to what remains.
fn library(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        ..RunConfig::default()
    }
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

mod cases;
mod rules;
