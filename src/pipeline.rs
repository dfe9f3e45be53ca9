//! Pipeline definitions: the typed [`PipelineBuilder`] that checks at compile
//! time that each stage accepts what the previous one produces, the
//! type-erased [`Pipeline`] the execution modes run, and the [`Registry`] of
//! named pipelines that lets a worker process rebuild the coordinator's
//! pipeline from a name and serialized parameters.

use crate::error::{Error, RunError};
use crate::file_range::FileRange;
use crate::stage::{
    Aggregate, BatchInfo, ChunkSource, FileChunkSource, Records, Sink, Source, StageError,
};
use crate::Stage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// A batch payload or partial whose type was erased by the builder.
pub type AnyData = Box<dyn Any + Send>;

/// The bincode configuration used for everything parpipe serializes.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn downcast<T: 'static>(data: AnyData, what: &str) -> T {
    match data.downcast::<T>() {
        Ok(b) => *b,
        // The builder guarantees the types line up; reaching this is a bug in parpipe.
        Err(_) => panic!("parpipe internal error: {what} got a batch of the wrong type"),
    }
}

/// A future that completes when a waiting source may have input again.
pub(crate) type Wake = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A request for a copy of the aggregate of every batch the source gave
/// before it, merged in input order.
pub(crate) struct SnapshotReq(pub(crate) tokio::sync::oneshot::Sender<AnyData>);

impl SnapshotReq {
    /// Answers with a copy of `acc`.
    pub(crate) fn answer(self, aggregate: &dyn DynAggregate, acc: &AnyData) {
        let _ = self.0.send(aggregate.clone_partial(acc));
    }
}

/// What an erased source gave when asked for its next batch (or chunk).
pub(crate) enum Pulled<T> {
    /// Input, and its record count.
    Data(T, usize),
    /// The input is exhausted.
    End,
    /// Nothing yet: ask again once this completes. The engine never blocks
    /// on a source.
    Pending(Wake),
    /// A snapshot request, in input order: answer it once every batch
    /// before it is folded in.
    Snapshot(SnapshotReq),
    /// The feeding handle was dropped without finishing: stop, abort the sink.
    Cancelled,
}

impl<T> Pulled<T> {
    /// The same, with the data mapped.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Pulled<U> {
        match self {
            Pulled::Data(t, n) => Pulled::Data(f(t), n),
            Pulled::End => Pulled::End,
            Pulled::Pending(w) => Pulled::Pending(w),
            Pulled::Snapshot(r) => Pulled::Snapshot(r),
            Pulled::Cancelled => Pulled::Cancelled,
        }
    }
}

