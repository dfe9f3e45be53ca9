//! Reading the input of [`Lines`](crate::sources::Lines) (and so of the
//! `logs` workload, docs/logs-workload.md §1):
//! files or standard input, plain or gzip (detected by its magic bytes), cut
//! into lines and packed into [`LineBatch`](super::batch::LineBatch)es with
//! line numbers that run on across inputs. Every failure becomes an
//! [`InputError`] naming the input, never a panic.

use std::io::{self, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::watch::Watch;
pub(super) use stdin::BatchClock;

// This file holds the inputs, their errors and the reader's state.
mod fill; // cutting the buffer into lines: `LineReader::fill`, `fill_text`
mod open; // opening each input, refilling the buffer
mod sink; // where the lines go: a batch, or text
mod stdin; // standard input with a batch deadline

/// How long a batch of standard input or of a followed file waits for more
/// lines once it has its first one, unless [`LineReader::set_batch_delay`]
/// says otherwise.
pub const DEFAULT_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// Size of the read buffer (and of the gzip decoder's input buffer): large
/// enough that the per-read cost vanishes next to the per-line work.
const BUF_SIZE: usize = 256 * 1024;

/// A batch's offsets are `u32`, so no line may be longer than this.
const MAX_LINE: usize = u32::MAX as usize;

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputSpec {
    /// Standard input (`-` on the command line).
    Stdin,
    /// A file, plain or gzip-compressed.
    File(PathBuf),
    /// A plain-text file read as it grows, as `tail -F` does: it ends only
    /// when [`stop_following`](crate::workloads::logs::stop_following) is called.
    Follow(PathBuf),
}

impl InputSpec {
    /// Reads a command-line argument: `-` is standard input, anything else a path.
    pub fn parse(arg: &str) -> InputSpec {
        if arg == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::File(PathBuf::from(arg))
        }
    }

    /// How messages name the input: `<stdin>` or the path as given.
    pub fn display_name(&self) -> String {
        match self {
            InputSpec::Stdin => "<stdin>".to_string(),
            InputSpec::File(p) | InputSpec::Follow(p) => p.display().to_string(),
        }
    }
}

/// An input that could not be read. The message names the input and, once
/// reading has started, the line reached, counted within that input (1-based)
/// so that the user can find it in the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input could not be opened (missing, no permission, ...).
    #[error("input '{input}': cannot open: {source}")]
    Open {
        /// The input's display name.
        input: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The path names a directory.
    #[error("input '{input}': is a directory, expected a file of log lines")]
    IsDirectory {
        /// The input's display name.
        input: String,
    },
    /// Reading (or decompressing) failed part-way.
    #[error("input '{input}' line {line}: {what}: {source}")]
    Read {
        /// The input's display name.
        input: String,
        /// The line being read when it failed, counted within this input.
        line: u64,
        /// `corrupt gzip data` or `read error`.
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading at a byte offset failed (multiprocess mode, while cutting
    /// a file into chunks without counting its lines).
    #[error("input '{input}' at byte {offset}: read error: {source}")]
    ReadAt {
        /// The input's display name.
        input: String,
        /// Where the read was.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// A line too long for a chunk's frame (multiprocess mode).
    #[error(
        "input '{input}' line {line}: the line is longer than a chunk's frame can carry \
         (--max-frame {max_frame} bytes); raise --max-frame, or run in serial or pipeline mode"
    )]
    LineOverFrame {
        /// The input's display name.
        input: String,
        /// The line, counted within this input.
        line: u64,
        /// The frame limit.
        max_frame: usize,
    },
    /// A line too long for a batch's `u32` offsets.
    #[error("input '{input}' line {line}: line longer than 4 GiB")]
    LineTooLong {
        /// The input's display name.
        input: String,
        /// The line, counted within this input.
        line: u64,
    },
}

/// Reads lines from several inputs in order, into LineBatches; line numbers
/// run on across inputs.
///
/// Each input is cut separately: a last line without LF ends at the end of its
/// input and never joins the next input's first line.
pub struct LineReader {
    inputs: Vec<InputSpec>,
    /// Index in `inputs` of the next input to open.
    next_input: usize,
    /// The input being read, if any.
    current: Option<OpenInput>,
    /// Read buffer; `buf[start..end]` holds bytes not yet cut into lines.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The beginning of a line that spans reads.
    partial: Vec<u8>,
    /// Number (1-based, across inputs) of the next line to deliver.
    next_line: u64,
    /// An error met after some lines were already put in the caller's batch:
    /// reported by the next call, so those lines are not lost with it.
    deferred: Option<Box<InputError>>,
    /// Data bytes of the last batch filled (a capacity hint for the next).
    last_batch_bytes: usize,
    /// The deadline of the batch being filled, when an input can pause
    /// (standard input, a followed file); `None` for files, which never make
    /// a batch wait.
    clock: Option<BatchClock>,
    /// How long a batch waits for more once it has a line (see `clock`).
    delay: std::time::Duration,
    /// Text ([`fill_text`](Self::fill_text)) for chunks of a frame of
    /// at most `.1` bytes: no line may take more than `.0` bytes.
    text_line_limit: Option<(usize, usize)>,
}

/// An opened input.
struct OpenInput {
    name: String,
    source: Box<dyn Read + Send>,
    gzip: bool,
    /// Lines of this input delivered so far.
    lines: u64,
    /// The source has reported its end.
    eof: bool,
    /// A regular file: what it looked like at open, checked at its end.
    watch: Option<Watch>,
    /// A followed file or standard input: "nothing new yet" is not an
    /// error, the lines already read leave in a partial batch.
    follow: bool,
}

impl OpenInput {
    /// The error for a file that shrank, changed or was replaced while it
    /// was read; checked when its end is reached (and on a read error,
    /// which a truncated gzip file gives: the truncation is the cause).
    fn changed(&self) -> Option<InputError> {
        let source = self.watch.as_ref()?.changed()?;
        Some(InputError::Read {
            input: self.name.clone(),
            line: self.lines + 1,
            what: "read error",
            source,
        })
    }
}

impl LineReader {
    /// Does NOT open anything yet (opening is lazy, on the first fill).
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        LineReader {
            next_input: 0,
            current: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
            partial: Vec::new(),
            next_line: 1,
            deferred: None,
            last_batch_bytes: 0,
            clock: inputs_pause(&inputs).then(BatchClock::default),
            delay: DEFAULT_BATCH_DELAY,
            text_line_limit: None,
            inputs,
        }
    }

    /// How long a batch of standard input or of a followed file waits for
    /// more lines once it has its first one: then it leaves partial, so a
    /// slow stream still flows (even one that never pauses long).
    pub fn set_batch_delay(&mut self, delay: std::time::Duration) {
        self.delay = delay;
    }

    /// Text for multiprocess chunks must fit frames of `max_frame` bytes:
    /// a line that takes more than `limit` bytes as text (its LF
    /// included) fails [`fill_text`](Self::fill_text) with
    /// [`InputError::LineOverFrame`], as soon as that many bytes of it are
    /// read. Batches ([`fill`](Self::fill)) take any line.
    pub fn limit_text_lines(&mut self, limit: usize, max_frame: usize) {
        self.text_line_limit = Some((limit, max_frame));
    }
    /// The inputs, as given.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// The number (1-based, across inputs) of the next line to be delivered.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }
}

/// Whether any of `inputs` can pause (standard input).
fn inputs_pause(inputs: &[InputSpec]) -> bool {
    inputs
        .iter()
        .any(|i| matches!(i, InputSpec::Stdin | InputSpec::Follow(_)))
}

#[cfg(test)]
mod tests;
