//! The inline decision: which runs it takes, from which estimates.

use super::*;
use crate::pipeline::JobSpec;
use crate::workloads::logs::{input::InputSpec, LogsInput, LogsParams, NAME};
use crate::workloads::{builtin_registry, matrix};

fn logs(input: LogsInput) -> Pipeline {
    let params = LogsParams {
        input,
        out_dir: std::env::temp_dir().join("parpipe-small-unused"),
        emit_records: false,
        snapshot: None,
        max_batch_delay_ms: 200,
        format: Default::default(),
        max_rejected_ppm: 900_000,
        dimensions: Default::default(),
    };
    let job = JobSpec::new(NAME, &params).unwrap();
    builtin_registry().build(&job).unwrap()
}

fn generated(records: u64) -> Pipeline {
    logs(LogsInput::Generate { records, seed: 7 })
}

fn config(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        batch_size: 1000,
        inline_small: true,
        ..RunConfig::default()
    }
}

#[test]
fn a_few_batches_run_inline_in_both_parallel_modes_and_the_reason_says_so() {
    let p = generated(8_000);
    for mode in [Mode::Pipeline, Mode::Multiprocess] {
        let why = inline_reason(&p, &config(mode)).expect("inline");
        assert!(
            why.contains("about 8000 records (8 batches of 1000"),
            "{why}"
        );
        assert!(why.contains("inline"), "{why}");
    }
    assert_eq!(inline_reason(&p, &config(Mode::Serial)), None);
}

#[test]
fn the_limits_are_per_mode_and_inclusive() {
    let at = |records, mode| inline_reason(&generated(records), &config(mode)).is_some();
    let pipeline = PIPELINE_INLINE_BATCHES * 1000;
    assert!(at(pipeline, Mode::Pipeline));
    assert!(!at(pipeline + 1, Mode::Pipeline));
    let multi = MULTIPROCESS_INLINE_BATCHES * 1000;
    assert!(at(multi, Mode::Multiprocess));
    assert!(!at(multi + 1, Mode::Multiprocess));
}

#[test]
fn an_engine_shape_the_user_chose_is_always_honoured() {
    let p = generated(100);
    let mut c = config(Mode::Multiprocess);
    c.workers = Some(2);
    assert_eq!(inline_reason(&p, &c), None, "--workers");
    let mut c = config(Mode::Multiprocess);
    c.token = Some(crate::protocol::Token::random());
    assert_eq!(
        inline_reason(&p, &c),
        None,
        "a token: remote workers expected"
    );
    let mut c = config(Mode::Multiprocess);
    c.listen = "0.0.0.0:0".into();
    assert_eq!(inline_reason(&p, &c), None, "listening beyond loopback");
    let mut c = config(Mode::Multiprocess);
    c.listen = "127.0.0.1:7070".into();
    assert_eq!(
        inline_reason(&p, &c),
        None,
        "a port chosen for remote workers"
    );
    let mut c = config(Mode::Pipeline);
    c.replicas = super::super::Replicas::Fixed(vec![("parse".into(), 2)]);
    assert_eq!(inline_reason(&p, &c), None, "per-stage replicas");
    let mut c = config(Mode::Pipeline);
    c.replicas = super::super::Replicas::Auto;
    assert!(inline_reason(&p, &c).is_some(), "auto is a default shape");
    for mode in [Mode::Pipeline, Mode::Multiprocess] {
        let mut c = config(mode);
        c.inline_small = false;
        assert_eq!(inline_reason(&p, &c), None, "inline_small off");
    }
}

