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
            mode: Mode::Pipeline,
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
