//! The rules across inputs: engine shapes a user chose, one core, the
//! small-input flags, smaller batches, the sizing rule, the names.

use super::*;

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
    let mut c = logs_config(Mode::Pipelined);
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
    // inline_small off: the engine asked for (lanes over plain files;
    // the stage actors where lanes cannot read).
    let mut c = logs_config(Mode::Pipelined);
    c.inline_small = false;
    assert_eq!(plan(&f, &c, &TWO).engine, ReadingLanes);
    let numbered = PipelineFacts {
        renumbers: false,
        ..f.clone()
    };
    let p = plan(&numbered, &c, &TWO);
    assert_eq!(p.engine, StageActors);
    assert!(p.why.contains("reads record numbers"), "{}", p.why);
}

#[test]
fn one_core() {
    let one = Machine { cores: 1 };
    let f = kinds().large_file;
    let lanes = plan(&f, &auto(logs_config(Mode::Pipelined)), &one);
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
        plan(&small, &logs_config(Mode::Pipelined), &one).engine,
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
    let pl = c(Mode::Pipelined);
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
    let mut bad = c(Mode::Pipelined);
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
    let c = logs_config(Mode::Pipelined);
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
