//! Entry points from every kind of caller: `run` and `execute` from a
//! plain thread, from inside a tokio runtime (current-thread and
//! multi-thread) and from an actix System give the same result and never
//! panic; a multiprocess run whose local workers die before connecting
//! fails naming their exit status and the end of their stderr.

use parpipe::{
    Aggregate, BatchInfo, ErrorKind, Mode, Pipeline, Registry, RunConfig, Source, StageError,
    WorkerCommand,
};
use std::time::Duration;

struct Numbers(std::ops::Range<u64>);

impl Source for Numbers {
    type Out = Vec<u64>;
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
        let batch: Vec<u64> = self.0.by_ref().take(max).collect();
        Ok((!batch.is_empty()).then_some(batch))
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
    fn add(&mut self, acc: &mut u64, b: Vec<u64>, _: &BatchInfo) -> Result<(), StageError> {
        *acc += b.iter().sum::<u64>();
        Ok(())
    }
    fn merge(&self, acc: &mut u64, later: u64) {
        *acc += later;
    }
}

fn sum_pipeline() -> Pipeline<u64> {
    Pipeline::builder("sum", "numbers", Numbers(1..10_001)).collect("sum", Sum)
}

const TOTAL: u64 = 10_000 * 10_001 / 2;

fn configs() -> [RunConfig; 2] {
    [
        RunConfig {
            mode: Mode::Serial,
            batch_size: 100,
            ..RunConfig::default()
        },
        RunConfig {
            mode: Mode::Pipelined,
            batch_size: 100,
            ..RunConfig::default()
        },
    ]
}

#[test]
fn run_and_execute_work_from_any_caller() {
    for config in configs() {
        // A plain thread.
        assert_eq!(sum_pipeline().run(&config).unwrap().result, TOTAL);
        // Blocking `run` inside a runtime: on a thread of its own.
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = config.clone();
        let got = current.block_on(async move { sum_pipeline().run(&c).unwrap().result });
        assert_eq!(got, TOTAL);
        // `execute` from tokio (multi-thread): on a System thread of its own.
        let multi = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = config.clone();
        let got = multi.block_on(async move { sum_pipeline().execute(&c).await.unwrap().result });
        assert_eq!(got, TOTAL);
        // `execute` from an actix System: on the caller's arbiter.
        let c = config.clone();
        let got = actix::System::new()
            .block_on(async move { sum_pipeline().execute(&c).await.unwrap().result });
        assert_eq!(got, TOTAL);
        // And on this thread again, after that System is gone.
        let c = config.clone();
        let got = current.block_on(async move { sum_pipeline().execute(&c).await.unwrap().result });
        assert_eq!(got, TOTAL);
    }
}

#[test]
fn multiprocess_without_a_registry_is_a_clear_config_error() {
    let config = RunConfig {
        mode: Mode::Multiprocess,
        ..RunConfig::default()
    };
    let e = sum_pipeline().run(&config).expect_err("needs a registry");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("Registry::run"), "{e}");
}

#[test]
fn workers_that_die_before_connecting_are_reported_with_status_and_stderr() {
    let mut registry = Registry::new();
    let key = registry.register("sum", |n: u64| {
        Ok(Pipeline::builder("sum", "numbers", Numbers(1..n + 1)).collect("sum", Sum))
    });
    let config = RunConfig {
        mode: Mode::Multiprocess,
        workers: Some(2),
        worker_wait_timeout: Duration::from_millis(1500),
        // A "worker" that complains and exits: the coordinator's arguments
        // land in the script's positional parameters.
        worker_command: Some(WorkerCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo 'cannot load the model' >&2; exit 3".into(),
                "sh".into(),
            ],
        }),
        ..RunConfig::default()
    };
    let e = registry
        .run(&key, &1000, &config)
        .expect_err("no worker can join");
    let text = e.to_string();
    assert_eq!(e.kind(), ErrorKind::NoWorkers, "{text}");
    assert!(text.contains("exited with exit status: 3"), "{text}");
    assert!(text.contains("cannot load the model"), "{text}");
}

/// A source that blocks: `blocking_recv` on a tokio channel whose sender
/// lives on the caller's runtime.
struct Blocking(tokio::sync::mpsc::Receiver<Vec<u64>>);

impl Source for Blocking {
    type Out = Vec<u64>;
    fn next_batch(&mut self, _max: usize) -> Result<Option<Vec<u64>>, StageError> {
        Ok(self.0.blocking_recv())
    }
}

