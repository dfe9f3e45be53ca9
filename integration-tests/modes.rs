//! Every execution mode against serial mode, byte for byte, over generated
//! and hand-made edge-case inputs and a matrix of batch sizes, queue depths
//! and replica counts; then pipeline mode's own guarantees: queues bounded
//! by the queue depth, a slow stage throttling the source, stage errors and
//! panics reported with stage/batch/line and leaving no output, and Ctrl-C.

mod common;

use common::{describe, expect_code, expect_ok, read_json, s};
use parpipe::workloads::logs::{metrics::LogsMetrics, sink::LogsSink, source::Generated, stages};
use parpipe::{
    Aggregate, BatchInfo, Error, ErrorKind, JobSpec, Mode, Pipeline, Registry, Replicas, RunConfig,
    Sink, Source, Stage, StageError,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The modes compared with serial. Add "multiprocess" here when it lands.
const MODES: &[&str] = &["pipeline", "multiprocess"];

/// `--replicas` settings tried in every mode (ignored by modes without stages).
const REPLICAS: &[&[&str]] = &[
    &[],
    &["--replicas", "parse=2"],
    &["--replicas", "enrich=3"],
    &["--replicas", "auto"],
];

const DEPTHS: &[&str] = &["1", "2", "4"];

/// Hand-made lines: CRLF, invalid UTF-8, bad dates, empty lines, … (the
/// idea of integration-tests/cli.rs's EDGE_LINES, kept short here).
const EDGE_LINES: &[&[u8]] = &[
    b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a.gif?x=1 HTTP/1.0\" 200 2326 \"http://r/\" \"Mozilla/5.0\"",
    b"10.0.0.1 - frank [31/Dec/2023:23:30:00 -0100] \"POST /form HTTP/1.1\" 302 - \"-\" \"Googlebot/2.1\"",
    b"10.0.0.2 - - [29/Feb/2023:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
    b"10.0.0.3 - - [01/Jan/0001:00:30:00 +0100] \"-\" 400 18446744073709551615",
    b"10.0.0.3 - - [01/Jan/2001:00:30:00 +0100] \"GET / HTTP/1.1\" 200 18446744073709551616",
    b"10.0.0.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /q\\\"uote HTTP/1.0\" 500 12 \"-\" \"a \\\"spider\\\" b\"",
    b"10.0.\xff.5 - - [10/Oct/2000:13:55:36 +0000] \"GET /\xfe HTTP/1.0\" 200 5",
    b"10.0.0.6 - - [10/Oct/2000:24:00:00 +0000] \"GET / HTTP/1.0\" 200 5",
    b"",
    b"\x00\x01binary\xff",
    b"10.0.0.7 - - [10/Oct/2000:13:55:36 +2359] \"OPTIONS * HTTP/1.0\" 099 7",
    b"::1 - - [10/Oct/2000:13:55:36 +0000] \"\" 400 0 \"-\" \"-\"",
];

fn edge_input() -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..3 {
        for (i, line) in EDGE_LINES.iter().enumerate() {
            data.extend_from_slice(line);
            data.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        }
    }
    // The last line has no terminator at all.
    data.extend_from_slice(EDGE_LINES[0]);
    data
}

/// The three outputs of a run, as bytes.
#[derive(PartialEq, Eq)]
struct Outputs {
    summary: Vec<u8>,
    records: Vec<u8>,
    rejects: Vec<u8>,
}

/// Runs `mode` over `input` (a file, or `None` for the built-in generator
/// making `records` lines) and returns the outputs and the report.
fn run_mode(
    mode: &str,
    input: Option<&Path>,
    records: u64,
    extra: &[&str],
    out: &Path,
) -> (Outputs, serde_json::Value) {
    let _ = std::fs::remove_dir_all(out);
    let count = records.to_string();
    let mut args = vec![
        "run",
        "--mode",
        mode,
        "--out",
        s(out),
        "--emit-records",
        "-q",
    ];
    match input {
        Some(path) => args.extend(["--input", s(path)]),
        None => args.extend(["--records", &count]),
    }
    args.extend(extra);
    expect_ok(&args);
    let read = |name: &str| {
        std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}; {args:?}"))
    };
    let outputs = Outputs {
        summary: read("summary.json"),
        records: read("records.jsonl"),
        rejects: read("rejects.txt"),
    };
    (outputs, read_json(&out.join("report.json")))
}

