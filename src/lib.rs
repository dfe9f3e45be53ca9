//! parpipe: pipeline-parallel data processing.
//!
//! One pipeline definition (source → stages → aggregate → sink) runs in
//! three modes with identical results: `serial`, `pipeline` and
//! `multiprocess` (see [`Mode`]).
//!
//! Module map:
//! - [`stage`]: the traits user code implements ([`Source`], [`Stage`],
//!   [`Aggregate`], [`Sink`]) and [`BatchInfo`].
//! - [`pipeline`]: the typed builder, the erased [`Pipeline`], the [`Registry`].
//! - [`mode`]: [`Mode`], [`RunConfig`], [`run`]/[`execute`] and each mode's actors.
//! - [`metrics`]: per-stage stats, process sampling, [`RunReport`].
//! - [`error`]: the one error type of every mode, [`Error`], and [`ErrorKind`].
//! - [`protocol`]: the multiprocess wire: frames, messages, handshake.
//! - [`file_range`]: chunks given as byte ranges of files, for workers on
//!   the coordinator's machine.
//! - [`worker`]: the worker entry point ([`worker::run_worker`]) for any program.
//! - [`workloads`]: the built-in `logs` (and `matrix`) workloads.
//! - [`allocator`]: opt-in glibc allocator tuning for batch-sized buffers.
//! - [`mod@bench`]: `parpipe bench` (plan, runner, baselines, table, chart).
//! - [`progress`]: the terminal progress bar of a run.
#![deny(missing_docs)]

pub mod allocator;
pub mod bench;
pub mod error;
pub mod file_range;
pub mod metrics;
pub mod mode;
pub mod pipeline;
pub mod progress;
pub mod protocol;
mod run;
pub mod stage;
pub mod worker;
pub mod workloads;

pub use error::{Error, ErrorKind};
pub use metrics::RunReport;
pub use mode::{execute, run, Cancel, Mode, Replicas, RunConfig, WorkerCommand};
pub use pipeline::{AnyData, JobSpec, Key, Pipeline, PipelineBuilder, Registry};
pub use run::Finished;
pub use stage::{
    Aggregate, BatchInfo, ChunkSource, FileChunkSource, Records, Sink, Source, Stage, StageError,
};
