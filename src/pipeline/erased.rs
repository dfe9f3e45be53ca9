//! The type-erased parts a [`Pipeline`](super::Pipeline) is made of: the
//! `Dyn*` traits the modes call and the boxes that implement them for user
//! types: stages, the aggregate and the sink here; the source side, and
//! what a source's pull can give ([`Pulled`]), in [`source`].

use crate::stage::{Aggregate, BatchInfo, Records, Sink, StageError};
use crate::Stage;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

mod source;
pub(crate) use source::*;

/// A batch payload or partial whose type was erased by the builder.
pub type AnyData = Box<dyn Any + Send>;

/// The bincode configuration used for everything parpipe serializes.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub(super) fn downcast<T: 'static>(data: AnyData, what: &str) -> T {
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

/// A stage with its type erased.
#[allow(dead_code)] // clone_box serves stage replicas in pipeline mode
pub(crate) trait DynStage: Send {
    fn process(&mut self, data: AnyData, info: &BatchInfo) -> Result<(AnyData, usize), StageError>;
    fn clone_box(&self) -> Box<dyn DynStage>;
    /// See [`Stage::uses_record_numbers`].
    fn uses_record_numbers(&self) -> bool;
}

pub(super) struct StageBox<S>(pub(super) S);

impl<S: Stage> DynStage for StageBox<S> {
    fn process(&mut self, data: AnyData, info: &BatchInfo) -> Result<(AnyData, usize), StageError> {
        let out = self.0.process(downcast::<S::In>(data, "a stage"), info)?;
        let n = out.record_count();
        Ok((Box::new(out), n))
    }

    fn clone_box(&self) -> Box<dyn DynStage> {
        Box::new(StageBox(self.0.clone()))
    }

    fn uses_record_numbers(&self) -> bool {
        self.0.uses_record_numbers()
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
    /// The length of [`encode`](Self::encode)'s bytes, counted without
    /// making them.
    fn encoded_len(&self, partial: &AnyData) -> Result<usize, String>;
    /// A copy of a partial (for snapshots).
    fn clone_partial(&self, partial: &AnyData) -> AnyData;
    /// Whether the partial is a `P`.
    fn partial_type(&self) -> std::any::TypeId;
    fn decode(&self, bytes: &[u8]) -> Result<AnyData, String>;
    fn clone_box(&self) -> Box<dyn DynAggregate>;
    /// See [`Aggregate::renumbers`].
    fn renumbers(&self) -> bool;
    /// See [`Aggregate::renumber`].
    fn renumber(&self, partial: &mut AnyData, records_before: u64) -> Result<(), StageError>;
    /// See [`Aggregate::seal`].
    fn seal(&mut self, partial: &mut AnyData);
    /// See [`Aggregate::check_chunk`].
    fn check_chunk(
        &self,
        partial: &AnyData,
        first_line: u64,
        records: u64,
    ) -> Result<(), StageError>;
}

impl dyn DynAggregate {
    /// Whether the partial is a `P`.
    pub(crate) fn partial_is<P: 'static>(&self) -> bool {
        self.partial_type() == std::any::TypeId::of::<P>()
    }
}

pub(super) struct AggregateBox<A>(pub(super) A);

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

    fn encoded_len(&self, partial: &AnyData) -> Result<usize, String> {
        let p = partial
            .downcast_ref::<A::Partial>()
            .ok_or("parpipe internal error: partial of the wrong type")?;
        let mut size = bincode::enc::write::SizeWriter::default();
        bincode::serde::encode_into_writer(p, &mut size, bincode_config())
            .map_err(|e| e.to_string())?;
        Ok(size.bytes_written)
    }

    fn decode(&self, bytes: &[u8]) -> Result<AnyData, String> {
        // Bytes from a worker: bounded decoding (see `protocol`).
        let p: A::Partial = crate::protocol::decode_whole(bytes, "partial")?;
        Ok(Box::new(p))
    }

    fn clone_box(&self) -> Box<dyn DynAggregate> {
        Box::new(AggregateBox(self.0.clone()))
    }

    fn renumbers(&self) -> bool {
        self.0.renumbers()
    }

    fn renumber(&self, partial: &mut AnyData, records_before: u64) -> Result<(), StageError> {
        let p = partial
            .downcast_mut::<A::Partial>()
            .ok_or_else(|| StageError::new("parpipe internal error: partial of the wrong type"))?;
        self.0.renumber(p, records_before)
    }

    fn check_chunk(
        &self,
        partial: &AnyData,
        first_line: u64,
        records: u64,
    ) -> Result<(), StageError> {
        let p = partial
            .downcast_ref::<A::Partial>()
            .ok_or_else(|| StageError::new("parpipe internal error: partial of the wrong type"))?;
        self.0.check_chunk(p, first_line, records)
    }

    fn seal(&mut self, partial: &mut AnyData) {
        if let Some(p) = partial.downcast_mut::<A::Partial>() {
            self.0.seal(p);
        }
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
/// [`Pipeline`](crate::Pipeline) and its erased sink, wherever a mode moved the sink to.
pub(crate) type OutputSlot = Arc<Mutex<Option<AnyData>>>;

pub(super) struct SinkBox<K> {
    pub(super) sink: K,
    pub(super) output: OutputSlot,
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

/// The sink of a pipeline built without one ([`PipelineBuilder::collect`](crate::PipelineBuilder::collect)):
/// the result is the aggregate's final partial.
pub(super) struct Keep<P>(pub(super) PhantomData<fn() -> P>);

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
