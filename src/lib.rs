//! parpipe: pipeline-parallel data processing.
//!
//! One pipeline definition (source → stages → aggregate → sink) runs in
//! three modes with identical results (see [`Mode`]): `serial` (one actor
//! runs everything inline), `pipeline` (an actor per stage, bounded by
//! credits) and `multiprocess` (chunks fanned out to worker processes).
//!
//! # Run a pipeline and get its result
//!
//! A [`Source`] needs one method; an [`Aggregate`] folds batches into a
//! partial result whose [`merge`](Aggregate::merge) must be associative
//! (chunking differs by mode). [`PipelineBuilder::collect`] ends the
//! pipeline without a sink: the run gives back the aggregate's result.
//! Serial and pipeline mode need nothing else:
//!
//! ```
//! use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, Source, Stage, StageError};
//!
//! /// Prices in cents, `n` of them.
//! struct Prices { next: i64, n: i64 }
//! impl Source for Prices {
//!     type Out = Vec<i64>;
//!     fn next_batch(&mut self, max: usize) -> Result<Option<Vec<i64>>, StageError> {
//!         let end = (self.next + max as i64).min(self.n);
//!         let batch: Vec<i64> = (self.next..end).map(|i| 100 + i % 7).collect();
//!         self.next = end;
//!         Ok((!batch.is_empty()).then_some(batch))
//!     }
//! }
//!
//! /// Adds 20 % tax, rounded down to a cent.
//! #[derive(Clone)]
//! struct Tax;
//! impl Stage for Tax {
//!     type In = Vec<i64>;
//!     type Out = Vec<i64>;
//!     fn process(&mut self, b: Vec<i64>, _: &BatchInfo) -> Result<Vec<i64>, StageError> {
//!         Ok(b.into_iter().map(|c| c * 6 / 5).collect())
//!     }
//! }
//!
//! /// Integer cents: associative, so every mode agrees.
//! #[derive(Clone)]
//! struct Total;
//! impl Aggregate for Total {
//!     type In = Vec<i64>;
//!     type Partial = i64;
//!     fn empty(&self) -> i64 { 0 }
//!     fn add(&mut self, acc: &mut i64, b: Vec<i64>, _: &BatchInfo) -> Result<(), StageError> {
//!         *acc += b.iter().sum::<i64>();
//!         Ok(())
//!     }
//!     fn merge(&self, acc: &mut i64, later: i64) { *acc += later; }
//! }
//!
//! let mut totals = Vec::new();
//! for mode in [Mode::Serial, Mode::Pipelined] {
//!     let config = RunConfig { mode, batch_size: 64, ..RunConfig::default() };
//!     let done = Pipeline::builder("tax", "prices", Prices { next: 0, n: 10_000 })
//!         .stage("tax", Tax)
//!         .collect("total", Total)
//!         .run(&config)?;
//!     totals.push(done.result);
//! }
//! assert_eq!(totals[0], totals[1]);
//! # Ok::<(), parpipe::Error>(())
//! ```
//!
//! # A long-lived pipeline: push, snapshot, finish
//!
//! [`Pipeline::input`] starts a pipeline whose batches the caller pushes;
//! [`Pipeline::start`] (or [`Registry::start`], in any mode) returns a
//! cloneable [`RunHandle`] handle. [`RunHandle::push`] waits while the pipeline is full
//! (the stages' credits reach the caller: memory stays bounded),
//! [`RunHandle::try_push`] says [`PushError::Full`], [`RunHandle::snapshot`] gives the
//! aggregate of everything pushed before it without stopping anything,
//! [`RunHandle::feed`] pushes an async stream in batches (a partial batch leaves
//! after a delay), and [`RunHandle::finish`] gives the result and the report. A
//! stage error comes back on the next call; dropping every handle stops
//! the run and aborts the sink.
//!
//! ```
//! use parpipe::{Aggregate, BatchInfo, Mode, Pipeline, RunConfig, StageError};
//! use std::time::Duration;
//!
//! #[derive(Clone)]
//! struct Count;
//! impl Aggregate for Count {
//!     type In = Vec<String>;
//!     type Partial = u64;
//!     fn empty(&self) -> u64 { 0 }
//!     fn add(&mut self, acc: &mut u64, b: Vec<String>, _: &BatchInfo) -> Result<(), StageError> {
//!         *acc += b.len() as u64;
//!         Ok(())
//!     }
//!     fn merge(&self, acc: &mut u64, later: u64) { *acc += later; }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = RunConfig { mode: Mode::Pipelined, queue_depth: 2, ..RunConfig::default() };
//! let run = Pipeline::input::<Vec<String>>("events", "pushed")
//!     .collect("count", Count)
//!     .start::<Vec<String>, u64>(&config)?;
//! run.push(vec!["a".into(), "b".into()]).await.unwrap();
//! assert_eq!(run.snapshot().await?, 2);
//! // Any stream: here 1 000 events, in batches of at most 64.
//! let events = futures_util::stream::iter((0..1000).map(|i| format!("event {i}")));
//! run.feed(events, 64, Duration::from_millis(50), |batch| batch).await.unwrap();
//! let done = run.finish().await?;
//! assert_eq!(done.result, 1002);
//! # Ok::<(), parpipe::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Per-batch outputs, live reports, async and blocking sources
//!
//! - [`Pipeline::emit`] names what each batch puts out (taken from the
//!   running partial after the batch is folded in, in input order), and
//!   [`Pipeline::start_with_outputs`] (or [`Registry::start_with_outputs`])
//!   returns, beside the handle, an [`BatchOutputs`] stream with one `Vec` per
//!   batch: the n-th answers the n-th push. A push waits while the stream's
//!   reader lags, so memory stays bounded. `Pipeline::emit` has a runnable
//!   example; `examples/stream_from_channel.rs` acknowledges every batch.
//! - [`RunHandle::live`] is the run's report so far (per stage records, busy,
//!   idle and blocked time; per worker rows), refreshed about every 250 ms.
//! - [`StreamSource`] makes a source of any `futures` `Stream`: a batch
//!   leaves when full or `max_batch_delay` after its first item.
//! - A source may block (`blocking_recv`, a read from a pipe): sources
//!   that may wait ([`Source::may_wait`], the default) are pulled on a
//!   thread of their own, so no engine ever waits inside one — a
//!   coordinator keeps answering its workers and a [`Cancel`] ends the run
//!   at once. `parpipe run --input -` reads standard input that way; its
//!   batches leave 200 ms after their first line.
//!
//! # Extending the built-in `logs` pipeline
//!
//! [`workloads::logs::builder()`] is the `logs` pipeline as a builder: add a
//! filter after `parse` or an enricher before `metrics`; records a stage
//! removes count as `dropped` in the summary. Its module docs have a
//! runnable example; `examples/custom_stage.rs` runs one in every mode.
//!
//! # Multiprocess mode: a registry and a worker dispatch
//!
//! Closures cannot cross processes, so workers are the same program: the
//! pipeline is registered under a name ([`Registry::register`] returns a
//! typed [`Key`]), the coordinator sends the name and the parameters, and
//! `main` hands the process to [`worker::run_worker`] when it was started
//! as a worker (`PROGRAM worker --connect ADDR …`, see [`WorkerCommand`]).
//! [`worker::dispatch_if_worker`] is that dispatch in one line, whatever
//! `main` looks like. `examples/embedded_wordcount.rs` is a complete
//! program.
//!
//! **When multiprocess pays.** The coordinator ships every record to a
//! worker: a plain [`Source`]'s batches go in bincode (measured first, then
//! written once into the frame), and the worker decodes them again. That
//! costs per record about what a light stage does (on 2 M short sentences:
//! 0.07 s of encoding on the coordinator, plus decoding in the workers,
//! against 0.38 s of tokenizing), so multiprocess mode pays when the work
//! per record is well above the cost of shipping it, or the input is
//! already where the workers are. A source can ship cheaper bytes by
//! implementing [`ChunkSource`] (the `logs` reader ships raw text and lets
//! workers cut lines) or [`FileChunkSource`] (workers on the machine read
//! byte ranges of the files themselves; with
//! [`cuts_by_bytes`](FileChunkSource::cuts_by_bytes), an aggregate that
//! [`renumbers`](Aggregate::renumbers) and stages that do not
//! [use record numbers](Stage::uses_record_numbers), the coordinator never
//! reads the input and pipeline mode reads it in parallel lanes).
//! `examples/byte_ranges.rs` is such a source, written on this API alone.
//!
//! # Errors
//!
//! Every mode fails with the same [`Error`]: match on [`Error::kind`]
//! ([`ErrorKind`] is `#[non_exhaustive]`), ask [`Error::stage`],
//! [`Error::batch`], [`Error::worker`]; a [`StageError`] from user code
//! keeps its source error.
//!
//! # Runtimes
//!
//! [`Pipeline::execute`] and [`execute`] run on the caller's actix
//! `System` (an actix or actix-web `main`); from `#[tokio::main]` or
//! another executor they run on a `System` thread of their own.
//! [`Pipeline::run`] and [`run()`] block; from a thread that drives an async
//! runtime they run on a thread of their own instead of panicking.
//!
//! # Features
//!
//! - `cli` (the only default): the `parpipe` binary, `parpipe bench`, the
//!   progress bar (clap, anyhow, indicatif, plotters, tracing-subscriber,
//!   rayon), all private but for `parpipe::cli_main` (the whole program);
//!   it enables `dashboard`, as `parpipe run --dashboard` serves it.
//! - `dashboard`: the live dashboard server (`parpipe::live::Dashboard`,
//!   behind [`RunConfig::dashboard`]); the live status board itself is
//!   always there.
//! - `mimalloc`: mimalloc as the global allocator of the `parpipe` binary
//!   and the examples (the library never sets one).
//! - `internals`: for parpipe's own tests and benches only, no stability
//!   promise: the multiprocess wire as a public `protocol` module and the
//!   `logs` workload's internals as public modules.
//!
//! An application that embeds pipelines depends on
//! `parpipe = { version = "0.1", default-features = false }` (adding
//! `features = ["dashboard"]` for the dashboard).
//!
//! # Modules
//!
//! - [`stage`]: the traits user code implements ([`Source`],
//!   [`ChunkSource`], [`FileChunkSource`], [`Stage`], [`Aggregate`],
//!   [`Sink`]) and [`BatchInfo`].
//! - [`pipeline`]: the typed builder, the erased [`Pipeline`], the
//!   [`Registry`] and its [`Key`]s.
//! - [`metrics`]: per-stage stats, process sampling, [`RunReport`].
//! - [`error`]: [`Error`] and [`ErrorKind`].
//! - [`sources`]: ready-made sources ([`sources::Lines`], [`sources::Csv`],
//!   [`sources::JsonLines`]), cut by byte ranges over plain files.
//! - [`file_range`]: chunks given as byte ranges of files.
//! - [`worker`]: the worker entry point for any program.
//! - [`live`]: the live view of a run: status board, dashboard server, Prometheus metrics.
//! - [`workloads`]: the built-in `logs` (and `matrix`) workloads.
//! - [`allocator`]: opt-in glibc allocator tuning for batch-sized buffers.
//! - [`outputs`]: output files written whole or not at all; stale temporaries.
#![deny(missing_docs)]

