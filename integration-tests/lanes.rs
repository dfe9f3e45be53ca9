//! Pipeline mode's reading lanes (`--replicas auto` over plain files),
//! against the real binary: the outputs are serial's byte for byte, on
//! generated lines and on hand-made ones (CRLF, a line far longer than a
//! read block, a last line without its line feed) across several files;
//! the report keeps a row per part with the lanes as replicas; and a run
//! that the lanes cannot serve (`--emit-records`, whose records carry
//! their line numbers) still runs, on the stage actors, with serial's
//! outputs. Through the library: a stage failing in a lane fails the run
//! naming the first failing batch in input order, at its line in the
//! whole input.

mod common;

use common::{expect_ok, read_json, s};
use parpipe::plan::Engine;
use parpipe::sources::{InputSpec, LineBatch, Lines};
use parpipe::{BatchInfo, Error, ErrorKind, Mode, Pipeline, Replicas, RunConfig, StageError};
use std::path::Path;

/// Runs `parpipe run` on `inputs` in `mode_args` into `out`, with the log
/// at info level; returns the log.
fn run(inputs: &[&Path], mode_args: &[&str], out: &Path) -> String {
    let mut args = vec!["run", "-q", "--out", s(out)];
    for input in inputs {
        args.extend(["--input", s(input)]);
    }
    args.extend(mode_args);
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(&args).env("RUST_LOG", "parpipe=info");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", common::describe(&args, &o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn same_files(a: &Path, b: &Path, names: &[&str]) {
    for name in names {
        let (x, y) = (std::fs::read(a.join(name)), std::fs::read(b.join(name)));
        assert_eq!(x.unwrap(), y.unwrap(), "{name} differs");
    }
}

/// Hand-made text: CRLF and LF lines, a 700 KB line, bad lines, no final LF.
fn odd_lines(path: &Path, seed: u64) {
    let mut text = Vec::new();
    for i in 0..20_000u64 {
        let i = i + seed;
        match i % 97 {
            0 => text.extend(b"not a log line at all\r\n"),
            1 if i.is_multiple_of(3) => {
                text.extend(std::iter::repeat_n(b'x', 700_000));
                text.push(b'\n');
            }
            _ => text.extend(
                format!(
                    "10.0.{}.{} - - [10/Oct/2000:13:{:02}:36 -0700] \"GET /p{} HTTP/1.0\" {} {}\n",
                    i % 7,
                    i % 251,
                    i % 60,
                    i % 13,
                    [200, 404, 500][(i % 3) as usize],
                    i
                )
                .as_bytes(),
            ),
        }
    }
    text.extend(b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /last HTTP/1.0\" 200 9");
    std::fs::write(path, text).unwrap();
}

#[test]
fn lanes_give_serials_outputs_and_a_row_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("gen.log");
    expect_ok(&[
        "generate",
        "--records",
        "60000",
        "--seed",
        "5",
        "--output",
        s(&generated),
    ]);
    let (odd_a, odd_b) = (dir.path().join("odd-a.log"), dir.path().join("odd-b.log"));
    odd_lines(&odd_a, 0);
    odd_lines(&odd_b, 41);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, inputs) in [
        ("generated", vec![generated.as_path()]),
        (
            "odd lines in two files",
            vec![odd_a.as_path(), odd_b.as_path()],
        ),
    ] {
        for batch in ["1000", "7"] {
            let serial = dir.path().join(format!("serial-{batch}"));
            let lanes = dir.path().join(format!("lanes-{batch}"));
            let _ = (
                std::fs::remove_dir_all(&serial),
                std::fs::remove_dir_all(&lanes),
            );
            run(
                &inputs,
                &["--mode", "serial", "--batch-size", batch],
                &serial,
            );
            let log = run(
                &inputs,
                &[
                    "--mode",
                    "pipeline",
                    "--replicas",
                    "auto",
                    "--batch-size",
                    batch,
                ],
                &lanes,
            );
            same_files(&serial, &lanes, &["summary.json"]);
            if cores < 2 {
                println!("SKIPPED (lanes part): one core, so `auto` keeps the stage actors");
                continue;
            }
            let report = read_json(&lanes.join("report.json"));
            let plan = &report["plan"];
            assert_eq!(
                plan["engine"], "reading_lanes",
                "{name}, batch {batch}: {log}"
            );
            assert_eq!(plan["lanes"].as_u64(), Some(cores as u64), "{plan}");
            assert_eq!(plan["chunking"], "uncounted_ranges", "{plan}");
            let rows = report["stages"].as_array().unwrap();
            let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
            assert_eq!(
                names,
                ["read", "parse", "enrich", "metrics", "write"],
                "{name}"
            );
            let summary = read_json(&serial.join("summary.json"));
            let lines = summary["lines"].as_u64().unwrap();
            assert_eq!(rows[0]["records_out"].as_u64(), Some(lines), "{name}");
            assert_eq!(rows[1]["records_in"].as_u64(), Some(lines), "{name}");
            assert_eq!(rows[1]["replicas"].as_u64(), Some(cores as u64), "{name}");
        }
    }
}

