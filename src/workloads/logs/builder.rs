//! The `logs` pipeline as a builder that users add stages to: a filter or
//! validator after `parse` ([`LogsBuilder::after_parse`], on
//! [`ParsedBatch`]es), an enricher before `metrics`
//! ([`LogsBuilder::before_metrics`], on [`EnrichedBatch`]es). Records a
//! stage removes (with [`ParsedBatch::retain`] / [`EnrichedBatch::retain`])
//! count in `summary.json` as `dropped`, so `lines = parsed + rejected` and
//! `parsed = kept + dropped` hold. The result runs in every mode; workers
//! get the same stages when the application registers the same builder.
//!
//! A stage before `metrics` can also attach fields to records
//! ([`EnrichedBatch::tag`]: a country from a GeoIP-style range table, a
//! team from a path prefix), and [`LogsBuilder::dimension`] declares a
//! field the summary counts by: `summary.json` then has a `dimensions` key
//! with, per declared name, the `--top` most frequent values and their
//! hits, bytes, 4xx and 5xx (docs/logs-workload.md §4b), and
//! `report.html` a "Custom dimensions" section. `examples/geoip_country.rs`
//! does it in every mode, workers included.
//!
//! ```
//! use parpipe::workloads::logs::{self, stages::ParsedBatch, LogsInput, LogsParams};
//! use parpipe::{BatchInfo, Mode, RunConfig, Stage, StageError};
//!
//! /// Drops GET requests.
//! #[derive(Clone)]
//! struct NoGets;
//! impl Stage for NoGets {
//!     type In = ParsedBatch;
//!     type Out = ParsedBatch;
//!     fn process(&mut self, mut b: ParsedBatch, _: &BatchInfo) -> Result<ParsedBatch, StageError> {
//!         b.retain(|b, r| b.bytes(r.method) != b"GET");
//!         Ok(b)
//!     }
//! }
//!
//! let out = std::env::temp_dir().join(format!("parpipe-doc-{}", std::process::id()));
//! let params = LogsParams {
//!     input: LogsInput::Generate { records: 2_000, seed: 1 },
//!     out_dir: out.clone(),
//!     emit_records: false,
//!     snapshot: None,
//!     max_batch_delay_ms: 200,
//!     format: Default::default(),
//!     max_rejected_ppm: 900_000,
//!     dimensions: Default::default(),
//! };
//! let config = RunConfig { mode: Mode::Pipelined, ..RunConfig::default() };
//! logs::builder().after_parse("no-gets", NoGets).build(params).run(&config)?;
//! let summary: serde_json::Value =
//!     serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
//! assert!(summary["dropped"].as_u64().unwrap() > 0);
//! assert_eq!(summary["lines"], summary["parsed"].as_u64().unwrap() + summary["rejected"].as_u64().unwrap());
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok::<(), parpipe::Error>(())
//! ```

use super::metrics::{LogsMetrics, LogsPartial, SummaryView};
use super::stages::{Enrich, EnrichedBatch, Parse, ParsedBatch};
use super::{source, Dimensions, LogsInput, LogsParams, NAME};
use crate::pipeline::{Pipeline, PipelineBuilder};
use crate::sources::{BatchPool, LineBatch, Lines};
use crate::stage::Stage;

/// Adds one user stage to a typed builder: the stages of any type the user
/// gives, kept until the pipeline is built, through the public
/// [`PipelineBuilder::stage`] alone.
type AddStage<T> = Box<dyn FnOnce(PipelineBuilder<T>) -> PipelineBuilder<T> + Send>;

/// The `logs` pipeline with stages of the user's (see the module docs).
#[derive(Default)]
pub struct LogsBuilder {
    /// Where [`build`](Self::build)'s sink sets the traffic so far.
    live: Option<crate::live::LiveBoard>,
    after_parse: Vec<AddStage<ParsedBatch>>,
    before_metrics: Vec<AddStage<EnrichedBatch>>,
    pool: Option<BatchPool>,
    format: super::format::LogFormat,
    dimensions: Dimensions,
    /// Field names counted per value ([`dimension`](Self::dimension)).
    custom: Vec<String>,
}

