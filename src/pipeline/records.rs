//! Record stages: [`PipelineBuilder::map`], [`filter_map`](PipelineBuilder::filter_map),
//! [`try_filter_map`](PipelineBuilder::try_filter_map) and [`fold`](PipelineBuilder::fold).
//!
//! Each record stage is also an ordinary batch [`Stage`] (and the fold an
//! [`Aggregate`]), so it runs wherever batches do. When every stage of a
//! pipeline is a record stage and it ends in a fold, the builder also
//! composes them, typed, into one chain ([`DynFused`]) that the engine runs
//! on a chunk's bytes: the source's decoder makes one record, the chain
//! takes it through every stage into the fold, and only then is the next
//! record made ([`ChunkDecoder::decode_each`]). No batch of records lives
//! between the parts, so the allocator reuses one record's memory for the
//! next, as in a plain loop (docs/performance.md, "Record by record").

use super::erased::Keep;
use super::{AnyData, Pipeline, PipelineBuilder};
use crate::stage::{Aggregate, BatchInfo, ChunkDecoder, Fold, Sink, Stage, StageError};
use std::any::Any;
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// What a chain run leaves behind besides the partial: per stage the
/// records in and out, the part that ran last (for a panic), the first
/// error of a stage or the fold.
pub(crate) struct ChainState {
    /// Records in and out of each record stage, in order.
    pub(crate) counts: Vec<(u64, u64)>,
    /// Records the decoder made in this run.
    pub(crate) decoded: u64,
    /// The part running: a stage's index, the stage count for the fold,
    /// [`DECODER`] for the source's decoder.
    pub(crate) at: usize,
    /// The part that failed (as `at`) and its error.
    pub(crate) failed: Option<(usize, StageError)>,
}

/// [`ChainState::at`] while the source's decoder runs.
pub(crate) const DECODER: usize = usize::MAX;

impl ChainState {
    /// A state for a chain of `stages` record stages.
    pub(crate) fn new(stages: usize) -> Self {
        ChainState {
            counts: vec![(0, 0); stages],
            decoded: 0,
            at: DECODER,
            failed: None,
        }
    }
}

/// Where a link hands each record on (the next link, or the fold).
type HandOn<'a, T> = dyn FnMut(T, &mut ChainState) -> ControlFlow<()> + 'a;

/// What a chain run gives: the bytes used and the records decoded, a
/// decoder's error, or `None` when the decoder makes whole batches only.
type Decoded = Option<Result<(usize, usize), StageError>>;

/// The typed steps from the source's records to records of type `T`.
trait Links<T>: Send {
    /// Decodes the whole records at the start of `bytes` (at most `max`)
    /// with `decoder` (the source's `Box<dyn ChunkDecoder<Vec<_>>>`) and
    /// takes each through the steps to `sink`. `None` when the decoder
    /// cannot make records one at a time.
    fn run(
        &mut self,
        decoder: &dyn Any,
        bytes: (&[u8], u64, usize),
        state: &mut ChainState,
        sink: &mut HandOn<'_, T>,
    ) -> Decoded;

    fn clone_box(&self) -> Box<dyn Links<T>>;
}

/// The source's records, as its decoder makes them.
struct Start<T>(PhantomData<fn() -> T>);

impl<T: Send + 'static> Links<T> for Start<T> {
    fn run(
        &mut self,
        decoder: &dyn Any,
        (bytes, first, max): (&[u8], u64, usize),
        state: &mut ChainState,
        sink: &mut HandOn<'_, T>,
    ) -> Decoded {
        let decoder = decoder.downcast_ref::<Box<dyn ChunkDecoder<Vec<T>>>>()?;
        state.at = DECODER;
        decoder.decode_each(bytes, first, max, &mut |record| {
            state.decoded += 1;
            let flow = sink(record, state);
            state.at = DECODER;
            flow
        })
    }

    fn clone_box(&self) -> Box<dyn Links<T>> {
        Box::new(Start(PhantomData))
    }
}

/// The steps to `T`, then stage `index`'s function to `U`.
struct Then<T, F> {
    before: Box<dyn Links<T>>,
    step: F,
    index: usize,
}

impl<T, U, F> Links<U> for Then<T, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: FnMut(T) -> Result<Option<U>, StageError> + Clone + Send + 'static,
{
    fn run(
        &mut self,
        decoder: &dyn Any,
        bytes: (&[u8], u64, usize),
        state: &mut ChainState,
        sink: &mut HandOn<'_, U>,
    ) -> Decoded {
        let (step, index) = (&mut self.step, self.index);
        self.before
            .run(decoder, bytes, state, &mut |record, state| {
                state.at = index;
                state.counts[index].0 += 1;
                match step(record) {
                    Ok(Some(out)) => {
                        state.counts[index].1 += 1;
                        sink(out, state)
                    }
                    Ok(None) => ControlFlow::Continue(()),
                    Err(e) => {
                        state.failed = Some((index, e));
                        ControlFlow::Break(())
                    }
                }
            })
    }

