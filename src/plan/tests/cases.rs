//! Each kind of input in each of the four ways to run.

use super::*;

#[test]
fn a_25k_line_file() {
    let f = kinds().small_file;
    assert_eq!(
        shapes(&f, logs_config),
        [
            (Inline, Threads, Records, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
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
    // Reading lanes start in no time: never replaced by an inline run.
    let p = plan(&f, &logs_config(Mode::Pipelined), &TWO);
    assert!(p.why.contains("one reading lane per core"), "{}", p.why);
    // The stage actors (lanes cannot read) are not worth starting.
    let numbered = PipelineFacts {
        renumbers: false,
        ..f.clone()
    };
    let p = plan(&numbered, &logs_config(Mode::Pipelined), &TWO);
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
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (WorkerProcesses, LocalWorkers, UncountedRanges, 8192),
        ]
    );
    // --replicas STAGE=N: the stage actors, as given.
    let mut fixed = logs_config(Mode::Pipelined);
    fixed.replicas = Replicas::Fixed(vec![("parse".into(), 2)]);
    assert_eq!(plan(&f, &fixed, &TWO).engine, StageActors);
    let lanes = plan(&f, &auto(logs_config(Mode::Pipelined)), &TWO);
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
    let p = plan(&f, &auto(logs_config(Mode::Pipelined)), &TWO);
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

#[test]
fn a_user_pipeline_on_csv() {
    let k = kinds();
    assert_eq!(
        shapes(&k.csv, library),
        [
            (Inline, Threads, Records, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (ReadingLanes, Threads, UncountedRanges, 8192),
            (WorkerProcesses, LocalWorkers, UncountedRanges, 8192),
        ]
    );
    // The CSV source caps its batches by bytes (a budget of 48 KiB of
    // 32-byte records here), and every plan says so.
    assert_eq!(k.csv.batch_records, Some(1536));
    for c in four(library) {
        let p = plan(&k.csv, &c, &TWO);
        assert_eq!(p.source_batch_records, Some(1536), "{p:?}");
        assert!(p
            .to_lines()
            .contains("batches of 8192 records, capped by the source at 1536 (by bytes)"));
    }
    // A batch size under the cap: no cap to show.
    let mut small = library(Mode::Serial);
    small.batch_size = 100;
    assert_eq!(plan(&k.csv, &small, &TWO).source_batch_records, None);
    // Without inline_small, even a tiny CSV gets the engine it asked for.
    assert_eq!(plan(&k.csv, &library(Mode::Multiprocess), &TWO).workers, 2);
    // Chunks sized to what remains by default (a partial per chunk is
    // built, sent and merged fewer times); a batch each once the batch
    // size is the chunk size.
    let mp = plan(&k.csv, &library(Mode::Multiprocess), &TWO);
    assert!(mp.chunk_sizing.guided, "{mp:?}");
    assert_eq!(mp.chunk_sizing.records(Some(1 << 30), 2, 0), 32 * 8192);
    let mut fixed = library(Mode::Multiprocess);
    fixed.grow_chunks = false;
    let mp = plan(&k.csv, &fixed, &TWO);
    assert!(!mp.chunk_sizing.guided, "chunks of a batch");
    assert_eq!(mp.chunk_sizing.records(Some(1 << 30), 2, 0), 8192);
    // Reading lanes size their chunks to what remains, whatever the config.
    let lanes = plan(&k.csv, &auto(library(Mode::Pipelined)), &TWO);
    assert!(lanes.chunk_sizing.guided);
    // A source without a chunk decoder: no lanes; workers still get
    // ranges, uncounted if the source cuts by bytes (asked at the first chunk).
    let no_decoder = PipelineFacts {
        decodes_chunks: false,
        ..k.csv.clone()
    };
    let p = plan(&no_decoder, &auto(library(Mode::Pipelined)), &TWO);
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

/// A fold that commutes over record stages: one partial per reading lane
/// and per local worker; none where chunks are shipped text, only remote
/// workers are expected, the fold does not commute, or stages take
/// batches.
#[test]
fn a_fold_that_commutes_gets_one_partial_per_lane_and_per_worker() {
    let k = kinds();
    let folds = PipelineFacts {
        record_chain: true,
        fold_commutes: true,
        ..k.csv.clone()
    };
    let one_each = |facts: &PipelineFacts, config: &RunConfig| {
        let p = plan(facts, config, &TWO);
        (p.record_by_record, p.partial_per_lane, p.partial_per_worker)
    };
    let modes = four(library).map(|c| one_each(&folds, &c));
    assert_eq!(
        modes,
        [
            (true, false, false),
            (true, true, false),
            (true, true, false),
            (true, false, true),
        ]
    );
    let mp = plan(&folds, &library(Mode::Multiprocess), &TWO);
    assert!(
        mp.to_lines().contains("one partial per worker"),
        "{}",
        mp.to_lines()
    );
    // Only remote workers: chunks may travel as bytes, never kept.
    let mut remote = library(Mode::Multiprocess);
    remote.workers = Some(0);
    assert_eq!(one_each(&folds, &remote), (true, false, false));
    // Not in files: shipped text.
    let shipped = PipelineFacts {
        in_files: false,
        ..folds.clone()
    };
    assert_eq!(
        one_each(&shipped, &library(Mode::Multiprocess)),
        (true, false, false)
    );
    // A fold whose order matters, or batch stages: a partial per chunk.
    for facts in [
        PipelineFacts {
            fold_commutes: false,
            ..folds.clone()
        },
        PipelineFacts {
            record_chain: false,
            ..folds.clone()
        },
    ] {
        for c in four(library) {
            let (_, lane, worker) = one_each(&facts, &c);
            assert!(!lane && !worker, "{c:?}");
        }
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