#[test]
fn a_source_that_blocks_on_a_channel_fed_by_the_callers_runtime_works_in_every_mode() {
    for config in configs() {
        let mode = config.mode;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = runtime.block_on(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            // The producer runs on this very thread, beside the run.
            let producer = tokio::spawn(async move {
                for start in (1..10_001u64).step_by(100) {
                    tx.send((start..start + 100).collect()).await.unwrap();
                }
            });
            let pipeline =
                Pipeline::builder("blocking", "channel", Blocking(rx)).collect("sum", Sum);
            let got = pipeline.execute(&config).await.unwrap().result;
            producer.await.unwrap();
            got
        });
        assert_eq!(got, TOTAL, "{mode:?}");
    }
}

#[test]
fn cancel_ends_a_run_whose_source_waits_forever() {
    for config in configs() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let cancel = config.cancel.clone();
        let started = std::time::Instant::now();
        let waiter = std::thread::spawn(move || {
            let pipeline = Pipeline::builder("stuck", "channel", Blocking(rx)).collect("sum", Sum);
            pipeline.run(&config)
        });
        // One batch goes through; then the source waits on a channel that
        // never sends again (its sender is kept alive below).
        tx.blocking_send(vec![1, 2, 3]).unwrap();
        cancel.cancel();
        let e = waiter.join().unwrap().expect_err("cancelled");
        assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(tx);
    }
}

/// Spins on every value: the one costly stage.
#[derive(Clone)]
struct Slow;

impl parpipe::Stage for Slow {
    type In = Vec<u64>;
    type Out = Vec<u64>;
    fn process(&mut self, b: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        Ok(b.into_iter()
            .map(|v| (0..2_000u64).fold(v, |a, i| std::hint::black_box(a ^ i) ^ i))
            .collect())
    }
}

#[test]
fn replicas_auto_measures_a_user_source_pulled_on_its_own_thread() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        println!("SKIPPED: one core: `auto` has no spare core to give");
        return;
    }
    let config = RunConfig {
        mode: Mode::Pipelined,
        batch_size: 100,
        replicas: parpipe::Replicas::Auto,
        ..RunConfig::default()
    };
    let done = Pipeline::builder("slow", "numbers", Numbers(1..10_001))
        .stage("slow", Slow)
        .collect("sum", Sum)
        .run(&config)
        .unwrap();
    assert_eq!(done.result, TOTAL);
    let slow = done
        .report
        .stages
        .iter()
        .find(|s| s.name == "slow")
        .expect("a slow row");
    assert!(
        slow.replicas >= 2,
        "the probe saw the source's batches and gave the slow stage the spare core: {:?}",
        done.report.stages
    );
}

/// A source that works hard for each batch (a hash chain per record).
struct Costly(std::ops::Range<u64>);

impl Source for Costly {
    type Out = Vec<u64>;
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<u64>>, StageError> {
        let batch: Vec<u64> = self
            .0
            .by_ref()
            .take(max)
            .inspect(|&n| {
                let mut h = n;
                for _ in 0..20_000 {
                    h = std::hint::black_box(h.rotate_left(5) ^ n);
                }
                std::hint::black_box(h);
            })
            .collect();
        Ok((!batch.is_empty()).then_some(batch))
    }
}

/// A cheap stage: adds one to every number.
#[derive(Clone)]
struct AddOne;

impl parpipe::Stage for AddOne {
    type In = Vec<u64>;
    type Out = Vec<u64>;
    fn process(&mut self, b: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        Ok(b.into_iter().map(|n| n + 1).collect())
    }
}

/// `auto` with a source costlier than the rest: no stage gets a spare core,
/// the cheap stages are packed onto the source's or the sink's thread
/// (fewer actors than parts), and the result and a row per stage are
/// those of serial mode.
#[test]
fn replicas_auto_packs_cheap_stages_with_serials_result_and_rows() {
    let run = |mode| {
        let config = RunConfig {
            mode,
            batch_size: 50,
            replicas: parpipe::Replicas::Auto,
            ..RunConfig::default()
        };
        Pipeline::builder("packed", "costly", Costly(1..2_001))
            .stage("first", AddOne)
            .stage("second", AddOne)
            .collect("sum", Sum)
            .run(&config)
            .unwrap()
    };
    let serial = run(Mode::Serial);
    let packed = run(Mode::Pipelined);
    assert_eq!(serial.result, 2_000 * 2_001 / 2 + 2 * 2_000);
    assert_eq!(packed.result, serial.result);
    // (The probe pulls smaller batches: batch counts differ, records not.)
    let rows = |done: &parpipe::Finished<u64>| -> Vec<(String, u64, usize)> {
        done.report
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.records_in, s.replicas))
            .collect()
    };
    assert_eq!(rows(&packed), rows(&serial), "{}", packed.report.to_table());
    assert!(packed.report.stages.iter().all(|s| s.batches > 0));
}
