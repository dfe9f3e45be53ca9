//! The run's side of the reading lanes: the partial merged so far and
//! the run's rows. Each chunk's partial is renumbered and merged in input
//! order as the scheduler hands it out ([`Merge::merge`]); the lanes' own
//! partials, for a fold that commutes, once at the end
//! ([`Merge::merge_own`]).

use crate::error::RunError;
use crate::file_range::FileRange;
use crate::metrics::StageStats;
use crate::mode::chunked::{merge_in_order, ChunkError, ChunkRun};
use crate::mode::inline::run_sink_absorb;
use crate::mode::RunConfig;
use crate::pipeline::{AnyData, Pipeline};
use std::time::Instant;

/// The merged partial so far, and the run's rows.
pub(super) struct Merge {
    pub(super) acc: crate::pipeline::AnyData,
    /// Source, each stage, aggregate, sink.
    pub(super) stats: Vec<StageStats>,
    /// The records merged so far.
    merged_records: u64,
    /// One range of each input file read, to check at the end that none
    /// changed while the run read it.
    pub(super) files: Vec<FileRange>,
}

impl Merge {
    pub(super) fn new(pipeline: &Pipeline, lanes: usize) -> Self {
        let mut stats = pipeline.fresh_stats();
        let n = stats.len();
        // The lanes read (the source's row), run the stages and fold the
        // aggregate; merging and the sink are the run's thread's.
        for row in &mut stats[..n - 1] {
            row.replicas = lanes;
        }
        Merge {
            acc: pipeline.aggregate.part.empty(),
            stats,
            merged_records: 0,
            files: Vec::new(),
        }
    }

    /// Renumbers chunk `seq`'s partial after the records before it,
    /// merges it and lets the sink absorb the result.
    pub(super) fn merge(
        &mut self,
        pipeline: &mut Pipeline,
        config: &RunConfig,
        seq: u64,
        run: ChunkRun,
    ) -> Result<(), RunError> {
        let started = Instant::now();
        let aggregate = &pipeline.aggregate;
        let merged = merge_in_order(
            aggregate.part.as_ref(),
            &mut self.acc,
            run.acc,
            (run.records, true),
            &mut self.merged_records,
        );
        if let Err(error) = merged {
            return Err(RunError::Stage {
                stage: aggregate.name.clone(),
                batch: crate::BatchInfo {
                    seq,
                    first_line: self.merged_records.saturating_add(1),
                    records: run.records,
                },
                panicked: false,
                worker: None,
                error,
            });
        }
        config.progress.add_records(run.records);
        let n = self.stats.len();
        self.stats[0].records_out += run.records;
        for (row, part) in self.stats[1..n - 1].iter_mut().zip(&run.stats) {
            row.absorb(part);
        }
        self.stats[n - 2].busy += started.elapsed();
        run_sink_absorb(&mut pipeline.sink, &mut self.acc, &mut self.stats[n - 1])
    }

    /// Merges the lanes' own partials (a fold that commutes, see
    /// [`Lane::own`](super::Lane::own)), in whatever order, and lets the sink absorb them.
    pub(super) fn merge_own(
        &mut self,
        pipeline: &mut Pipeline,
        own: Vec<AnyData>,
    ) -> Result<(), RunError> {
        let mut own = own.into_iter();
        let Some(first) = own.next() else {
            return Ok(());
        };
        let started = Instant::now();
        let aggregate = &pipeline.aggregate;
        // Every chunk's partial was empty: the first lane's partial takes
        // the place of what was merged (which then merges into it at no
        // cost, where merging the lane's into it would rebuild it).
        let merged = std::mem::replace(&mut self.acc, first);
        for partial in std::iter::once(merged).chain(own) {
            aggregate
                .part
                .try_merge(&mut self.acc, partial)
                .map_err(|error| RunError::Stage {
                    stage: aggregate.name.clone(),
                    batch: crate::BatchInfo {
                        seq: 0,
                        first_line: 1,
                        records: self.merged_records,
                    },
                    panicked: false,
                    worker: None,
                    error: crate::StageError::with_source("a lane's partial does not merge", error),
                })?;
        }
        let n = self.stats.len();
        self.stats[n - 2].busy += started.elapsed();
        run_sink_absorb(&mut pipeline.sink, &mut self.acc, &mut self.stats[n - 1])
    }

    /// The error of the next chunk to merge (every chunk before it is
    /// merged): a stage's failure moved to its place in the input, a
    /// problem with the chunk's bytes as the source's.
    pub(super) fn located(&self, e: ChunkError, source: &str) -> RunError {
        match e {
            ChunkError::Run(RunError::Stage {
                stage,
                mut batch,
                panicked,
                worker,
                error,
            }) => {
                batch.first_line = batch.first_line.saturating_add(self.merged_records);
                RunError::Stage {
                    stage,
                    batch,
                    panicked,
                    worker,
                    error,
                }
            }
            ChunkError::Run(e) => e,
            ChunkError::Chunk(text) => RunError::Source {
                source_name: source.to_string(),
                error: crate::StageError::new(text),
            },
            ChunkError::Unreadable(e) => RunError::Source {
                source_name: source.to_string(),
                error: crate::StageError::new(format!("cannot read the chunk: {e}")),
            },
        }
    }
}