/// A builder of the built-in `logs` pipeline, with no extra stage yet.
pub fn builder() -> LogsBuilder {
    LogsBuilder::default()
}

impl LogsBuilder {
    /// Adds a stage right after `parse` (stages run in the order added).
    pub fn after_parse<S>(mut self, name: impl Into<String>, stage: S) -> Self
    where
        S: Stage<In = ParsedBatch, Out = ParsedBatch>,
    {
        let name = name.into();
        self.after_parse
            .push(Box::new(move |b| b.stage(name, stage)));
        self
    }

    /// Adds a stage right before `metrics`, after `enrich`.
    pub fn before_metrics<S>(mut self, name: impl Into<String>, stage: S) -> Self
    where
        S: Stage<In = EnrichedBatch, Out = EnrichedBatch>,
    {
        let name = name.into();
        self.before_metrics
            .push(Box::new(move |b| b.stage(name, stage)));
        self
    }

    /// Counts `summary.json`'s records per value of the field `name` that
    /// a stage attaches ([`EnrichedBatch::tag`]): hits, bytes, 4xx and 5xx
    /// per value, the `--top` most frequent, under `dimensions.NAME`.
    /// Records without the field are not counted there. Declaring a name
    /// twice counts it once; the registered builder a worker rebuilds must
    /// declare the same names (it does when it is the same code).
    ///
    /// ```
    /// use parpipe::workloads::logs::{self, stages::EnrichedBatch, LogsInput};
    /// use parpipe::{BatchInfo, Mode, RunConfig, Stage, StageError};
    ///
    /// /// Tags each record with the first segment of its path.
    /// #[derive(Clone)]
    /// struct Section;
    /// impl Stage for Section {
    ///     type In = EnrichedBatch;
    ///     type Out = EnrichedBatch;
    ///     fn process(&mut self, mut b: EnrichedBatch, _: &BatchInfo) -> Result<EnrichedBatch, StageError> {
    ///         for at in 0..b.parsed.records.len() {
    ///             let path = b.parsed.bytes(b.parsed.records[at].path);
    ///             let section = if path.starts_with(b"/api/") { "api" } else { "site" };
    ///             b.tag(at, "section", section);
    ///         }
    ///         Ok(b)
    ///     }
    /// }
    ///
    /// let config = RunConfig { mode: Mode::Pipelined, ..RunConfig::default() };
    /// let done = logs::builder()
    ///     .before_metrics("section", Section)
    ///     .dimension("section")
    ///     .build_collect(LogsInput::Generate { records: 2_000, seed: 1 })
    ///     .run(&config)?;
    /// let summary = done.result.summary();
    /// let rows = &summary.dimensions.as_ref().unwrap()["section"];
    /// let hits: u64 = rows.iter().map(|r| r.hits).sum();
    /// assert_eq!(hits, summary.parsed - summary.dropped);
    /// assert!(rows.iter().any(|r| r.value == "api"));
    /// # Ok::<(), parpipe::Error>(())
    /// ```
    pub fn dimension(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.custom.contains(&name) {
            self.custom.push(name);
        }
        self
    }

    /// Sets the run's traffic so far on `board` (the dashboard's traffic
    /// panels) from [`build`](Self::build)'s sink; see
    /// [`LiveBoard::set_traffic`](crate::live::LiveBoard::set_traffic).
    pub fn with_live(mut self, board: crate::live::LiveBoard) -> Self {
        self.live = Some(board);
        self
    }