fn assert_same(expected: &Outputs, got: &Outputs, what: &str) {
    assert!(
        expected.summary == got.summary,
        "summary.json differs: {what}\n{}\n{}",
        String::from_utf8_lossy(&expected.summary),
        String::from_utf8_lossy(&got.summary)
    );
    assert!(
        expected.records == got.records,
        "records.jsonl differs: {what}"
    );
    assert!(
        expected.rejects == got.rejects,
        "rejects.txt differs: {what}"
    );
}

/// Every mode × batch size × replicas (queue depth rotating) against serial.
fn matrix(input: Option<&Path>, records: u64, batch_sizes: &[&str], dir: &Path) {
    let (serial, _) = run_mode("serial", input, records, &[], &dir.join("serial"));
    let mut run = 0;
    for mode in MODES {
        for batch in batch_sizes {
            for replicas in REPLICAS {
                let depth = DEPTHS[run % DEPTHS.len()];
                run += 1;
                let mut extra = vec!["--batch-size", batch, "--queue-depth", depth];
                extra.extend(*replicas);
                let (got, report) = run_mode(mode, input, records, &extra, &dir.join("got"));
                assert_same(&serial, &got, &format!("--mode {mode} {}", extra.join(" ")));
                assert_queues_bounded(&report, depth.parse().unwrap());
            }
        }
    }
}

fn assert_queues_bounded(report: &serde_json::Value, depth: u64) {
    for stage in report["stages"].as_array().expect("stages") {
        let high = stage["queue_high_water"]
            .as_u64()
            .expect("queue_high_water");
        assert!(high <= depth, "queue over depth {depth}: {stage}");
    }
}

#[test]
fn generated_file_is_identical_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    expect_ok(&["generate", "--records", "30000", "--output", s(&file)]);
    matrix(Some(&file), 0, &["7", "1000", "8192"], dir.path());
}

#[test]
fn built_in_generator_is_identical_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    matrix(None, 30_000, &["1000"], dir.path());
}

#[test]
fn edge_cases_are_identical_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.log");
    std::fs::write(&file, edge_input()).unwrap();
    for depth in DEPTHS {
        let (serial, _) = run_mode("serial", Some(&file), 0, &[], &dir.path().join("serial"));
        for mode in MODES {
            for batch in ["1", "7", "1000"] {
                for replicas in REPLICAS {
                    let mut extra = vec!["--batch-size", batch, "--queue-depth", depth];
                    extra.extend(*replicas);
                    let out = dir.path().join("got");
                    let (got, _) = run_mode(mode, Some(&file), 0, &extra, &out);
                    assert_same(&serial, &got, &format!("--mode {mode} {}", extra.join(" ")));
                }
            }
        }
    }
}

#[test]
fn queues_never_exceed_the_queue_depth() {
    let dir = tempfile::tempdir().unwrap();
    for (depth, replicas) in [("1", "parse=2"), ("2", "enrich=3"), ("3", "parse=1")] {
        let args = [
            "--batch-size",
            "50",
            "--queue-depth",
            depth,
            "--replicas",
            replicas,
        ];
        let (_, report) = run_mode("pipeline", None, 20_000, &args, dir.path());
        assert_queues_bounded(&report, depth.parse().unwrap());
        let rows = report["stages"].as_array().unwrap();
        assert!(rows
            .iter()
            .any(|r| r["queue_high_water"].as_u64() >= Some(1)));
        assert_eq!(report["mode"], "pipeline");
    }
}

