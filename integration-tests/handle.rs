//! The long-lived handle in serial and pipeline mode, in-process:
//! read-your-writes snapshots, backpressure (`try_push` says Full, memory
//! bounded), a stage error reaching the caller, abort and drop stopping the
//! run (the sink aborts), and every runtime it can be started from.
//! Multiprocess mode is covered through the examples (workers must be the
//! same program).

use parpipe::{
    Aggregate, BatchInfo, ErrorKind, Mode, Pipeline, PushError, Replicas, RunConfig, Sink, Stage,
    StageError,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

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

/// Doubles every value; fails on a value of `fail_on`; waits while the gate is shut.
#[derive(Clone)]
struct Double {
    fail_on: Option<u64>,
    gate: Arc<(Mutex<bool>, Condvar)>,
    seen: Arc<AtomicU64>,
}

impl Double {
    fn new() -> Self {
        Double {
            fail_on: None,
            gate: Arc::new((Mutex::new(true), Condvar::new())),
            seen: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Stage for Double {
    type In = Vec<u64>;
    type Out = Vec<u64>;
    fn process(&mut self, b: Vec<u64>, _: &BatchInfo) -> Result<Vec<u64>, StageError> {
        let (open, cv) = &*self.gate;
        let mut g = open.lock().unwrap();
        while !*g {
            g = cv.wait(g).unwrap();
        }
        drop(g);
        self.seen.fetch_add(1, Ordering::SeqCst);
        if let Some(bad) = self.fail_on {
            if b.contains(&bad) {
                return Err(StageError::new(format!("{bad} is bad")));
            }
        }
        Ok(b.into_iter().map(|v| v * 2).collect())
    }
}

/// Raised (and signalled) when the sink aborts.
#[derive(Default)]
struct Aborted {
    raised: AtomicBool,
    signal: tokio::sync::Notify,
}

impl Aborted {
    fn load(&self, order: Ordering) -> bool {
        self.raised.load(order)
    }
}

/// Writes nothing; says whether it finished or aborted.
struct Flag {
    aborted: Arc<Aborted>,
}

impl Sink for Flag {
    type Partial = u64;
    type Output = u64;
    fn finish(&mut self, total: u64) -> Result<u64, StageError> {
        Ok(total)
    }
    fn abort(&mut self) {
        self.aborted.raised.store(true, Ordering::SeqCst);
        self.aborted.signal.notify_one();
    }
}

fn configs() -> Vec<RunConfig> {
    let base = RunConfig {
        queue_depth: 2,
        ..RunConfig::default()
    };
    vec![
        RunConfig {
            mode: Mode::Serial,
            ..base.clone()
        },
        RunConfig {
            mode: Mode::Pipelined,
            ..base.clone()
        },
        RunConfig {
            mode: Mode::Pipelined,
            replicas: Replicas::parse_one("double=3").unwrap(),
            ..base.clone()
        },
        RunConfig {
            mode: Mode::Pipelined,
            replicas: Replicas::Auto,
            ..base
        },
    ]
}

fn pipeline(stage: Double, aborted: Arc<Aborted>) -> Pipeline<u64> {
    Pipeline::input::<Vec<u64>>("double", "pushed")
        .stage("double", stage)
        .aggregate("sum", Sum, "flag", Flag { aborted })
}

#[tokio::test]
async fn snapshots_read_their_writes_and_finish_gives_the_total() {
    for config in configs() {
        let aborted = Arc::new(Aborted::default());
        let run = pipeline(Double::new(), aborted.clone())
            .start::<Vec<u64>, u64>(&config)
            .unwrap();
        let mut expected = 0;
        for i in 0..200u64 {
            let batch: Vec<u64> = (i * 10..i * 10 + 10).collect();
            expected += 2 * batch.iter().sum::<u64>();
            run.push(batch).await.unwrap();
            if i % 17 == 0 {
                assert_eq!(run.snapshot().await.unwrap(), expected, "{:?}", config.mode);
            }
        }
        assert_eq!(run.stats().batches_pushed, 200);
        let clone = run.clone();
        let done = run.finish().await.unwrap();
        assert_eq!(done.result, expected);
        assert_eq!(done.report.stages[0].records_out, 2000);
        assert!(!aborted.load(Ordering::SeqCst));
        assert!(matches!(
            clone.push(vec![1]).await,
            Err(PushError::Closed(_))
        ));
    }
}

#[tokio::test]
async fn a_full_pipeline_says_full_and_holds_a_bounded_number_of_batches() {
    for config in configs() {
        let stage = Double::new();
        *stage.gate.0.lock().unwrap() = false;
        let aborted = Arc::new(Aborted::default());
        let run = pipeline(stage.clone(), aborted)
            .start::<Vec<u64>, u64>(&config)
            .unwrap();
        let mut accepted = 0u64;
        let mut fulls = 0;
        // The stage holds its first batch; the rest fills the credits and the feed.
        while fulls < 50 && accepted < 1000 {
            match run.try_push(vec![1]) {
                Ok(()) => accepted += 1,
                Err(PushError::Full(_)) => {
                    fulls += 1;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Feed (2) + credits per stage and replica + the one being processed.
        assert!(
            accepted <= 16,
            "{:?}: {accepted} batches accepted",
            config.mode
        );
        assert!(fulls >= 50);
        {
            let (open, cv) = &*stage.gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        // Open again: `push` waits for room and gets through.
        for _ in 0..100 {
            run.push(vec![1]).await.unwrap();
            accepted += 1;
        }
        assert_eq!(run.finish().await.unwrap().result, 2 * accepted);
    }
}

#[tokio::test]
async fn a_stage_error_reaches_the_caller_on_the_next_call() {
    for config in configs() {
        let mut stage = Double::new();
        stage.fail_on = Some(7);
        let aborted = Arc::new(Aborted::default());
        let run = pipeline(stage, aborted.clone())
            .start::<Vec<u64>, u64>(&config)
            .unwrap();
        run.push(vec![1, 2]).await.unwrap();
        run.push(vec![7]).await.unwrap();
        // The error shows on a snapshot (the batch before it is folded or
        // the run has already failed), then on every push.
        let error = loop {
            match run.push(vec![3]).await {
                Ok(()) => {
                    if let Err(e) = run.snapshot().await {
                        break e;
                    }
                }
                Err(PushError::Failed(_, e)) => break e,
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(error.kind(), ErrorKind::Stage, "{error}");
        assert_eq!(error.stage(), Some("double"));
        assert_eq!(error.batch().map(|b| b.seq), Some(1));
        let finished = run.finish().await.expect_err("the run failed");
        assert_eq!(finished.kind(), ErrorKind::Stage);
        assert!(aborted.load(Ordering::SeqCst), "the sink was not aborted");
    }
}

#[tokio::test]
async fn abort_and_drop_stop_the_run_and_abort_the_sink() {
    for config in configs() {
        for abort in [true, false] {
            let aborted = Arc::new(Aborted::default());
            let stage = Double::new();
            let run = pipeline(stage.clone(), aborted.clone())
                .start::<Vec<u64>, u64>(&config)
                .unwrap();
            run.push(vec![1]).await.unwrap();
            if abort {
                run.abort();
                let e = run.finish().await.expect_err("aborted");
                assert!(e.is_interrupted(), "{e}");
            } else {
                drop(run);
            }
            // Dropped: the sink's abort is what there is to await.
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                aborted.signal.notified(),
            )
            .await
            .expect("the sink never aborted");
            assert!(
                aborted.load(Ordering::SeqCst),
                "{:?} abort {abort}",
                config.mode
            );
        }
    }
}

/// The same pipeline from an actix System, from a multi-thread tokio
/// runtime and from a plain thread (blocking `run` on the pull side).
#[test]
fn every_runtime_can_start_and_finish_it() {
    let config = RunConfig {
        mode: Mode::Pipelined,
        ..RunConfig::default()
    };
    let work = |config: RunConfig| async move {
        let aborted = Arc::new(Aborted::default());
        let run = pipeline(Double::new(), aborted)
            .start::<Vec<u64>, u64>(&config)
            .unwrap();
        run.push(vec![1, 2, 3]).await.unwrap();
        run.finish().await.unwrap().result
    };
    let on_actix = actix::System::new().block_on(work(config.clone()));
    let on_tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work(config.clone()));
    let on_current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work(config));
    assert_eq!((on_actix, on_tokio, on_current), (12, 12, 12));
}

/// Sums, and keeps each batch's sum to emit.
#[derive(Clone)]
struct SumsPerBatch;

impl Aggregate for SumsPerBatch {
    type In = Vec<u64>;
    type Partial = (u64, Vec<u64>);
    fn empty(&self) -> (u64, Vec<u64>) {
        (0, Vec::new())
    }
    fn add(
        &mut self,
        acc: &mut (u64, Vec<u64>),
        b: Vec<u64>,
        _: &BatchInfo,
    ) -> Result<(), StageError> {
        let sum: u64 = b.iter().sum();
        acc.0 += sum;
        acc.1.push(sum);
        Ok(())
    }
    fn merge(&self, acc: &mut (u64, Vec<u64>), later: (u64, Vec<u64>)) {
        acc.0 += later.0;
        acc.1.extend(later.1);
    }
}

#[tokio::test]
async fn outputs_come_one_per_push_in_order_and_a_reader_behind_holds_pushes_back() {
    use futures_util::StreamExt;
    for config in configs() {
        let what = format!("{:?} {:?}", config.mode, config.replicas);
        let (run, mut outputs) = Pipeline::input::<Vec<u64>>("sums", "pushed")
            .stage("double", Double::new())
            .collect("sums", SumsPerBatch)
            .emit(|acc: &mut (u64, Vec<u64>)| std::mem::take(&mut acc.1))
            .start_with_outputs::<Vec<u64>, (u64, Vec<u64>), u64>(&config)
            .unwrap();
        // Nobody reads yet: pushes stop being taken once a few batches'
        // outputs wait (the pipeline holds a few more in flight).
        let mut pushed = 0u64;
        loop {
            match run.try_push(vec![pushed, 1]) {
                Ok(()) => pushed += 1,
                Err(PushError::Full(_)) => {
                    // Full for now; outputs may still be on their way.
                    let more = tokio::time::timeout(std::time::Duration::from_millis(200), async {
                        run.push(vec![pushed, 1]).await
                    })
                    .await;
                    match more {
                        Ok(Ok(())) => pushed += 1,
                        Ok(Err(e)) => panic!("{what}: {e}"),
                        Err(_) => break,
                    }
                }
                Err(e) => panic!("{what}: {e}"),
            }
            assert!(pushed < 1_000, "{what}: pushes never held back");
        }
        // Reading lets the rest through; each output answers its push.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(batch) = outputs.next().await {
                got.push(batch);
            }
            got
        });
        for i in pushed..pushed + 100 {
            run.push(vec![i, 1]).await.unwrap();
        }
        let total = pushed + 100;
        let done = run.finish().await.unwrap();
        let got = reader.await.unwrap();
        let want: Vec<Vec<u64>> = (0..total).map(|i| vec![2 * (i + 1)]).collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(done.result.0, want.iter().flatten().sum::<u64>(), "{what}");
        assert!(done.result.1.is_empty(), "{what}: every sum was taken out");
        println!("{what}: {pushed} pushes went in before the unread outputs held them back");
    }
}

#[test]
fn outputs_of_a_pipeline_that_emits_another_type_are_a_config_error() {
    let e = Pipeline::input::<Vec<u64>>("sums", "pushed")
        .collect("sums", SumsPerBatch)
        .emit(|acc: &mut (u64, Vec<u64>)| std::mem::take(&mut acc.1))
        .start_with_outputs::<Vec<u64>, (u64, Vec<u64>), String>(&RunConfig::default())
        .expect_err("the items are u64");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("emits no items of type"), "{e}");
}
