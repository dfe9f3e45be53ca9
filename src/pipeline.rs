//! Pipeline definitions: the typed [`PipelineBuilder`] that checks at compile
//! time that each stage accepts what the previous one produces and the
//! type-erased [`Pipeline`] the execution modes run. The erased parts live
//! in `erased`, the [`Registry`] of named pipelines in `registry`.

mod erased;
mod records;
mod registry;

pub use erased::AnyData;
pub(crate) use erased::DynChunkDecoder;
pub(crate) use erased::*;
use records::Chain;
pub(crate) use records::{ChainState, DynFused, DECODER};
pub use registry::{JobSpec, Key, Registry};

use crate::stage::{Aggregate, ChunkSource, FileChunkSource, Records, Sink, Source};
use crate::Stage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A complete pipeline, ready to run in any mode; `O` is what a run gives
/// back (the sink's [`Output`](Sink::Output), or the aggregate's result when
/// built with [`collect`](PipelineBuilder::collect)). A [`Registry`] builds
/// pipelines whose output type is erased to [`AnyData`].
///
/// Build one with [`Pipeline::builder`].
pub struct Pipeline<O = AnyData> {
    pub(crate) name: String,
    pub(crate) source: Named<Box<dyn DynSource>>,
    pub(crate) stages: Vec<Named<Box<dyn DynStage>>>,
    pub(crate) aggregate: Named<Box<dyn DynAggregate>>,
    pub(crate) sink: Named<Box<dyn DynSink>>,
    /// The record stages and fold composed into one chain, when every
    /// stage is a record stage and the aggregate a fold (see `records`).
    pub(crate) fused: Option<Box<dyn DynFused>>,
    pub(crate) output: OutputSlot,
    pub(crate) _out: PhantomData<fn() -> O>,
}

impl<O: Send + 'static> Pipeline<O> {
    /// The same pipeline with its output type erased (what a [`Registry`]
    /// holds).
    pub fn erase(self) -> Pipeline {
        Pipeline {
            name: self.name,
            source: self.source,
            stages: self.stages,
            aggregate: self.aggregate,
            sink: self.sink,
            fused: self.fused,
            output: self.output,
            _out: PhantomData,
        }
    }
}

impl Pipeline {
    /// Starts a pipeline called `name` that reads from `source`. In
    /// multiprocess mode its batches cross to workers in bincode.
    pub fn builder<S>(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: S,
    ) -> PipelineBuilder<S::Out>
    where
        S: Source,
        S::Out: Serialize + DeserializeOwned,
    {
        builder_from(name, source_name, Box::new(Bincode(source)))
    }

    /// Starts a pipeline whose source chooses its own wire form for
    /// multiprocess mode (see [`ChunkSource`]).
    pub fn builder_chunked<S: ChunkSource>(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: S,
    ) -> PipelineBuilder<S::Out> {
        Self::start_builder(name, source_name, source, None)
    }

    /// Starts a pipeline whose source can also give its chunks as byte
    /// ranges of files, read by local workers themselves (see
    /// [`FileChunkSource`]).
    pub fn builder_files<S: FileChunkSource>(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: S,
    ) -> PipelineBuilder<S::Out> {
        Self::start_builder(name, source_name, source, Some(FileFns::of()))
    }

    fn start_builder<S: ChunkSource>(
        name: impl Into<String>,
        source_name: impl Into<String>,
        source: S,
        files: Option<FileFns<S>>,
    ) -> PipelineBuilder<S::Out> {
        builder_from(name, source_name, Box::new(SourceBox { source, files }))
    }
}

/// A builder whose source is already erased (of batches of type `T`).
pub(crate) fn builder_from<T>(
    name: impl Into<String>,
    source_name: impl Into<String>,
    source: Box<dyn DynSource>,
) -> PipelineBuilder<T> {
    PipelineBuilder {
        name: name.into(),
        source: Named {
            name: source_name.into(),
            part: source,
        },
        stages: Vec::new(),
        chain: Chain::new(),
        _out: PhantomData,
    }
}

impl<O> Pipeline<O> {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Zeroed stats, one row per part (source, stages, aggregate, sink), in order.
    pub(crate) fn fresh_stats(&self) -> Vec<crate::metrics::StageStats> {
        use crate::metrics::{StageKind, StageStats};
        let mut stats = vec![StageStats::new(&self.source.name, StageKind::Source)];
        stats.extend(
            self.stages
                .iter()
                .map(|s| StageStats::new(&s.name, StageKind::Stage)),
        );
        stats.push(StageStats::new(&self.aggregate.name, StageKind::Aggregate));
        stats.push(StageStats::new(&self.sink.name, StageKind::Sink));
        stats
    }

    /// Names of the source, each stage, the aggregate and the sink, in order.
    pub fn part_names(&self) -> Vec<String> {
        let mut names = vec![self.source.name.clone()];
        names.extend(self.stages.iter().map(|s| s.name.clone()));
        names.push(self.aggregate.name.clone());
        names.push(self.sink.name.clone());
        names
    }
}

/// Builds a [`Pipeline`]; `T` is the batch type produced so far.
pub struct PipelineBuilder<T> {
    name: String,
    source: Named<Box<dyn DynSource>>,
    stages: Vec<Named<Box<dyn DynStage>>>,
    /// The record stages composed so far (see `records`).
    chain: Chain,
    _out: PhantomData<fn() -> T>,
}

impl<T: Records> PipelineBuilder<T> {
    /// Appends a stage that takes the current batch type.
    pub fn stage<S: Stage<In = T>>(
        mut self,
        name: impl Into<String>,
        stage: S,
    ) -> PipelineBuilder<S::Out> {
        self.stages.push(Named {
            name: name.into(),
            part: Box::new(StageBox(stage)),
        });
        PipelineBuilder {
            name: self.name,
            source: self.source,
            stages: self.stages,
            chain: Chain::broken(),
            _out: PhantomData,
        }
    }

    /// Ends the stages with an aggregate and a sink for its result; a run
    /// gives back what the sink's [`finish`](Sink::finish) returns.
    pub fn aggregate<A, K>(
        self,
        aggregate_name: impl Into<String>,
        aggregate: A,
        sink_name: impl Into<String>,
        sink: K,
    ) -> Pipeline<K::Output>
    where
        A: Aggregate<In = T>,
        K: Sink<Partial = A::Partial>,
    {
        let output = OutputSlot::default();
        Pipeline {
            name: self.name,
            source: self.source,
            stages: self.stages,
            aggregate: Named {
                name: aggregate_name.into(),
                part: Box::new(AggregateBox(aggregate)),
            },
            sink: Named {
                name: sink_name.into(),
                part: Box::new(SinkBox {
                    sink,
                    output: output.clone(),
                }),
            },
            fused: None,
            output,
            _out: PhantomData,
        }
    }

    /// Ends the stages with an aggregate and no sink: a run gives back the
    /// aggregate's final result.
    pub fn collect<A>(self, aggregate_name: impl Into<String>, aggregate: A) -> Pipeline<A::Partial>
    where
        A: Aggregate<In = T>,
    {
        self.aggregate(aggregate_name, aggregate, "result", Keep(PhantomData))
    }
}