#[test]
fn a_run_the_lanes_cannot_serve_runs_on_the_stage_actors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("odd.log");
    odd_lines(&input, 3);
    let (serial, auto) = (dir.path().join("serial"), dir.path().join("auto"));
    let emit = ["--emit-records", "--batch-size", "500"];
    let mut args = vec!["--mode", "serial"];
    args.extend(emit);
    run(&[&input], &args, &serial);
    let mut args = vec!["--mode", "pipeline", "--replicas", "auto"];
    args.extend(emit);
    let log = run(&[&input], &args, &auto);
    let plan = &read_json(&auto.join("report.json"))["plan"];
    assert_eq!(plan["engine"], "stage_actors", "{plan}\n{log}");
    assert_eq!(plan["probe"], true, "{plan}");
    assert!(
        plan["why"].as_str().unwrap().contains("record numbers"),
        "the reason names what the lanes lack: {plan}"
    );
    same_files(
        &serial,
        &auto,
        &["summary.json", "records.jsonl", "rejects.txt"],
    );
}

/// Fails (or panics) on a batch holding the line `BOOM`, wherever it is:
/// it reads no line number, so the lanes may run it.
#[derive(Clone)]
struct Tripwire {
    panic: bool,
}

impl parpipe::Stage for Tripwire {
    type In = LineBatch;
    type Out = LineBatch;
    fn process(&mut self, b: LineBatch, _: &BatchInfo) -> Result<LineBatch, StageError> {
        if b.iter().any(|(_, line)| line == b"BOOM") {
            if self.panic {
                panic!("tripped");
            }
            return Err(StageError::new("tripped"));
        }
        Ok(b)
    }
    fn uses_record_numbers(&self) -> bool {
        false
    }
}

/// Counts lines: a partial without record numbers, renumbered as is.
#[derive(Clone)]
struct Count;

impl parpipe::Aggregate for Count {
    type In = LineBatch;
    type Partial = u64;
    fn empty(&self) -> u64 {
        0
    }
    fn add(&mut self, acc: &mut u64, b: LineBatch, _: &BatchInfo) -> Result<(), StageError> {
        *acc += b.len() as u64;
        Ok(())
    }
    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
    fn renumbers(&self) -> bool {
        true
    }
}

/// `lines` lines `line N`, but `BOOM` at each of `booms` (1-based).
fn lines_with_booms(path: &Path, lines: u64, booms: &[u64]) {
    let mut text = String::new();
    for n in 1..=lines {
        match booms.contains(&n) {
            true => text.push_str("BOOM\n"),
            false => text.push_str(&format!("line {n}\n")),
        }
    }
    std::fs::write(path, text).unwrap();
}

fn count_lines(path: &Path, mode: Mode, panic: bool) -> Result<parpipe::Finished<u64>, Error> {
    let config = RunConfig {
        mode,
        batch_size: 1000,
        replicas: Replicas::Auto,
        ..RunConfig::default()
    };
    Pipeline::builder_files(
        "count",
        "lines",
        Lines::new(vec![InputSpec::File(path.to_path_buf())]),
    )
    .stage("tripwire", Tripwire { panic })
    .collect("count", Count)
    .run(&config)
}

#[test]
fn a_failing_chunk_in_a_lane_names_the_first_failing_batch_in_input_order() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        println!("SKIPPED: one core: the plan runs no reading lanes");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The lanes run on plain files only; this one has no BOOM.
    let clean = dir.path().join("clean.log");
    lines_with_booms(&clean, 300_000, &[]);
    let done = count_lines(&clean, Mode::Pipelined, false).unwrap();
    assert_eq!(done.result, 300_000);
    let plan = done.report.plan.expect("the report holds the plan");
    assert_eq!(plan.engine, Engine::ReadingLanes, "{plan:?}");
    // Two BOOMs: a lane may trip on the later one first, but the run names
    // the earlier, at its place in the whole input.
    let path = dir.path().join("booms.log");
    lines_with_booms(&path, 300_000, &[150_001, 290_001]);
    for panic in [false, true] {
        let error = count_lines(&path, Mode::Pipelined, panic).expect_err("the run must fail");
        assert_eq!(error.stage(), Some("tripwire"), "{error}");
        let kind = if panic {
            ErrorKind::Panic
        } else {
            ErrorKind::Stage
        };
        assert_eq!(error.kind(), kind, "{error}");
        let batch = error.batch().expect("a stage error names its batch");
        let lines = batch.first_line..batch.first_line + batch.records;
        assert!(lines.contains(&150_001), "{error}: {batch:?}");
        assert!(
            error
                .to_string()
                .contains(&format!("first line {}", batch.first_line)),
            "{error}"
        );
    }
    // Serial mode names a batch holding the same line.
    let error = count_lines(&path, Mode::Serial, false).expect_err("serial must fail too");
    let batch = error.batch().unwrap();
    assert!((batch.first_line..batch.first_line + batch.records).contains(&150_001));
}