// `parpipe::…` names this crate from inside it too: the command line
// (`src/command_line.rs`, a private module here) is written as any program using the
// library would write it.
extern crate self as parpipe;

/// Declares modules that are parpipe's own machinery: public only with the
/// `internals` feature (parpipe's own tests and benches), private to the
/// crate otherwise.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $name;
    )*};
}

pub mod allocator;
#[cfg(feature = "cli")]
mod bench;
#[cfg(feature = "cli")]
mod command_line;
mod detached;
mod emit;
pub mod error;
pub mod file_range;
mod handle;
pub mod live;
pub mod metrics;
mod mode;
pub mod outputs;
pub mod pipeline;
pub mod plan;
#[cfg(feature = "cli")]
mod progress;
#[cfg(feature = "internals")]
pub mod protocol;
// Without `internals`, the parts only parpipe's own wire tests use are idle.
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
mod protocol;
mod run;
pub mod sources;
pub mod stage;
mod stream_source;
pub mod worker;
pub mod workloads;

#[cfg(feature = "cli")]
pub use command_line::main as cli_main;
pub use emit::BatchOutputs;
pub use error::{Error, ErrorKind};
pub use handle::{LiveStats, PushError, RunHandle, RunHandleWithOutputs};
pub use metrics::RunReport;
pub use mode::{execute, run, Cancel, Mode, Replicas, RunConfig, WorkerCommand};
pub use pipeline::{AnyData, JobSpec, Key, Pipeline, PipelineBuilder, Registry};
pub use protocol::{Token, DEFAULT_MAX_FRAME, MAX_WORKER_THREADS, TOKEN_ENV};
pub use run::Finished;
pub use stage::{
    Aggregate, BatchInfo, ChunkDecoder, ChunkSource, FileChunkSource, Fold, Records, Sink, Source,
    Stage, StageError,
};
pub use stream_source::StreamSource;
