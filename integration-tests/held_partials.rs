//! Multiprocess workers that hold one partial each (a fold that commutes,
//! record stages, a CSV source cut by bytes): the result is serial mode's,
//! every record counted once, also when a worker dies holding chunks it
//! answered (they run again elsewhere), when a holding worker stalls (it
//! is waited for: its chunks are not copied, since two answers would put
//! a chunk's records in two partials), and when the partial grows with
//! every chunk (the coordinator, measuring the first two partials, tells
//! each worker `Unhold`: it sends what it holds and answers each chunk
//! with its own partial from then on).
//!
//! No test harness: the local workers are this very binary, dispatched by
//! `main`. What a worker does wrong is set in `HELD_TEST_TRIGGER`
//! (`die` or `stall`, a marker file, a record id): the first worker to
//! reach that record after it ran an earlier chunk does it, once.

use parpipe::sources::{Csv, InputSpec};
use parpipe::{Fold, Mode, Pipeline, Registry, RunConfig, StageError, WorkerCommand};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Records in the input.
const RECORDS: u64 = 40_000;
/// The record the trigger fires on: near the end, where chunks are small.
const TRIGGER_AT: u64 = 38_000;

#[derive(Debug, Deserialize)]
struct Row {
    id: u64,
    value: u64,
    /// What the counts are keyed by (set by the `check` stage).
    #[serde(skip)]
    key: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Totals {
    rows: u64,
    sum: u64,
    by_residue: BTreeMap<u64, u64>,
}

#[derive(Clone)]
struct Sum;

impl Fold for Sum {
    type In = Row;
    type Partial = Totals;
    fn empty(&self) -> Totals {
        Totals::default()
    }
    fn add(&mut self, acc: &mut Totals, row: Row) -> Result<(), StageError> {
        acc.rows += 1;
        acc.sum += row.value;
        *acc.by_residue.entry(row.key).or_default() += 1;
        Ok(())
    }
    fn merge(&self, acc: &mut Totals, later: Totals) {
        acc.rows += later.rows;
        acc.sum += later.sum;
        for (k, v) in later.by_residue {
            *acc.by_residue.entry(k).or_default() += v;
        }
    }
    fn commutes(&self) -> bool {
        true
    }
}

#[derive(Serialize, Deserialize)]
struct Params {
    input: String,
    /// Key the counts by record id instead of by residue: a partial that
    /// grows with every chunk, for which holding does not pay.
    by_id: bool,
}

/// This process ran a record well before the trigger's: it answered an
/// earlier chunk, which its partial holds.
static RAN_EARLIER: AtomicBool = AtomicBool::new(false);

/// The trigger: `die` exits the worker, `stall` pauses it past the
/// coordinator's overdue deadline; only in the first worker that gets
/// there having answered an earlier chunk (the marker file says it fired).
fn trigger(row: &Row) {
    if row.id + 5_000 < TRIGGER_AT {
        RAN_EARLIER.store(true, Ordering::Relaxed);
    }
    if row.id != TRIGGER_AT || !RAN_EARLIER.load(Ordering::Relaxed) {
        return;
    }
    let Ok(spec) = std::env::var("HELD_TEST_TRIGGER") else {
        return;
    };
    let Some((what, marker)) = spec.split_once(':') else {
        return;
    };
    if std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(marker)
        .is_err()
    {
        return;
    }
    match what {
        "die" => std::process::exit(7),
        _ => std::thread::sleep(Duration::from_secs(2)),
    }
}

fn registry() -> (Registry, parpipe::Key<Params, Totals>) {
    let mut registry = Registry::new();
    let key = registry.register("held", |p: Params| {
        let source = Csv::<Row>::new(InputSpec::parse(&p.input));
        let by_id = p.by_id;
        Ok(Pipeline::builder_files("held", "rows", source)
            .map("check", move |mut row: Row| {
                trigger(&row);
                row.key = if by_id { row.id } else { row.value % 97 };
                row
            })
            .fold("sum", Sum))
    });
    (registry, key)
}

fn write_input(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,value").unwrap();
    for id in 1..=RECORDS {
        writeln!(out, "{id},{}", id.wrapping_mul(2_654_435_761) % 100_003).unwrap();
    }
    out.flush().unwrap();
}

fn config(mode: Mode) -> RunConfig {
    RunConfig {
        mode,
        // Small batches: many chunks, so that each worker answers several.
        batch_size: 500,
        workers: (mode == Mode::Multiprocess).then_some(2),
        worker_command: WorkerCommand::current_exe().ok(),
        worker_wait_timeout: Duration::from_secs(60),
        ..RunConfig::default()
    }
}

/// A multiprocess run with `trigger` (or none): its result must be
/// `expected`, its plan must hold partials, every record counted once.
/// Returns the workers' rows.
fn run_multiprocess(
    dir: &Path,
    trigger: Option<&str>,
    by_id: bool,
    expected: &Totals,
) -> Vec<parpipe::metrics::WorkerReport> {
    let (registry, key) = registry();
    let input = dir.join("rows.csv").display().to_string();
    let marker = dir.join(format!("fired-{}", trigger.unwrap_or("none")));
    match trigger {
        Some(what) => {
            std::env::set_var("HELD_TEST_TRIGGER", format!("{what}:{}", marker.display()))
        }
        None => std::env::remove_var("HELD_TEST_TRIGGER"),
    }
    let done = registry
        .run(&key, &Params { input, by_id }, &config(Mode::Multiprocess))
        .unwrap_or_else(|e| panic!("{trigger:?}: {e}"));
    std::env::remove_var("HELD_TEST_TRIGGER");
    let report = done.report;
    let plan = report.plan.as_ref().expect("a plan");
    assert!(plan.partial_per_worker, "{plan}");
    assert_eq!(&done.result, expected, "{trigger:?}");
    assert_eq!(report.records, RECORDS, "{trigger:?}: {report:?}");
    let records: u64 = report.workers.iter().map(|w| w.records).sum();
    assert_eq!(records, RECORDS, "{trigger:?}: {:?}", report.workers);
    if trigger.is_some() {
        assert!(marker.exists(), "{trigger:?}: the trigger never fired");
    }
    report.workers
}

fn check(name: &str, test: impl FnOnce()) {
    test();
    println!("test {name} ... ok");
}

fn main() {
    parpipe::worker::dispatch_if_worker(&registry().0);

    let dir = tempfile::tempdir().unwrap();
    write_input(&dir.path().join("rows.csv"));
    let (registry, key) = registry();
    let input = dir.path().join("rows.csv").display().to_string();
    let serial_of = |by_id| {
        let params = Params {
            input: input.clone(),
            by_id,
        };
        let serial = registry
            .run(&key, &params, &config(Mode::Serial))
            .expect("serial run");
        assert_eq!(serial.result.rows, RECORDS);
        serial.result
    };
    let serial = serial_of(false);
    let serial_by_id = serial_of(true);
    assert_eq!(serial_by_id.by_residue.len() as u64, RECORDS);

    check("workers_holding_partials_give_the_serial_result", || {
        let rows = run_multiprocess(dir.path(), None, false, &serial);
        let requeued: u64 = rows.iter().map(|w| w.requeued_chunks).sum();
        assert_eq!(requeued, 0, "{rows:?}");
    });
    check(
        "a_worker_dying_with_a_held_partial_has_its_chunks_run_again",
        || {
            let rows = run_multiprocess(dir.path(), Some("die"), false, &serial);
            // The dead worker's held chunks were taken back from its row;
            // only its first, answered with its own partial, stays.
            assert!(
                rows.iter().any(|w| w.requeued_chunks >= 1 && w.chunks <= 1),
                "{rows:?}"
            );
        },
    );
    check("a_stalled_worker_holding_a_partial_is_waited_for", || {
        let rows = run_multiprocess(dir.path(), Some("stall"), false, &serial);
        // Past the overdue deadline, yet no chunk was copied or run again.
        let requeued: u64 = rows.iter().map(|w| w.requeued_chunks).sum();
        assert_eq!(requeued, 0, "{rows:?}");
    });
    check("workers_stop_holding_a_partial_that_grows", || {
        let rows = run_multiprocess(dir.path(), None, true, &serial_by_id);
        let requeued: u64 = rows.iter().map(|w| w.requeued_chunks).sum();
        assert_eq!(requeued, 0, "{rows:?}");
    });
}