/// A source with its type erased.
pub(crate) trait DynSource: Send {
    fn next_batch(&mut self, max: usize) -> Result<Pulled<AnyData>, StageError>;
    fn size_hint(&self) -> Option<u64>;
    /// See [`ChunkSource::remaining_estimate`](crate::ChunkSource::remaining_estimate).
    fn remaining_estimate(&self) -> Option<u64>;
    /// See [`ChunkSource::next_chunk`](crate::ChunkSource::next_chunk).
    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError>;
    /// See [`ChunkSource::decode_chunk`](crate::ChunkSource::decode_chunk); also returns the record count.
    fn decode_chunk(&self, bytes: &[u8], info: &BatchInfo) -> Result<(AnyData, usize), String>;
    /// See [`ChunkSource::split_chunk`](crate::ChunkSource::split_chunk).
    fn split_chunk(
        &self,
        bytes: &[u8],
        records: usize,
        max: usize,
        parts: &mut Vec<(usize, usize)>,
    );
    /// See [`FileChunkSource::chunks_in_files`](crate::FileChunkSource::chunks_in_files).
    fn chunks_in_files(&mut self) -> bool;
    /// See [`FileChunkSource::next_chunk_ranges`](crate::FileChunkSource::next_chunk_ranges).
    fn next_chunk_ranges(
        &mut self,
        max: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError>;
    /// See [`Source::may_wait`](crate::Source::may_wait).
    fn may_wait(&self) -> bool {
        false
    }
    /// Hands a pushed-input source its feed (see `handle`); false for any
    /// other source.
    fn attach_feed(&mut self, feed: &dyn Any) -> bool {
        let _ = feed;
        false
    }
}

/// A pulled `Option` as a [`Pulled`].
pub(crate) fn pulled<T>(got: Option<(T, usize)>) -> Pulled<T> {
    match got {
        Some((t, n)) => Pulled::Data(t, n),
        None => Pulled::End,
    }
}

/// A plain [`Source`] dressed as a [`ChunkSource`]: its batches cross to
/// workers in bincode ([`encode_batch`](crate::stage::encode_batch)).
struct Bincode<S>(S);

impl<S> Source for Bincode<S>
where
    S: Source,
    S::Out: Serialize + DeserializeOwned,
{
    type Out = S::Out;

    fn next_batch(&mut self, max: usize) -> Result<Option<S::Out>, StageError> {
        self.0.next_batch(max)
    }

    fn size_hint(&self) -> Option<u64> {
        self.0.size_hint()
    }

    fn may_wait(&self) -> bool {
        self.0.may_wait()
    }
}

impl<S> ChunkSource for Bincode<S>
where
    S: Source,
    S::Out: Serialize + DeserializeOwned,
{
    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Option<usize>, StageError> {
        let Some(batch) = self.0.next_batch(max)? else {
            return Ok(None);
        };
        crate::stage::encode_batch(&batch, out)?;
        Ok(Some(batch.record_count()))
    }

    fn decode_chunk(&self, bytes: &[u8], _info: &BatchInfo) -> Result<S::Out, StageError> {
        crate::stage::decode_batch(bytes)
    }
}

/// A [`ChunkSource`] erased; `files` is its [`FileChunkSource`] side, when
/// the builder was given one.
struct SourceBox<S> {
    source: S,
    files: Option<FileFns<S>>,
}

/// The [`FileChunkSource`] methods of `S`, captured where `S` is known to
/// have them.
struct FileFns<S> {
    chunks_in_files: fn(&mut S) -> bool,
    next_chunk_ranges: RangesFn<S>,
}

type RangesFn<S> = fn(&mut S, usize, &mut Vec<FileRange>) -> Result<Option<usize>, StageError>;

impl<S: FileChunkSource> FileFns<S> {
    fn of() -> Self {
        FileFns {
            chunks_in_files: S::chunks_in_files,
            next_chunk_ranges: S::next_chunk_ranges,
        }
    }
}

impl<S: ChunkSource> DynSource for SourceBox<S> {
    fn next_batch(&mut self, max: usize) -> Result<Pulled<AnyData>, StageError> {
        Ok(pulled(self.source.next_batch(max)?.map(|b| {
            let n = b.record_count();
            (Box::new(b) as AnyData, n)
        })))
    }

    fn size_hint(&self) -> Option<u64> {
        self.source.size_hint()
    }

    fn may_wait(&self) -> bool {
        self.source.may_wait()
    }

    fn remaining_estimate(&self) -> Option<u64> {
        self.source.remaining_estimate()
    }

    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        Ok(pulled(self.source.next_chunk(max, out)?.map(|n| ((), n))))
    }

    fn decode_chunk(&self, bytes: &[u8], info: &BatchInfo) -> Result<(AnyData, usize), String> {
        let batch = self
            .source
            .decode_chunk(bytes, info)
            .map_err(|e| e.to_string())?;
        let n = batch.record_count();
        Ok((Box::new(batch), n))
    }

    fn split_chunk(
        &self,
        bytes: &[u8],
        records: usize,
        max: usize,
        parts: &mut Vec<(usize, usize)>,
    ) {
        self.source.split_chunk(bytes, records, max, parts)
    }

    fn chunks_in_files(&mut self) -> bool {
        match &self.files {
            Some(f) => (f.chunks_in_files)(&mut self.source),
            None => false,
        }
    }

    fn next_chunk_ranges(
        &mut self,
        max: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        match &self.files {
            Some(f) => (f.next_chunk_ranges)(&mut self.source, max, out),
            None => Err(StageError::new(
                "this source cannot give chunks as file ranges",
            )),
        }
    }
}

/// `stage`, erased (for builders that keep stages of several types).
pub(crate) fn erase_stage<S: Stage>(stage: S) -> Box<dyn DynStage> {
    Box::new(StageBox(stage))
}

/// A stage with its type erased.
#[allow(dead_code)] // clone_box serves stage replicas in pipeline mode
pub(crate) trait DynStage: Send {
    fn process(&mut self, data: AnyData, info: &BatchInfo) -> Result<(AnyData, usize), StageError>;
    fn clone_box(&self) -> Box<dyn DynStage>;
}

struct StageBox<S>(S);

impl<S: Stage> DynStage for StageBox<S> {
    fn process(&mut self, data: AnyData, info: &BatchInfo) -> Result<(AnyData, usize), StageError> {
        let out = self.0.process(downcast::<S::In>(data, "a stage"), info)?;
        let n = out.record_count();
        Ok((Box::new(out), n))
    }