#[test]
fn pipeline_is_the_default_mode_and_bad_replicas_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    expect_ok(&["run", "--records", "100", "--out", s(&out), "-q"]);
    assert_eq!(read_json(&out.join("report.json"))["mode"], "pipeline");
    for bad in ["parse=0", "parse", "=3", "auto2"] {
        let o = expect_code(&["run", "--records", "1", "--replicas", bad], None, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--replicas") && err.contains(bad), "{err}");
    }
    for bad in ["nope=2", "generate=2"] {
        let o = expect_code(&["run", "--records", "1", "--replicas", bad], None, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--replicas") && err.contains(bad), "{err}");
    }
    let o = expect_code(
        &[
            "run",
            "--records",
            "1",
            "--replicas",
            "auto",
            "--replicas",
            "parse=2",
        ],
        None,
        2,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--replicas"));
}

#[test]
fn unreadable_input_fails_with_code_1_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("missing.log");
    let args = [
        "run",
        "--mode",
        "pipeline",
        "--input",
        s(&missing),
        "--out",
        s(&out),
    ];
    let o = expect_code(&args, None, 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.log"),
        "{}",
        describe(&args, &o)
    );
    assert!(!out.join("summary.json").exists());
}

// ---- library-level pipelines ----

/// Counts 1, 2, 3, … in batches.
struct Counter {
    next: u64,
    end: u64,
}

impl Source for Counter {
    type Out = Vec<u64>;

    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
        if self.next > self.end {
            return Ok(None);
        }
        let last = (self.next + max as u64 - 1).min(self.end);
        let batch = (self.next..=last).collect();
        self.next = last + 1;
        Ok(Some(batch))
    }
}

/// A stage that takes `pause` per batch: the bottleneck.
#[derive(Clone)]
struct Slow {
    pause: Duration,
}

impl Stage for Slow {
    type In = Vec<u64>;
    type Out = Vec<u64>;

    fn process(&mut self, input: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        // Stands for CPU work; the test does not wait on it.
        std::thread::sleep(self.pause);
        Ok(input)
    }
}

#[derive(Clone)]
struct Sum;

impl Aggregate for Sum {
    type In = Vec<u64>;
    type Partial = u64;

    fn empty(&self) -> u64 {
        0
    }

    fn add(&mut self, acc: &mut u64, input: Vec<u64>, _: &BatchInfo) -> Result<(), StageError> {
        *acc += input.iter().sum::<u64>();
        Ok(())
    }

    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
}

/// Writes the sum to a file.
struct SumFile(PathBuf);

impl Sink for SumFile {
    type Partial = u64;
    type Output = ();

    fn finish(&mut self, sum: u64) -> Result<(), StageError> {
        std::fs::write(&self.0, sum.to_string())?;
        Ok(())
    }
}

fn pipeline_config(depth: usize, replicas: Replicas) -> RunConfig {
    RunConfig {
        mode: Mode::Pipelined,
        batch_size: 10_000,
        queue_depth: depth,
        replicas,
        ..RunConfig::default()
    }
}

#[test]
fn a_slow_stage_throttles_the_source_and_queues_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sum");
    let records = 3_000_000u64;
    let mut registry = Registry::new();
    let target = out.clone();
    registry.register("count", move |end: u64| {
        Ok(
            Pipeline::builder("count", "count", Counter { next: 1, end })
                .stage(
                    "slow",
                    Slow {
                        pause: Duration::from_millis(2),
                    },
                )
                .aggregate("sum", Sum, "file", SumFile(target.clone())),
        )
    });
    let job = JobSpec::new("count", &records).unwrap();
    for (depth, replicas) in [
        (1, Replicas::None),
        (3, Replicas::parse_one("slow=2").unwrap()),
    ] {
        let report = parpipe::run(&registry, &job, &pipeline_config(depth, replicas))
            .unwrap()
            .report;
        let expected = records * (records + 1) / 2;
        assert_eq!(std::fs::read_to_string(&out).unwrap(), expected.to_string());
        let source = &report.stages[0];
        let slow = &report.stages[1];
        assert_eq!(source.records_out, records);
        // 300 batches at ≥ 2 ms each, shared by the slow stage's replicas
        // (≥ 0.6 s, or ≥ 0.3 s with two): the source, which needs far less
        // (counting 3 M numbers: under 0.1 s, even on a loaded machine),
        // waits for credit for at least a third of that, and longer than it
        // works.
        let least = 0.2 / slow.replicas as f64;
        assert!(source.blocked_seconds > least, "{}", report.to_table());
        assert!(
            source.blocked_seconds > source.busy_seconds,
            "{}",
            report.to_table()
        );
        // The slow stage's queue filled up (with one replica, to the brim).
        assert!(slow.queue_high_water >= 1, "{}", report.to_table());
        if slow.replicas == 1 {
            assert_eq!(slow.queue_high_water, depth, "{}", report.to_table());
        }
        for row in &report.stages {
            assert!(row.queue_high_water <= depth, "{}", report.to_table());
        }
        assert_eq!(report.bottleneck.as_ref().unwrap().stage, "slow");
    }
}

