//! Ready-made sources for the formats people have: [`Lines`] (text lines
//! of files, gzip files and standard input, with their line numbers),
//! [`Csv`] (one record per line, through the `csv` crate, the header line
//! skipped) and [`JsonLines`] (one JSON value per line, through
//! `serde_json`).
//!
//! Every one of them is a [`FileChunkSource`](crate::FileChunkSource): when
//! every input is a plain regular file (not gzip, not standard input), it
//! is cut by byte ranges at line ends, so pipeline mode's reading lanes and
//! multiprocess workers on this machine read and decode their own ranges;
//! other inputs are read as a stream. Either way a run gives the same
//! records, in the same order, in every mode.
//!
//! **One record per line.** The cut is always at a line feed, so a record
//! must not span lines. [`Csv`] checks it: a quoted field holding a line
//! break (or a bare CR, or an empty line) is an error naming the line, in
//! every mode, whether the file was cut or streamed — never a record cut in
//! two in one mode and whole in another. Such files need a source of their
//! own that reads them as one stream (a plain [`Source`](crate::Source)
//! over `csv::Reader`).
//!
//! ```no_run
//! use parpipe::sources::{Csv, InputSpec};
//! use parpipe::{Aggregate, BatchInfo, Pipeline, StageError};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Order { id: u64, country: String, cents: i64 }
//!
//! /// Revenue in integer cents (associative: the same in every mode).
//! #[derive(Clone)]
//! struct Revenue;
//! impl Aggregate for Revenue {
//!     type In = Vec<Order>;
//!     type Partial = i64;
//!     fn empty(&self) -> i64 { 0 }
//!     fn add(&mut self, acc: &mut i64, orders: Vec<Order>, _: &BatchInfo) -> Result<(), StageError> {
//!         *acc += orders.iter().map(|o| o.cents).sum::<i64>();
//!         Ok(())
//!     }
//!     fn merge(&self, acc: &mut i64, later: i64) { *acc += later; }
//! }
//!
//! let source = Csv::<Order>::new(InputSpec::parse("orders.csv"));
//! let pipeline = Pipeline::builder_files("revenue", "orders", source).collect("revenue", Revenue);
//! ```

mod csv;
mod json_lines;
// `Lines` and the machinery behind it (line batches, the reader, the
// cutter of byte ranges, following a growing file).
internal_modules!(lines);
mod parsed;
pub(crate) mod split;

pub use self::csv::{Csv, CsvRows};
pub use self::json_lines::{JsonLines, JsonRows};
pub use self::lines::Lines;
pub use self::parsed::{default_batch_bytes, LineError, LineFormat, ParsedLines};
pub use crate::sources::lines::batch::LineBatch;
pub use crate::sources::lines::follow::stop_following;
pub use crate::sources::lines::input::InputSpec;
pub use crate::sources::lines::pool::BatchPool;

#[cfg(test)]
mod tests;
