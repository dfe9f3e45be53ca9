//! What the plan is decided from: what a pipeline says about itself before
//! it runs ([`PipelineFacts`], asked without reading or committing its
//! source), and what this process may use ([`Machine`]).

use crate::mode::{Mode, Replicas, RunConfig};
use crate::pipeline::Pipeline;
use serde::{Deserialize, Serialize};

/// What a pipeline says about itself before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PipelineFacts {
    /// The source's estimate of the records it holds, when it gives one
    /// (plain files: from their sizes; standard input, gzip: unknown; not
    /// asked in serial mode).
    pub records: Option<u64>,
    /// The source may wait for input from outside (standard input, a
    /// followed file, a socket): its size says nothing, and it is pulled
    /// on a thread of its own.
    pub may_wait: bool,
    /// The source can give its chunks as byte ranges of plain files, which
    /// a reader opens itself (asked only where the plan uses it).
    pub in_files: bool,
    /// The source can decode a chunk of its text anywhere (a worker, a
    /// reading lane), block by block as it is read.
    pub decodes_chunks: bool,
    /// The aggregate can move a partial's record numbers and no stage reads
    /// where its batch sits: a chunk's records need not be counted before
    /// it is read.
    pub renumbers: bool,
    /// Transforming stages between the source and the aggregate.
    pub stages: usize,
    /// The pipeline was built from a registered job, so worker processes
    /// can rebuild it.
    pub registered: bool,
    /// The most records a batch of the source holds when asked for the
    /// run's batch size, when the source caps it below that (a source of
    /// large records caps its batches by bytes, see
    /// [`ParsedLines::with_batch_bytes`](crate::sources::ParsedLines::with_batch_bytes));
    /// `None` when it makes batches of the size asked for. Asked of the
    /// source's chunk decoder, which sizes batches as the source does.
    #[serde(default)]
    pub batch_records: Option<usize>,
    /// Every stage is a record stage and the aggregate a fold
    /// ([`PipelineBuilder::map`](crate::PipelineBuilder::map),
    /// [`fold`](crate::PipelineBuilder::fold)), and the source's decoder
    /// makes records one at a time ([`ChunkDecoder::decode_each`](crate::ChunkDecoder::decode_each)):
    /// the pipeline can run record by record, with no batch between its
    /// parts.
    #[serde(default)]
    pub record_chain: bool,
    /// The pipeline's fold says its merge commutes
    /// ([`Fold::commutes`](crate::Fold::commutes)).
    #[serde(default)]
    pub fold_commutes: bool,
}

impl PipelineFacts {
    /// Asks `pipeline` what a run in `mode` needs to know (nothing
    /// committed); `registered` says whether it was built from a job its
    /// workers can rebuild. Whether the source is in plain files is a look
    /// at them (a file's first and last bytes: gzip, a `/proc` file), so it
    /// is asked only where the plan uses it: in multiprocess mode, and in
    /// pipeline mode unless `--replicas STAGE=N` fixed the stage actors
    /// (reading lanes). Serial mode looks at nothing: it reads its input
    /// once, as the run. Facts not asked are `None` or false; the
    /// source's batch cap is no I/O and is asked in every mode.
    pub fn of(pipeline: &Pipeline, config: &RunConfig, registered: bool) -> Self {
        let source = &pipeline.source.part;
        let mode = config.mode;
        let ranges = mode == Mode::Multiprocess
            || (mode == Mode::Pipelined && !matches!(config.replicas, Replicas::Fixed(_)));
        let batch_size = config.batch_size.max(1);
        let batch_records = source
            .chunk_decoder()
            .map(|d| d.batch_records(batch_size))
            .filter(|&n| n < batch_size);
        PipelineFacts {
            records: (mode != Mode::Serial)
                .then(|| source.remaining_estimate())
                .flatten(),
            may_wait: source.may_wait(),
            in_files: ranges && source.would_chunk_in_files(),
            decodes_chunks: ranges && source.chunk_decoder().is_some(),
            renumbers: pipeline.aggregate.part.renumbers()
                && pipeline
                    .stages
                    .iter()
                    .all(|s| !s.part.uses_record_numbers()),
            stages: pipeline.stages.len(),
            registered,
            batch_records,
            record_chain: record_chain(pipeline),
            fold_commutes: pipeline.fused.as_ref().is_some_and(|f| f.commutes()),
        }
    }

    /// Reading lanes can serve the pipeline: ranges of plain files, decoded
    /// in each lane, partials renumbered at the merge.
    pub fn lanes_can_read(&self) -> bool {
        self.in_files && self.decodes_chunks && self.renumbers
    }

    /// Why reading lanes cannot serve the pipeline, for the plan's reason.
    pub(crate) fn why_no_lanes(&self) -> &'static str {
        if !self.in_files {
            "the input is not plain files that can be cut by bytes"
        } else if !self.decodes_chunks {
            "the source cannot decode a chunk apart from itself"
        } else {
            "a stage reads record numbers, or the aggregate cannot renumber its partials"
        }
    }

    /// Why the coordinator ships the chunks.
    pub(crate) fn why_shipped(&self) -> &'static str {
        if self.may_wait {
            "the source waits for its input: standard input, a followed file, a socket"
        } else {
            "the input is not plain files that workers can read by byte ranges (gzip, \
             generated, or a source that cannot cut by bytes)"
        }
    }
}

/// What this process may use, measured when the run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Cores this process may use: the operating system's count, lowered
    /// by the CPU affinity mask and a cgroup CPU quota
    /// ([`std::thread::available_parallelism`]).
    pub cores: usize,
}

impl Machine {
    /// This machine, as this process sees it now.
    pub fn detect() -> Self {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// See [`PipelineFacts::record_chain`]: asked of a copy of the chain, on
/// no bytes.
fn record_chain(pipeline: &Pipeline) -> bool {
    let (Some(fused), Some(decoder)) = (&pipeline.fused, pipeline.source.part.chunk_decoder())
    else {
        return false;
    };
    let chain = crate::mode::fused::Chain {
        fused: &mut fused.clone_box(),
        stages: &pipeline.stages,
        aggregate: &pipeline.aggregate,
    };
    crate::mode::fused::decodes_each(chain, decoder.as_ref())
}
