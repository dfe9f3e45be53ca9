//! [`Lines`]: the text lines of files, gzip files and standard input, and
//! the machinery behind it (line batches and their pool, the stream
//! reader, the cutter of plain files into byte ranges, following a growing
//! file).

// The modules behind `Lines` (public only with the `internals` feature);
// their public types are re-exported by `crate::sources`.
internal_modules!(batch, follow, input, pool, ranges, source);
mod watch;

pub use source::Lines;
