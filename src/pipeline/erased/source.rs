//! The erased source side of a [`Pipeline`](crate::Pipeline): the
//! [`DynSource`] the modes pull from, the boxes that implement it for a
//! plain [`Source`] (bincode batches) and a [`ChunkSource`] (its own wire
//! form, file ranges), and the erased [`ChunkDecoder`](crate::ChunkDecoder).

use super::{AnyData, SnapshotReq, Wake};
use crate::file_range::FileRange;
use crate::stage::{BatchInfo, ChunkSource, FileChunkSource, Records, Source, StageError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::marker::PhantomData;

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
    /// See [`crate::ChunkSource::remaining_estimate`].
    fn remaining_estimate(&self) -> Option<u64>;
    /// See [`crate::ChunkSource::next_chunk`].
    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError>;
    /// See [`FileChunkSource::chunks_in_files`]
    /// (by default no).
    fn chunks_in_files(&mut self) -> bool {
        false
    }
    /// See [`FileChunkSource::would_chunk_in_files`]
    /// (by default no).
    fn would_chunk_in_files(&self) -> bool {
        false
    }
    /// See [`FileChunkSource::range_files`].
    fn range_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
    /// See [`FileChunkSource::next_chunk_ranges`]
    /// (only asked of a source whose `chunks_in_files` said yes).
    fn next_chunk_ranges(
        &mut self,
        max: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        let _ = (max, out);
        Err(StageError::new(
            "this source cannot give chunks as file ranges",
        ))
    }
    /// See [`ChunkSource::fit_chunks_to_frame`].
    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        let _ = (max_chunk_bytes, max_frame);
    }
    /// The decoder of this source's chunks (see
    /// [`ChunkSource::chunk_decoder`];
    /// a source in the default wire form gets [`WholeBatch`]). `None` (the
    /// default) only for what stands in for a source moved elsewhere.
    fn chunk_decoder(&self) -> Option<Box<dyn DynChunkDecoder>> {
        None
    }
    /// See [`FileChunkSource::cuts_by_bytes`]
    /// (by default no).
    fn cuts_by_bytes(&mut self) -> bool {
        false
    }
    /// See [`FileChunkSource::next_chunk_ranges_uncounted`].
    fn next_chunk_ranges_uncounted(
        &mut self,
        about: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        let _ = (about, max_bytes, out);
        Err(crate::stage::no_byte_cuts())
    }
    /// See [`Source::may_wait`].
    fn may_wait(&self) -> bool {
        false
    }
    /// The source's own busy time for the pull just answered, when it
    /// measured it itself (a detached source: the CPU time its thread
    /// spent, so that waiting for input is not counted as work); `None`:
    /// the engine times the call.
    fn took(&mut self) -> Option<std::time::Duration> {
        None
    }
    /// CPU time the source spent on a thread of its own so far (a
    /// detached source); zero for a source pulled on the caller's thread.
    fn own_cpu(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// After a `Pending`: waits at most `timeout` for the answer, if this
    /// source can be waited for without an async runtime (a detached one);
    /// true when the next pull will have it.
    fn wait_briefly(&mut self, timeout: std::time::Duration) -> bool {
        let _ = timeout;
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

/// A plain [`Source`] erased: its batches cross to workers in the default
/// wire form ([`encode_batch`](crate::stage::encode_batch)), one batch a
/// chunk, decoded by [`WholeBatch`].
pub(in crate::pipeline) struct Bincode<S>(pub(in crate::pipeline) S);

impl<S> DynSource for Bincode<S>
where
    S: Source,
    S::Out: Serialize + DeserializeOwned,
{
    fn next_batch(&mut self, max: usize) -> Result<Pulled<AnyData>, StageError> {
        Ok(pulled(self.0.next_batch(max)?.map(|b| {
            let n = b.record_count();
            (Box::new(b) as AnyData, n)
        })))
    }

    fn size_hint(&self) -> Option<u64> {
        self.0.size_hint()
    }

    fn remaining_estimate(&self) -> Option<u64> {
        self.0.size_hint()
    }

    fn may_wait(&self) -> bool {
        self.0.may_wait()
    }

    fn next_chunk(&mut self, max: usize, out: &mut Vec<u8>) -> Result<Pulled<()>, StageError> {
        let Some(batch) = self.0.next_batch(max)? else {
            return Ok(Pulled::End);
        };
        crate::stage::encode_batch(&batch, out)?;
        Ok(Pulled::Data((), batch.record_count()))
    }

    fn chunk_decoder(&self) -> Option<Box<dyn DynChunkDecoder>> {
        Some(Box::new(WholeBatch::<S::Out>::new()))
    }
}

/// The decoder of chunks in the default wire form (what a plain
/// [`Source`] and a pushed batch ship): a chunk is one batch in bincode
/// ([`decode_batch`](crate::stage::decode_batch)), which cannot be cut, so
/// it is decoded whole, from the frame it came in, and its part is the
/// batch the coordinator made. Its batch until then is a placeholder that
/// `extend` replaces.
pub(crate) struct WholeBatch<B>(PhantomData<fn() -> B>);

impl<B> WholeBatch<B> {
    /// The decoder of batches of type `B`.
    pub(crate) fn new() -> Self {
        WholeBatch(PhantomData)
    }
}

impl<B: Records + DeserializeOwned> DynChunkDecoder for WholeBatch<B> {
    fn new_batch(&self, _info: &BatchInfo) -> AnyData {
        Box::new(())
    }

    /// The whole of `bytes`, one batch; bytes that are not exactly one
    /// batch are the error.
    fn extend(
        &self,
        batch: &mut AnyData,
        bytes: &[u8],
        _max: usize,
    ) -> Result<(usize, usize), String> {
        if bytes.is_empty() {
            return Ok((0, 0));
        }
        let decoded: B = crate::stage::decode_batch(bytes).map_err(|e| e.to_string())?;
        let n = decoded.record_count();
        *batch = Box::new(decoded);
        Ok((bytes.len(), n))
    }

    fn adopt(&self, _batch: &mut AnyData, _bytes: &mut Vec<u8>) -> Option<usize> {
        None
    }

    /// No cap: a batch in bincode is not cut.
    fn batch_records(&self, _batch_size: usize) -> usize {
        usize::MAX
    }
}

/// A [`ChunkSource`] erased; `files` is its [`FileChunkSource`] side, when
/// the builder was given one.
pub(in crate::pipeline) struct SourceBox<S> {
    pub(in crate::pipeline) source: S,
    pub(in crate::pipeline) files: Option<FileFns<S>>,
}

/// A [`ChunkDecoder`](crate::ChunkDecoder) with its batch type erased.
pub(crate) trait DynChunkDecoder: Send {
    /// See [`ChunkDecoder::new_batch`](crate::ChunkDecoder::new_batch).
    fn new_batch(&self, info: &BatchInfo) -> AnyData;
    /// See [`ChunkDecoder::extend`](crate::ChunkDecoder::extend), for a
    /// batch that `new_batch` made.
    fn extend(
        &self,
        batch: &mut AnyData,
        bytes: &[u8],
        max: usize,
    ) -> Result<(usize, usize), String>;
    /// See [`ChunkDecoder::adopt`](crate::ChunkDecoder::adopt), for a
    /// batch that `new_batch` made.
    fn adopt(&self, batch: &mut AnyData, bytes: &mut Vec<u8>) -> Option<usize>;
    /// See [`ChunkDecoder::batch_records`](crate::ChunkDecoder::batch_records).
    fn batch_records(&self, batch_size: usize) -> usize;
    /// The typed decoder (a `Box<dyn ChunkDecoder<_>>`), for a record
    /// chain to decode records one at a time with (see `records`).
    fn typed(&self) -> &dyn Any {
        &()
    }
}

struct ErasedDecoder<O>(Box<dyn crate::ChunkDecoder<O>>);

impl<O: Send + 'static> DynChunkDecoder for ErasedDecoder<O> {
    fn new_batch(&self, info: &BatchInfo) -> AnyData {
        Box::new(self.0.new_batch(info))
    }

    fn extend(
        &self,
        batch: &mut AnyData,
        bytes: &[u8],
        max: usize,
    ) -> Result<(usize, usize), String> {
        let batch = batch
            .downcast_mut()
            .ok_or("a chunk batch of another type (a bug in parpipe)")?;
        self.0.extend(batch, bytes, max).map_err(|e| e.to_string())
    }

    fn adopt(&self, batch: &mut AnyData, bytes: &mut Vec<u8>) -> Option<usize> {
        self.0.adopt(batch.downcast_mut()?, bytes)
    }

    fn batch_records(&self, batch_size: usize) -> usize {
        self.0.batch_records(batch_size).max(1)
    }

    fn typed(&self) -> &dyn Any {
        &self.0
    }
}

/// The [`FileChunkSource`] methods of `S`, captured where `S` is known to
/// have them.
pub(in crate::pipeline) struct FileFns<S> {
    chunks_in_files: fn(&mut S) -> bool,
    would_chunk_in_files: fn(&S) -> bool,
    range_files: fn(&S) -> Vec<std::path::PathBuf>,
    next_chunk_ranges: RangesFn<S>,
    cuts_by_bytes: fn(&mut S) -> bool,
    next_chunk_ranges_uncounted: UncountedFn<S>,
}

pub(in crate::pipeline) type UncountedFn<S> =
    fn(&mut S, usize, usize, &mut Vec<FileRange>) -> Result<bool, StageError>;

pub(in crate::pipeline) type RangesFn<S> =
    fn(&mut S, usize, &mut Vec<FileRange>) -> Result<Option<usize>, StageError>;

impl<S: FileChunkSource> FileFns<S> {
    pub(in crate::pipeline) fn of() -> Self {
        FileFns {
            chunks_in_files: S::chunks_in_files,
            would_chunk_in_files: S::would_chunk_in_files,
            range_files: S::range_files,
            next_chunk_ranges: S::next_chunk_ranges,
            cuts_by_bytes: S::cuts_by_bytes,
            next_chunk_ranges_uncounted: S::next_chunk_ranges_uncounted,
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

    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, max_frame: usize) {
        self.source.fit_chunks_to_frame(max_chunk_bytes, max_frame);
    }

    fn chunk_decoder(&self) -> Option<Box<dyn DynChunkDecoder>> {
        Some(Box::new(ErasedDecoder(self.source.chunk_decoder())))
    }

    fn cuts_by_bytes(&mut self) -> bool {
        match &self.files {
            Some(f) => (f.cuts_by_bytes)(&mut self.source),
            None => false,
        }
    }

    fn next_chunk_ranges_uncounted(
        &mut self,
        about: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        match &self.files {
            Some(f) => (f.next_chunk_ranges_uncounted)(&mut self.source, about, max_bytes, out),
            None => Err(crate::stage::no_byte_cuts()),
        }
    }

    fn chunks_in_files(&mut self) -> bool {
        match &self.files {
            Some(f) => (f.chunks_in_files)(&mut self.source),
            None => false,
        }
    }

    fn would_chunk_in_files(&self) -> bool {
        self.files
            .as_ref()
            .is_some_and(|f| (f.would_chunk_in_files)(&self.source))
    }

    fn range_files(&self) -> Vec<std::path::PathBuf> {
        self.files
            .as_ref()
            .map_or_else(Vec::new, |f| (f.range_files)(&self.source))
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