    fn clone_box(&self) -> Box<dyn DynStage> {
        Box::new(StageBox(self.0.clone()))
    }
}

/// An aggregate with its type erased.
#[allow(dead_code)] // merge/encode/decode serve the multiprocess mode
pub(crate) trait DynAggregate: Send {
    fn empty(&self) -> AnyData;
    fn add(&mut self, acc: &mut AnyData, data: AnyData, info: &BatchInfo)
        -> Result<(), StageError>;
    fn merge(&self, acc: &mut AnyData, later: AnyData);
    /// See [`Aggregate::try_merge`].
    fn try_merge(&self, acc: &mut AnyData, later: AnyData) -> Result<(), StageError>;
    fn encode(&self, partial: &AnyData) -> Result<Vec<u8>, String>;
    /// A copy of a partial (for snapshots).
    fn clone_partial(&self, partial: &AnyData) -> AnyData;
    /// Whether the partial is a `P`.
    fn partial_type(&self) -> std::any::TypeId;
    fn decode(&self, bytes: &[u8]) -> Result<AnyData, String>;
    fn clone_box(&self) -> Box<dyn DynAggregate>;
}

impl dyn DynAggregate {
    /// Whether the partial is a `P`.
    pub(crate) fn partial_is<P: 'static>(&self) -> bool {
        self.partial_type() == std::any::TypeId::of::<P>()
    }
}

struct AggregateBox<A>(A);

impl<A: Aggregate> DynAggregate for AggregateBox<A> {
    fn empty(&self) -> AnyData {
        Box::new(self.0.empty())
    }

    fn add(
        &mut self,
        acc: &mut AnyData,
        data: AnyData,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        let acc = acc
            .downcast_mut::<A::Partial>()
            .expect("parpipe internal error: aggregate partial of the wrong type");
        self.0
            .add(acc, downcast::<A::In>(data, "the aggregate"), info)
    }

    fn merge(&self, acc: &mut AnyData, later: AnyData) {
        let acc = acc
            .downcast_mut::<A::Partial>()
            .expect("parpipe internal error: aggregate partial of the wrong type");
        self.0.merge(acc, downcast::<A::Partial>(later, "merge"));
    }

    fn partial_type(&self) -> std::any::TypeId {
        std::any::TypeId::of::<A::Partial>()
    }

    fn clone_partial(&self, partial: &AnyData) -> AnyData {
        let p = partial
            .downcast_ref::<A::Partial>()
            .expect("parpipe internal error: partial of the wrong type");
        Box::new(p.clone())
    }

    fn try_merge(&self, acc: &mut AnyData, later: AnyData) -> Result<(), StageError> {
        let acc = acc
            .downcast_mut::<A::Partial>()
            .expect("parpipe internal error: aggregate partial of the wrong type");
        self.0
            .try_merge(acc, downcast::<A::Partial>(later, "merge"))
    }

    fn encode(&self, partial: &AnyData) -> Result<Vec<u8>, String> {
        let p = partial
            .downcast_ref::<A::Partial>()
            .ok_or("parpipe internal error: partial of the wrong type")?;
        bincode::serde::encode_to_vec(p, bincode_config()).map_err(|e| e.to_string())
    }

    fn decode(&self, bytes: &[u8]) -> Result<AnyData, String> {
        // Bytes from a worker: bounded decoding (see `protocol`).
        let p: A::Partial = crate::protocol::decode_whole(bytes, "partial")?;
        Ok(Box::new(p))
    }

    fn clone_box(&self) -> Box<dyn DynAggregate> {
        Box::new(AggregateBox(self.0.clone()))
    }
}

/// A sink with its type erased.
pub(crate) trait DynSink: Send {
    fn absorb(&mut self, acc: &mut AnyData) -> Result<(), StageError>;
    fn finish(&mut self, result: AnyData) -> Result<(), StageError>;
    fn abort(&mut self);
    /// Gives a sink that emits per-batch outputs (see `emit`) the port of
    /// its stream; false for any other sink.
    fn attach_outputs(&mut self, port: &dyn Any) -> bool {
        let _ = port;
        false
    }
}

/// Where a pipeline's sink leaves its output for the caller: shared by the
/// [`Pipeline`] and its erased sink, wherever a mode moved the sink to.
pub(crate) type OutputSlot = Arc<Mutex<Option<AnyData>>>;

struct SinkBox<K> {
    sink: K,
    output: OutputSlot,
}

impl<K: Sink> DynSink for SinkBox<K> {
    fn absorb(&mut self, acc: &mut AnyData) -> Result<(), StageError> {
        let acc = acc
            .downcast_mut::<K::Partial>()
            .expect("parpipe internal error: sink got a partial of the wrong type");
        self.sink.absorb(acc)
    }