    /// Where `metrics` gives line buffers back once counted: a caller that
    /// pushes batches takes them from the same pool
    /// (`BatchPool::batch`), so that their buffers stay warm instead of
    /// being faulted in afresh for every batch. [`build_collect`](Self::build_collect)'s
    /// source fills its batches from it too.
    pub fn with_pool(mut self, pool: BatchPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Reads lines of `format` (default: `combined`); [`build`](Self::build)
    /// takes it from the parameters instead.
    pub fn with_format(mut self, format: super::format::LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Counts with these `--top`, `--tz` and `--client-from` settings
    /// (default: 10, UTC, the remote address); [`build`](Self::build)
    /// takes them from the parameters instead.
    pub fn with_dimensions(mut self, dimensions: Dimensions) -> Self {
        self.dimensions = dimensions;
        self
    }

    /// The aggregate, with the builder's summary settings.
    fn metrics(&self, emit_records: bool, pool: BatchPool) -> LogsMetrics {
        LogsMetrics {
            emit_records,
            pool,
            view: SummaryView {
                top: self.dimensions.top,
                time_zone: super::zone::Zone::parse(&self.dimensions.time_zone)
                    .map_or_else(|_| self.dimensions.time_zone.clone(), |z| z.label()),
            },
            dimensions: self.custom.clone(),
        }
    }

    /// The stages from `parse` to `metrics` on a builder of line batches.
    fn middle(self, start: PipelineBuilder<LineBatch>) -> PipelineBuilder<EnrichedBatch> {
        let parse = Parse::new(self.format).with_client_from(self.dimensions.client_from);
        let mut parsed = start.stage("parse", parse);
        for add in self.after_parse {
            parsed = add(parsed);
        }
        let enrich = Enrich::in_zone(&self.dimensions.time_zone);
        let mut enriched = parsed.stage("enrich", enrich);
        for add in self.before_metrics {
            enriched = add(enriched);
        }
        enriched
    }

    /// The pipeline reading `params.input` and writing `summary.json` (and
    /// with `emit_records`, `records.jsonl` and `rejects.txt`) to
    /// `params.out_dir`, as `parpipe run --workload logs` does.
    pub fn build(mut self, params: LogsParams) -> Pipeline<()> {
        self.format = params.format.clone();
        self.dimensions = params.dimensions.clone();
        // The aggregate hands line buffers back to the source (see `pool`).
        let pool = BatchPool::new();
        let live = self.live.take();
        let delay = std::time::Duration::from_millis(params.max_batch_delay_ms);
        let start = start(params.input, &pool, delay);
        let metrics = self.metrics(params.emit_records, pool);
        self.middle(start).aggregate(
            "metrics",
            metrics,
            "write",
            super::sink::LogsSink::new(params.out_dir, params.emit_records)
                .with_snapshots(params.snapshot)
                .with_live(live)
                .with_reject_check(super::rejection::RejectCheck {
                    format: params.format,
                    max_ppm: params.max_rejected_ppm,
                }),
        )
    }

    /// The pipeline reading `input` with no sink: a run gives back the
    /// [`LogsPartial`] (its [`summary`](LogsPartial::summary) is what
    /// `summary.json` would hold).
    pub fn build_collect(mut self, input: LogsInput) -> Pipeline<LogsPartial> {
        let pool = self.pool.take().unwrap_or_default();
        let start = start(input, &pool, Lines::DEFAULT_BATCH_DELAY);
        let metrics = self.metrics(false, pool);
        self.middle(start).collect("metrics", metrics)
    }

    /// The pipeline fed by pushed [`LineBatch`]es (see
    /// [`Pipeline::start`]); its result and its snapshots are the
    /// [`LogsPartial`], whose [`summary`](LogsPartial::summary) is what
    /// `summary.json` holds. Lines are numbered across batches in push order.
    pub fn build_pushed(mut self) -> Pipeline<LogsPartial> {
        let pool = self.pool.take().unwrap_or_default();
        let metrics = self.metrics(false, pool);
        self.middle(Pipeline::input::<LineBatch>(NAME, "pushed"))
            .collect("metrics", metrics)
    }
}

/// The start of a `logs` pipeline on `input`: the generator, or the files
/// read through [`Lines`] — the same reader, line
/// numbering and cutting by byte ranges as any pipeline over `Lines` —
/// with batch buffers from `pool` (which the aggregate hands them back to)
/// and, for standard input and followed files, `batch_delay`.
fn start(
    input: LogsInput,
    pool: &BatchPool,
    batch_delay: std::time::Duration,
) -> PipelineBuilder<LineBatch> {
    match input {
        LogsInput::Generate { records, seed } => Pipeline::builder_chunked(
            NAME,
            "generate",
            source::Generated::new(seed, records, pool.clone()),
        ),
        LogsInput::Files(inputs) => Pipeline::builder_files(
            NAME,
            "read",
            Lines::new(inputs)
                .with_pool(pool.clone())
                .with_batch_delay(batch_delay),
        ),
    }
}