#[test]
fn plain_files_are_estimated_from_their_size_and_streams_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let line = b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5\n";
    let small = dir.path().join("small.log");
    std::fs::write(&small, line.repeat(3_000)).unwrap();
    let p = logs(LogsInput::Files(vec![InputSpec::File(small.clone())]));
    let why = inline_reason(&p, &config(Mode::Multiprocess)).expect("inline");
    assert!(why.contains("about 3000 records"), "{why}");
    // Two files: the sizes add up.
    let files = vec![
        InputSpec::File(small.clone()),
        InputSpec::File(small.clone()),
    ];
    let why = inline_reason(&logs(LogsInput::Files(files)), &config(Mode::Pipeline));
    assert!(why.expect("inline").contains("about 6000 records"));
    // Workers read plain files themselves, so they pay sooner than for
    // generated lines: 18 batches run the engine on a file, inline generated.
    let mid = dir.path().join("mid.log");
    std::fs::write(&mid, line.repeat(18_000)).unwrap();
    let p = logs(LogsInput::Files(vec![InputSpec::File(mid)]));
    assert!(p.source.part.would_chunk_in_files());
    assert_eq!(inline_reason(&p, &config(Mode::Multiprocess)), None);
    let p = generated(18_000);
    assert!(!p.source.part.would_chunk_in_files());
    assert!(inline_reason(&p, &config(Mode::Multiprocess)).is_some());
    let limit = MULTIPROCESS_INLINE_BATCHES_FILES * 1000;
    let edge = dir.path().join("edge.log");
    std::fs::write(&edge, line.repeat(limit as usize)).unwrap();
    let p = logs(LogsInput::Files(vec![InputSpec::File(edge)]));
    assert!(inline_reason(&p, &config(Mode::Multiprocess)).is_some());
    // Large enough for the engine.
    let big = dir.path().join("big.log");
    std::fs::write(&big, line.repeat(30_000)).unwrap();
    let p = logs(LogsInput::Files(vec![InputSpec::File(big)]));
    assert_eq!(inline_reason(&p, &config(Mode::Multiprocess)), None);
    // Gzip, standard input, a missing file: no estimate, so the engine runs.
    let gz = dir.path().join("x.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
    for spec in [
        InputSpec::File(gz),
        InputSpec::Stdin,
        InputSpec::File(dir.path().join("missing")),
    ] {
        let p = logs(LogsInput::Files(vec![InputSpec::File(small.clone()), spec]));
        assert_eq!(inline_reason(&p, &config(Mode::Multiprocess)), None);
    }
}

/// With `inline_small` on (the library leaves it off; `parpipe run`
/// turns it on only for `logs`), any source's estimate counts.
#[test]
fn matrix_tasks_are_counted_in_batches_too() {
    let params = matrix::MatrixParams {
        tasks: 8,
        n: 8,
        seed: 1,
        out_dir: std::env::temp_dir().join("parpipe-small-unused"),
    };
    let job = JobSpec::new(matrix::NAME, &params).unwrap();
    let p = builtin_registry().build(&job).unwrap();
    let c = RunConfig {
        mode: Mode::Multiprocess,
        batch_size: 4,
        inline_small: true,
        ..RunConfig::default()
    };
    let why = inline_reason(&p, &c).expect("inline");
    assert!(why.contains("about 8 records (2 batches of 4"), "{why}");
    let off = RunConfig {
        inline_small: false,
        ..c
    };
    assert_eq!(inline_reason(&p, &off), None, "off by default");
}

#[test]
fn pipeline_mode_cuts_a_mid_sized_small_input_into_smaller_batches() {
    let c = RunConfig {
        mode: Mode::Pipeline,
        batch_size: 8192,
        grow_chunks: true,
        inline_small: true,
        ..RunConfig::default()
    };
    // 100 K records: 13 default batches, too few to overlap; 48 smaller ones.
    assert_eq!(smaller_batch(&generated(100_000), &c), Some(100_000 / 48));
    // With the smaller batches the engine runs: no inline reason.
    let shrunk = RunConfig {
        batch_size: 100_000 / 48,
        ..c.clone()
    };
    assert_eq!(inline_reason(&generated(100_000), &shrunk), None);
    // Below 64 Ki records: inline, as before.
    assert_eq!(smaller_batch(&generated(50_000), &c), None);
    assert!(inline_reason(&generated(50_000), &c).is_some());
    // Large inputs keep the default batch.
    assert_eq!(smaller_batch(&generated(1_000_000), &c), None);
    // A batch size the user gave, other modes, chosen replicas: untouched.
    let given = RunConfig {
        grow_chunks: false,
        ..c.clone()
    };
    assert_eq!(smaller_batch(&generated(100_000), &given), None);
    let mp = RunConfig {
        mode: Mode::Multiprocess,
        ..c.clone()
    };
    assert_eq!(smaller_batch(&generated(100_000), &mp), None);
    let fixed = RunConfig {
        replicas: crate::Replicas::parse_one("parse=2").unwrap(),
        ..c
    };
    assert_eq!(smaller_batch(&generated(100_000), &fixed), None);
}