    fn clone_box(&self) -> Box<dyn Links<U>> {
        Box::new(Then {
            before: self.before.clone_box(),
            step: self.step.clone(),
            index: self.index,
        })
    }
}

/// A pipeline's record stages and fold composed into one chain, its types
/// erased: what the engine runs on a chunk's bytes.
pub(crate) trait DynFused: Send {
    /// Decodes the whole records at the start of `bytes` (at most `max`,
    /// the first numbered `first`) with `decoder` (what
    /// [`DynChunkDecoder::typed`](super::DynChunkDecoder::typed) gives) and
    /// folds each into `acc` through the stages, one record at a time.
    /// Returns the bytes used and the records decoded; a stage's or the
    /// fold's error is left in `state` (and the run stops there). `None`
    /// when the decoder cannot make records one at a time.
    fn run(
        &mut self,
        decoder: &dyn Any,
        bytes: (&[u8], u64, usize),
        acc: &mut AnyData,
        state: &mut ChainState,
    ) -> Decoded;

    fn clone_box(&self) -> Box<dyn DynFused>;

    /// See [`Fold::commutes`].
    fn commutes(&self) -> bool;
}

struct Fused<T, A> {
    links: Box<dyn Links<T>>,
    fold: A,
    /// The number of record stages (the fold's index in `ChainState::at`).
    stages: usize,
}

impl<A: Fold> DynFused for Fused<A::In, A> {
    fn run(
        &mut self,
        decoder: &dyn Any,
        bytes: (&[u8], u64, usize),
        acc: &mut AnyData,
        state: &mut ChainState,
    ) -> Decoded {
        let acc = acc.downcast_mut::<A::Partial>()?;
        let (fold, index) = (&mut self.fold, self.stages);
        self.links.run(decoder, bytes, state, &mut |record, state| {
            state.at = index;
            match fold.add(acc, record) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    state.failed = Some((index, e));
                    ControlFlow::Break(())
                }
            }
        })
    }

    fn commutes(&self) -> bool {
        self.fold.commutes()
    }

    fn clone_box(&self) -> Box<dyn DynFused> {
        Box::new(Fused {
            links: self.links.clone_box(),
            fold: self.fold.clone(),
            stages: self.stages,
        })
    }
}

/// A record stage's function as a batch [`Stage`]: the same function on
/// each record of the batch, in order.
struct EachRecord<T, U, F>(F, PhantomData<fn(T) -> U>);

impl<T, U, F: Clone> Clone for EachRecord<T, U, F> {
    fn clone(&self) -> Self {
        EachRecord(self.0.clone(), PhantomData)
    }
}

impl<T, U, F> Stage for EachRecord<T, U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: FnMut(T) -> Result<Option<U>, StageError> + Clone + Send + 'static,
{
    type In = Vec<T>;
    type Out = Vec<U>;

    fn process(&mut self, input: Vec<T>, _: &BatchInfo) -> Result<Vec<U>, StageError> {
        let mut out = Vec::with_capacity(input.len());
        for record in input {
            out.extend((self.0)(record)?);
        }
        Ok(out)
    }

    fn uses_record_numbers(&self) -> bool {
        false
    }
}

/// A [`Fold`] as a batch [`Aggregate`]: each record of the batch folded in
/// order.
#[derive(Clone)]
struct Folded<A>(A);

impl<A: Fold> Aggregate for Folded<A> {
    type In = Vec<A::In>;
    type Partial = A::Partial;

    fn empty(&self) -> A::Partial {
        self.0.empty()
    }

    fn add(
        &mut self,
        acc: &mut A::Partial,
        input: Vec<A::In>,
        _: &BatchInfo,
    ) -> Result<(), StageError> {
        input
            .into_iter()
            .try_for_each(|record| self.0.add(acc, record))
    }

    fn merge(&self, acc: &mut A::Partial, later: A::Partial) {
        self.0.merge(acc, later)
    }

    fn try_merge(&self, acc: &mut A::Partial, later: A::Partial) -> Result<(), StageError> {
        self.0.try_merge(acc, later)
    }

    /// A fold never sees record numbers: its partial is the same however
    /// the input was cut.
    fn renumbers(&self) -> bool {
        true
    }
}

/// The record chain a builder has composed so far: `Box<dyn Links<T>>`
/// for its current record type `T`, or nothing yet (no record stage, or
/// a batch stage came first and the pipeline cannot run record by record).
pub(super) struct Chain {
    links: Option<Box<dyn Any + Send>>,
    /// Every stage so far is a record stage.
    fusable: bool,
}

impl Chain {
    pub(super) fn new() -> Self {
        Chain {
            links: None,
            fusable: true,
        }
    }

    /// A batch stage was added: no record chain for this pipeline.
    pub(super) fn broken() -> Self {
        Chain {
            links: None,
            fusable: false,
        }
    }

    /// The links to records of type `T`: those composed so far, or the
    /// source's records themselves when no stage came before.
    fn take<T: Send + 'static>(self) -> Option<Box<dyn Links<T>>> {
        if !self.fusable {
            return None;
        }
        match self.links {
            Some(links) => links.downcast::<Box<dyn Links<T>>>().ok().map(|b| *b),
            None => Some(Box::new(Start::<T>(PhantomData))),
        }
    }
}