/// Fails (or panics) on batch `at`.
#[derive(Clone)]
struct Boom {
    at: u64,
    panic: bool,
}

impl Stage for Boom {
    type In = stages::ParsedBatch;
    type Out = stages::ParsedBatch;

    fn process(
        &mut self,
        input: stages::ParsedBatch,
        info: &BatchInfo,
    ) -> Result<stages::ParsedBatch, StageError> {
        if info.seq == self.at {
            if self.panic {
                panic!("boom at batch {}", info.seq);
            }
            return Err(StageError::new("no good"));
        }
        Ok(input)
    }
}

fn failing_run(mode: Mode, panic: bool, replicas: Replicas, out: &Path) -> Error {
    let mut registry = Registry::new();
    let out_dir = out.to_path_buf();
    registry.register("boom", move |panic: bool| {
        Ok(Pipeline::builder(
            "boom",
            "generate",
            Generated::new(7, 5_000, parpipe::sources::BatchPool::new()),
        )
        .stage("parse", stages::Parse::default())
        .stage("boom", Boom { at: 3, panic })
        .stage("enrich", stages::Enrich::default())
        .aggregate(
            "metrics",
            LogsMetrics {
                emit_records: true,
                ..LogsMetrics::default()
            },
            "write",
            LogsSink::new(out_dir.clone(), true),
        ))
    });
    let job = JobSpec::new("boom", &panic).unwrap();
    let config = RunConfig {
        mode,
        batch_size: 100,
        queue_depth: 2,
        replicas,
        ..RunConfig::default()
    };
    parpipe::run(&registry, &job, &config).expect_err("the run must fail")
}

fn leftovers(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn stage_errors_and_panics_name_the_stage_batch_and_line_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Mode::Serial, Replicas::None),
        (Mode::Pipelined, Replicas::None),
        (Mode::Pipelined, Replicas::parse_one("boom=2").unwrap()),
        (Mode::Pipelined, Replicas::parse_one("parse=3").unwrap()),
    ];
    for (i, (mode, replicas)) in cases.into_iter().enumerate() {
        for panic in [false, true] {
            let out = dir.path().join(format!("out{i}{panic}"));
            let error = failing_run(mode, panic, replicas.clone(), &out);
            let text = error.to_string();
            let what = if panic { "panicked" } else { "failed" };
            assert!(
                text.starts_with(&format!("stage 'boom' {what} on batch 3 (first line 301)")),
                "{mode} {replicas}: {text}"
            );
            assert!(text.contains(if panic { "boom at batch 3" } else { "no good" }));
            let kind = if panic {
                ErrorKind::Panic
            } else {
                ErrorKind::Stage
            };
            assert_eq!(error.kind(), kind, "{mode} {replicas}");
            assert_eq!(error.stage(), Some("boom"));
            let batch = error.batch().expect("a stage error names its batch");
            assert_eq!((batch.seq, batch.first_line, batch.records), (3, 301, 100));
            assert_eq!(error.worker(), None);
            assert_eq!(leftovers(&out), Vec::<String>::new(), "{mode} {replicas}");
        }
    }
}

#[test]
fn ctrl_c_stops_a_long_run_quickly_and_leaves_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(common::bin())
        .args([
            "run",
            "--mode",
            "pipeline",
            "--records",
            "50000000",
            "--emit-records",
        ])
        .args(["--out", s(&out), "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe");
    // The sink opens its temporary outputs (in the run's staging directory)
    // with the first batch: wait for them.
    let owner = format!(".run.parpipe-{}-", child.id());
    let staging = || {
        let found = leftovers(&out).into_iter().find(|n| n.starts_with(&owner));
        found.map_or_else(Vec::new, |n| leftovers(&out.join(n)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while staging().is_empty() {
        assert!(Instant::now() < deadline, "the run never started writing");
        assert!(child.try_wait().unwrap().is_none(), "parpipe ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success());
    let sent = Instant::now();
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "parpipe ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(code.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert_eq!(leftovers(&out), Vec::<String>::new());
    eprintln!("Ctrl-C: exited {took:?} after SIGINT");
}