    fn finish(&mut self, result: AnyData) -> Result<(), StageError> {
        let out = self
            .sink
            .finish(downcast::<K::Partial>(result, "the sink"))?;
        *self.output.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(out));
        Ok(())
    }

    fn abort(&mut self) {
        self.sink.abort()
    }
}

/// The sink of a pipeline built without one ([`PipelineBuilder::collect`]):
/// the result is the aggregate's final partial.
struct Keep<P>(PhantomData<fn() -> P>);

impl<P: Send + 'static> Sink for Keep<P> {
    type Partial = P;
    type Output = P;

    fn finish(&mut self, result: P) -> Result<P, StageError> {
        Ok(result)
    }
}

/// A named part of a pipeline.
pub(crate) struct Named<T> {
    pub(crate) name: String,
    pub(crate) part: T,
}

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
        Self::start_builder(name, source_name, Bincode(source), None)
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
            _out: PhantomData,
        }
    }

    /// Appends an erased stage that takes and gives the current batch type.
    pub(crate) fn stage_erased(mut self, name: String, stage: Box<dyn DynStage>) -> Self {
        self.stages.push(Named { name, part: stage });
        self
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

/// A pipeline to run, named by its registry name plus serialized parameters.
/// This is what crosses the wire to worker processes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// The registered pipeline name.
    pub pipeline: String,
    /// The parameters, bincode-encoded.
    pub params: Vec<u8>,
}

impl JobSpec {
    /// A job for pipeline `name` with typed parameters.
    pub fn new<P: Serialize>(name: impl Into<String>, params: &P) -> Result<Self, Error> {
        let params = bincode::serde::encode_to_vec(params, bincode_config())
            .map_err(|e| RunError::Build(format!("cannot encode parameters: {e}")))?;
        Ok(JobSpec {
            pipeline: name.into(),
            params,
        })
    }
}

/// The typed name of a registered pipeline: its parameters `P` and its
/// output `O` (from [`Registry::register`]), so that a run cannot name a
/// pipeline that is not there or pass it the wrong parameters.
pub struct Key<P, O> {
    name: String,
    _types: PhantomData<fn(P) -> O>,
}

impl<P, O> Clone for Key<P, O> {
    fn clone(&self) -> Self {
        Key {
            name: self.name.clone(),
            _types: PhantomData,
        }
    }
}

impl<P, O> std::fmt::Debug for Key<P, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", self.name)
    }
}

impl<P: Serialize, O> Key<P, O> {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job that runs this pipeline with `params` (what workers receive).
    pub fn job(&self, params: &P) -> Result<JobSpec, Error> {
        JobSpec::new(self.name.clone(), params)
    }
}

type BuildFn = dyn Fn(&[u8]) -> Result<Pipeline, RunError> + Send + Sync;

/// Named pipelines that this program knows how to build.
///
/// The coordinator and every worker must register the same names: a worker
/// receives only the name and the parameters, and rebuilds the pipeline.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, Arc<BuildFn>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `build` under `name`; its parameters are decoded from the
    /// job. The key it returns runs the pipeline with typed parameters and
    /// gives back its typed output ([`Registry::run`]).
    pub fn register<P, O, F>(&mut self, name: impl Into<String>, build: F) -> Key<P, O>
    where
        P: DeserializeOwned + 'static,
        O: Send + 'static,
        F: Fn(P) -> Result<Pipeline<O>, StageError> + Send + Sync + 'static,
    {
        let name = name.into();
        let label = name.clone();
        let key_name = name.clone();
        self.entries.insert(
            name,
            Arc::new(move |bytes: &[u8]| {
                // Bytes from the coordinator: bounded decoding (see `protocol`).
                let params: P =
                    crate::protocol::decode_whole(bytes, "parameters").map_err(|e| {
                        RunError::Build(format!("pipeline '{label}': bad parameters: {e}"))
                    })?;
                build(params)
                    .map(Pipeline::erase)
                    .map_err(|e| RunError::Build(format!("pipeline '{label}': {e}")))
            }),
        );
        Key {
            name: key_name,
            _types: PhantomData,
        }
    }

    /// Builds the pipeline a job names.
    pub fn build(&self, job: &JobSpec) -> Result<Pipeline, Error> {
        let build = self
            .entries
            .get(&job.pipeline)
            .ok_or_else(|| RunError::UnknownPipeline(job.pipeline.clone()))?;
        Ok(build(&job.params)?)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}