impl<T: Send + 'static> PipelineBuilder<Vec<T>> {
    /// Appends a record stage: `f` turns each record into one record.
    ///
    /// A pipeline whose stages are all record stages and that ends in a
    /// [`fold`](Self::fold) runs each record from the source to the fold
    /// before the next is decoded, wherever the source's decoder can (see
    /// [`Fold`]); its results are the same either way.
    ///
    /// ```
    /// use parpipe::{Fold, Pipeline, StageError};
    /// # use parpipe::Source;
    /// # struct Words(Vec<String>);
    /// # impl Source for Words {
    /// #     type Out = Vec<String>;
    /// #     fn next_batch(&mut self, max: usize) -> Result<Option<Vec<String>>, StageError> {
    /// #         let n = max.min(self.0.len());
    /// #         Ok((n > 0).then(|| self.0.drain(..n).collect()))
    /// #     }
    /// # }
    ///
    /// /// The total length of the words.
    /// #[derive(Clone)]
    /// struct Total;
    /// impl Fold for Total {
    ///     type In = usize;
    ///     type Partial = u64;
    ///     fn empty(&self) -> u64 { 0 }
    ///     fn add(&mut self, acc: &mut u64, n: usize) -> Result<(), StageError> {
    ///         *acc += n as u64;
    ///         Ok(())
    ///     }
    ///     fn merge(&self, acc: &mut u64, later: u64) { *acc += later; }
    /// }
    ///
    /// let words = Words(vec!["one".into(), "".into(), "three".into()]);
    /// let pipeline = Pipeline::builder("lengths", "words", words)
    ///     .filter_map("non-empty", |w: String| (!w.is_empty()).then_some(w))
    ///     .map("length", |w: String| w.len())
    ///     .fold("total", Total);
    /// let total = pipeline.run(&parpipe::RunConfig::default())?;
    /// assert_eq!(total.result, 8);
    /// # Ok::<(), parpipe::Error>(())
    /// ```
    pub fn map<U, F>(self, name: impl Into<String>, mut f: F) -> PipelineBuilder<Vec<U>>
    where
        U: Send + 'static,
        F: FnMut(T) -> U + Clone + Send + 'static,
    {
        self.try_filter_map(name, move |record| Ok(Some(f(record))))
    }

    /// Appends a record stage that keeps the records for which `f` gives
    /// `Some`, turned into what it gives (see [`map`](Self::map)).
    pub fn filter_map<U, F>(self, name: impl Into<String>, mut f: F) -> PipelineBuilder<Vec<U>>
    where
        U: Send + 'static,
        F: FnMut(T) -> Option<U> + Clone + Send + 'static,
    {
        self.try_filter_map(name, move |record| Ok(f(record)))
    }

    /// Appends a record stage that may fail: `Ok(Some(r))` passes `r` on,
    /// `Ok(None)` drops the record, an error fails the run naming the
    /// stage and the record (see [`map`](Self::map)).
    pub fn try_filter_map<U, F>(mut self, name: impl Into<String>, f: F) -> PipelineBuilder<Vec<U>>
    where
        U: Send + 'static,
        F: FnMut(T) -> Result<Option<U>, StageError> + Clone + Send + 'static,
    {
        let index = self.stages.len();
        let links = self.chain.take_links::<T>().map(|before| {
            let then: Box<dyn Links<U>> = Box::new(Then {
                before,
                step: f.clone(),
                index,
            });
            Box::new(then) as Box<dyn Any + Send>
        });
        let chain = Chain {
            fusable: links.is_some(),
            links,
        };
        let mut next = self.stage(name, EachRecord(f, PhantomData));
        next.chain = chain;
        next
    }

    /// Ends the record stages with a [`Fold`]: a run gives back its final
    /// partial.
    pub fn fold<A: Fold<In = T>>(self, name: impl Into<String>, fold: A) -> Pipeline<A::Partial> {
        self.fold_into(name, fold, "result", Keep(PhantomData))
    }

    /// Ends the record stages with a [`Fold`] and a sink for its result; a
    /// run gives back what the sink's [`finish`](Sink::finish) returns.
    pub fn fold_into<A, K>(
        mut self,
        name: impl Into<String>,
        fold: A,
        sink_name: impl Into<String>,
        sink: K,
    ) -> Pipeline<K::Output>
    where
        A: Fold<In = T>,
        K: Sink<Partial = A::Partial>,
    {
        let stages = self.stages.len();
        let fused = self.chain.take_links::<T>().map(|links| {
            Box::new(Fused {
                links,
                fold: fold.clone(),
                stages,
            }) as Box<dyn DynFused>
        });
        let mut pipeline = self.aggregate(name, Folded(fold), sink_name, sink);
        pipeline.fused = fused;
        pipeline
    }
}

impl Chain {
    /// See [`Chain::take`].
    fn take_links<T: Send + 'static>(&mut self) -> Option<Box<dyn Links<T>>> {
        std::mem::replace(self, Chain::broken()).take()
    }
}
