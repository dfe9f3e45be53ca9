//! A source of one's own cut by byte ranges, with an aggregate that
//! renumbers: the powers parpipe's ready-made sources use, on the public
//! API alone.
//!
//! The input is a text file of weather readings, one `station;tenths` per
//! line (`Oslo;-73` is -7.3 °C). The job counts readings per station (with
//! their minimum and maximum) and finds the hottest reading's line number.
//!
//! - [`Readings`] is a [`Source`] (serial mode reads it line by line), a
//!   [`ChunkSource`] (multiprocess mode may ship raw text) and a
//!   [`FileChunkSource`] that [cuts by bytes](FileChunkSource::cuts_by_bytes):
//!   a chunk is a byte range of the file ending after a line feed, found by
//!   reading a few bytes around the cut, never by counting lines. Pipeline
//!   mode's reading lanes (`--replicas auto`) and multiprocess workers then
//!   read their own ranges and decode them block by block with its
//!   [`ChunkDecoder`] ([`ChunkSource::chunk_decoder`]), which also decodes
//!   the text chunks multiprocess mode ships, and counts the records it
//!   makes.
//! - Such a chunk's records are numbered from 1 ([`BatchInfo`]): the stage
//!   says it does not look at record numbers
//!   ([`Stage::uses_record_numbers`]), and the aggregate, which keeps the
//!   hottest reading's line, [`renumbers`](Aggregate::renumbers) its partial
//!   once the records before the chunk are known, and checks a worker's
//!   answer against its chunk ([`Aggregate::check_chunk`]).
//!
//! Every mode prints the same JSON line as `--mode plain`, a loop with no
//! parpipe at all, and on stderr how many chunks this process cut by bytes
//! or by counting lines (`--counted` makes the stage claim it uses record
//! numbers: chunks are then counted, with no renumbering). Run:
//!
//! ```sh
//! cargo run --release --example byte_ranges -- --generate 1000000 readings.txt
//! cargo run --release --example byte_ranges -- --input readings.txt --mode pipeline --replicas auto
//! cargo run --release --example byte_ranges -- --input readings.txt --mode multiprocess --workers 2
//! ```

mod common;

use parpipe::file_range::{file_identity, fingerprint, FileRange};
use parpipe::{Aggregate, BatchInfo, ChunkDecoder, ChunkSource, FileChunkSource, Source};
use parpipe::{Pipeline, Registry, Stage, StageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// Chunks this process cut by bytes and by counting lines: printed on
/// stderr after a run, to show which way the input was read.
static CUT_BY_BYTES: AtomicU64 = AtomicU64::new(0);
static CUT_COUNTED: AtomicU64 = AtomicU64::new(0);

// ---- The per-record code, shared by the pipeline and the plain loop ----

/// One reading: a station and tenths of a degree.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    station: String,
    tenths: i32,
}

/// Parses one line (without its line feed).
fn parse(line: &[u8]) -> Result<Reading, String> {
    let text = std::str::from_utf8(line).map_err(|_| "a reading that is not UTF-8".to_string())?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    let (station, tenths) = text
        .split_once(';')
        .ok_or_else(|| format!("'{text}' is not 'station;tenths'"))?;
    let tenths = tenths
        .parse()
        .map_err(|_| format!("'{tenths}' in '{text}' is not a whole number of tenths"))?;
    Ok(Reading {
        station: station.to_owned(),
        tenths,
    })
}

/// Readings a thermometer on Earth cannot give are kept out of the stats.
fn plausible(r: &Reading) -> bool {
    (-900..=600).contains(&r.tenths)
}

/// One station's readings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Station {
    count: u64,
    min: i32,
    max: i32,
}

/// The job's result (and every partial of it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stats {
    /// Records seen, implausible ones included.
    records: u64,
    implausible: u64,
    stations: BTreeMap<String, Station>,
    /// The hottest plausible reading and its line (the first on a tie).
    hottest: Option<(i32, u64)>,
}

impl Stats {
    /// Folds in the reading on `line` (`None`: implausible).
    fn add(&mut self, line: u64, reading: Option<Reading>) {
        self.records += 1;
        let Some(r) = reading else {
            self.implausible += 1;
            return;
        };
        if self.hottest.is_none_or(|(t, _)| r.tenths > t) {
            self.hottest = Some((r.tenths, line));
        }
        let s = self.stations.entry(r.station).or_insert(Station {
            count: 0,
            min: i32::MAX,
            max: i32::MIN,
        });
        s.count += 1;
        s.min = s.min.min(r.tenths);
        s.max = s.max.max(r.tenths);
    }

    /// Merges the stats of the records after these.
    fn merge(&mut self, later: Stats) {
        self.records += later.records;
        self.implausible += later.implausible;
        if let Some((t, line)) = later.hottest {
            if self.hottest.is_none_or(|(mine, _)| t > mine) {
                self.hottest = Some((t, line));
            }
        }
        for (name, s) in later.stations {
            let mine = self.stations.entry(name).or_insert(Station {
                count: 0,
                min: i32::MAX,
                max: i32::MIN,
            });
            mine.count += s.count;
            mine.min = mine.min.min(s.min);
            mine.max = mine.max.max(s.max);
        }
    }

    fn to_json(&self) -> String {
        serde_json::json!({
            "records": self.records,
            "implausible": self.implausible,
            "hottest": self.hottest.map(|(tenths, line)| serde_json::json!({"tenths": tenths, "line": line})),
            "stations": self.stations,
        })
        .to_string()
    }
}

// ---- The source: lines of one file, cut by byte ranges ----

/// The readings of one file. Construction does no I/O (workers build the
/// same pipeline but never read its source).
struct Readings {
    path: PathBuf,
    /// Serial reading (`next_batch`, `next_chunk`, counted ranges).
    reader: Option<BufReader<File>>,
    /// Byte cutting: the open file, what identifies it, the next offset.
    file: Option<Cutting>,
    /// The largest chunk a frame holds (see `fit_chunks_to_frame`).
    max_chunk_bytes: usize,
}

struct Cutting {
    file: File,
    absolute: PathBuf,
    len: u64,
    modified_nanos: u128,
    fingerprint: u64,
    /// Where the next chunk starts.
    offset: u64,
    /// Whether the file ends with a line feed (else the last range gets one).
    ends_with_newline: bool,
    /// Bytes per line, measured on the start of the file.
    line_bytes: usize,
}

impl Readings {
    fn new(path: impl Into<PathBuf>) -> Self {
        Readings {
            path: path.into(),
            reader: None,
            file: None,
            max_chunk_bytes: usize::MAX,
        }
    }

    fn decoder(&self) -> LineDecoder {
        LineDecoder {
            path: self.path.display().to_string(),
        }
    }

    fn fail(&self, what: impl std::fmt::Display) -> StageError {
        StageError::new(format!("{}: {what}", self.path.display()))
    }

    /// The next line, with its line feed, appended to `out`; false at the end.
    fn read_line(&mut self, out: &mut Vec<u8>) -> Result<bool, StageError> {
        if self.reader.is_none() {
            let file = File::open(&self.path).map_err(|e| self.fail(e))?;
            self.reader = Some(BufReader::with_capacity(1 << 16, file));
        }
        let reader = self.reader.as_mut().expect("opened above");
        let start = out.len();
        let n = reader.read_until(b'\n', out);
        let n = n.map_err(|e| self.fail(e))?;
        if n > 0 && out.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        if out.len() - start > self.max_chunk_bytes {
            return Err(self.fail("a line longer than a chunk may be (see --max-frame)"));
        }
        Ok(n > 0)
    }

    /// Opens the file for cutting by bytes (once).
    fn cutting(&mut self) -> Result<&mut Cutting, StageError> {
        if self.file.is_none() {
            let absolute = std::path::absolute(&self.path).map_err(|e| self.fail(e))?;
            let mut file = File::open(&absolute).map_err(|e| self.fail(e))?;
            let (len, modified_nanos) = file_identity(&absolute).map_err(|e| self.fail(e))?;
            let fingerprint = fingerprint(&file, len).map_err(|e| self.fail(e))?;
            let mut head = Vec::new();
            file.seek(SeekFrom::Start(0)).map_err(|e| self.fail(e))?;
            (&file)
                .take(1 << 16)
                .read_to_end(&mut head)
                .map_err(|e| self.fail(e))?;
            let lines = head.iter().filter(|&&b| b == b'\n').count().max(1);
            let mut last = [0u8];
            if len > 0 {
                file.seek(SeekFrom::Start(len - 1))
                    .map_err(|e| self.fail(e))?;
                file.read_exact(&mut last).map_err(|e| self.fail(e))?;
            }
            self.file = Some(Cutting {
                file,
                absolute,
                len,
                modified_nanos,
                fingerprint,
                offset: 0,
                ends_with_newline: len == 0 || last[0] == b'\n',
                line_bytes: head.len().div_ceil(lines).max(1),
            });
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

impl Source for Readings {
    type Out = Vec<Reading>;

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<Reading>>, StageError> {
        let mut text = Vec::new();
        let mut records = 0;
        while records < max_records && self.read_line(&mut text)? {
            records += 1;
        }
        if records == 0 {
            return Ok(None);
        }
        let mut batch = Vec::with_capacity(records);
        self.decoder().extend(&mut batch, &text, usize::MAX)?;
        Ok(Some(batch))
    }

    fn may_wait(&self) -> bool {
        false // a local file
    }
}

impl ChunkSource for Readings {
    /// Raw text, cut into lines by the workers.
    fn next_chunk(
        &mut self,
        max_records: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, StageError> {
        let mut records = 0;
        while records < max_records && self.read_line(out)? {
            records += 1;
        }
        Ok((records > 0).then_some(records))
    }

    fn fit_chunks_to_frame(&mut self, max_chunk_bytes: usize, _max_frame: usize) {
        self.max_chunk_bytes = max_chunk_bytes;
    }

    /// Every chunk, read from ranges or shipped as text, is decoded by
    /// it; every record ends with a line feed in a chunk's bytes (the last
    /// line of a file without one gets it as the range's suffix).
    fn chunk_decoder(&self) -> Box<dyn ChunkDecoder<Vec<Reading>>> {
        Box::new(self.decoder())
    }
}

impl FileChunkSource for Readings {
    fn chunks_in_files(&mut self) -> bool {
        self.cutting().is_ok()
    }

    fn would_chunk_in_files(&self) -> bool {
        true
    }

    /// The run's own local workers may read this file's directory, so
    /// they read their ranges themselves rather than being sent them.
    fn range_files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    /// Counted ranges (for a stage or aggregate that needs each record's
    /// number in the whole input): read the lines to count them.
    fn next_chunk_ranges(
        &mut self,
        max_records: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<Option<usize>, StageError> {
        let start = self.cutting()?.offset;
        let mut text = Vec::new();
        let mut records = 0;
        while records < max_records && self.read_line(&mut text)? {
            records += 1;
        }
        if records == 0 {
            return Ok(None);
        }
        let c = self.cutting()?;
        let end = (start + text.len() as u64).min(c.len);
        c.offset = end;
        out.push(range(c, start, end));
        CUT_COUNTED.fetch_add(1, Ordering::Relaxed);
        Ok(Some(records))
    }

    fn cuts_by_bytes(&mut self) -> bool {
        true
    }

    /// About `about_records` lines' worth of bytes (at most `max_bytes`),
    /// ended after the next line feed: only the bytes around the cut are read.
    fn next_chunk_ranges_uncounted(
        &mut self,
        about_records: usize,
        max_bytes: usize,
        out: &mut Vec<FileRange>,
    ) -> Result<bool, StageError> {
        let room = self.max_chunk_bytes.min(max_bytes).max(1);
        let path = self.path.clone();
        let c = self.cutting()?;
        if c.offset >= c.len {
            return Ok(false);
        }
        let start = c.offset;
        let want = about_records.saturating_mul(c.line_bytes).clamp(1, room) as u64;
        let mut end = (start + want).min(c.len);
        if end < c.len {
            // The cut falls inside a line: end after its line feed.
            c.file
                .seek(SeekFrom::Start(end - 1))
                .map_err(|e| StageError::new(format!("{}: {e}", path.display())))?;
            let mut tail = BufReader::new((&c.file).take((c.len - end + 1).min(room as u64 + 1)));
            let mut line = Vec::new();
            tail.read_until(b'\n', &mut line)
                .map_err(|e| StageError::new(format!("{}: {e}", path.display())))?;
            if line.last() != Some(&b'\n') && end - 1 + line.len() as u64 != c.len {
                return Err(StageError::new(format!(
                    "{}: a line at byte {start} longer than a chunk may be (see --max-frame)",
                    path.display()
                )));
            }
            end = end - 1 + line.len() as u64;
        }
        c.offset = end;
        out.push(range(c, start, end));
        CUT_BY_BYTES.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

/// Bytes `start..end` of the file being cut; the last range of a file
/// without a final line feed gets one, as `next_chunk` would have written.
fn range(c: &Cutting, start: u64, end: u64) -> FileRange {
    let last = end == c.len && !c.ends_with_newline;
    FileRange {
        path: c.absolute.clone(),
        offset: start,
        len: end - start,
        suffix: if last { b"\n".to_vec() } else { Vec::new() },
        file_len: c.len,
        modified_nanos: c.modified_nanos,
        fingerprint: c.fingerprint,
    }
}

/// Cuts chunk text into readings block by block, on any thread; its
/// errors name the input.
struct LineDecoder {
    path: String,
}

impl ChunkDecoder<Vec<Reading>> for LineDecoder {
    fn new_batch(&self, _: &BatchInfo) -> Vec<Reading> {
        Vec::new()
    }

    fn extend(
        &self,
        batch: &mut Vec<Reading>,
        bytes: &[u8],
        max_records: usize,
    ) -> Result<(usize, usize), StageError> {
        let (mut used, mut n) = (0, 0);
        while n < max_records {
            let Some(end) = memchr::memchr(b'\n', &bytes[used..]) else {
                break; // a line cut off: the next call gets it whole
            };
            let reading = parse(&bytes[used..used + end])
                .map_err(|e| StageError::new(format!("{}: {e}", self.path)))?;
            batch.push(reading);
            used += end + 1;
            n += 1;
        }
        Ok((used, n))
    }
}

// ---- The stage and the aggregate ----

/// Marks implausible readings (`None`), keeping one entry per record so
/// that the aggregate can number them. `numbered`: claim to use record
/// numbers (`--counted`), which makes every mode count the records of
/// each chunk before it is read.
#[derive(Clone)]
struct Check {
    numbered: bool,
}

impl Stage for Check {
    type In = Vec<Reading>;
    type Out = Vec<Option<Reading>>;

    fn process(&mut self, b: Vec<Reading>, _: &BatchInfo) -> Result<Self::Out, StageError> {
        Ok(b.into_iter().map(|r| plausible(&r).then_some(r)).collect())
    }

    // What it does does not depend on where the batch sits.
    fn uses_record_numbers(&self) -> bool {
        self.numbered
    }
}

/// The stats, with the hottest reading's line number.
#[derive(Clone)]
struct Summarize;

impl Aggregate for Summarize {
    type In = Vec<Option<Reading>>;
    type Partial = Stats;

    fn empty(&self) -> Stats {
        Stats::default()
    }

    fn add(&mut self, acc: &mut Stats, b: Self::In, info: &BatchInfo) -> Result<(), StageError> {
        for (line, reading) in (info.first_line..).zip(b) {
            acc.add(line, reading);
        }
        Ok(())
    }

    fn merge(&self, acc: &mut Stats, later: Stats) {
        acc.merge(later);
    }

    // The one record number the partial keeps can be moved.
    fn renumbers(&self) -> bool {
        true
    }

    fn renumber(&self, acc: &mut Stats, records_before: u64) -> Result<(), StageError> {
        if let Some((_, line)) = &mut acc.hottest {
            *line = line
                .checked_add(records_before)
                .ok_or_else(|| StageError::new("a line number past 2^64"))?;
        }
        Ok(())
    }

    // A worker's answer must account for exactly its chunk's records.
    fn check_chunk(&self, acc: &Stats, first_line: u64, records: u64) -> Result<(), StageError> {
        let lines = first_line..first_line.saturating_add(records);
        let counted: u64 = acc.stations.values().map(|s| s.count).sum();
        if acc.records != records || counted + acc.implausible != records {
            return Err(StageError::new(format!(
                "{} records in a chunk of {records}",
                acc.records
            )));
        }
        match acc.hottest {
            Some((_, line)) if !lines.contains(&line) => Err(StageError::new(format!(
                "the hottest reading on line {line}, outside the chunk's lines {lines:?}"
            ))),
            _ => Ok(()),
        }
    }
}

/// The job's parameters (they cross the wire to the workers).
#[derive(Serialize, Deserialize)]
struct Params {
    input: String,
    counted: bool,
}

fn registry() -> (Registry, parpipe::Key<Params, Stats>) {
    let mut registry = Registry::new();
    let key = registry.register("byte-ranges", |p: Params| {
        Ok(
            Pipeline::builder_files("byte-ranges", "readings", Readings::new(p.input))
                .stage(
                    "check",
                    Check {
                        numbered: p.counted,
                    },
                )
                .collect("summarize", Summarize),
        )
    });
    (registry, key)
}

/// The same per-record code in a plain loop.
fn plain(input: &str) -> Result<Stats, String> {
    let file = File::open(input).map_err(|e| format!("{input}: {e}"))?;
    let mut stats = Stats::default();
    for (line, text) in (1..).zip(BufReader::new(file).split(b'\n')) {
        let text = text.map_err(|e| format!("{input}: {e}"))?;
        let r = parse(&text).map_err(|e| format!("{input}: {e}"))?;
        stats.add(line, plausible(&r).then_some(r));
    }
    Ok(stats)
}

/// Writes `n` readings to `path`, the same for the same `n`.
fn generate(n: u64, path: &str) -> std::io::Result<()> {
    const STATIONS: [&str; 6] = ["Oslo", "Lagos", "Lima", "Perth", "Quito", "Vostok"];
    let mut out = std::io::BufWriter::new(File::create(path)?);
    let mut state = 0x5eed_u64;
    for i in 0..n {
        // splitmix64: deterministic, no dependency.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let station = STATIONS[(z % STATIONS.len() as u64) as usize];
        // Mostly -40.0 to +45.0 °C; one in 500 is a broken sensor's 999.9,
        // and one record, seven tenths into the file, is 59.8 °C.
        let tenths = if i == n * 7 / 10 {
            598
        } else if (z >> 8).is_multiple_of(500) {
            9999
        } else {
            ((z >> 16) % 851) as i32 - 400
        };
        writeln!(out, "{station};{tenths}")?;
    }
    out.flush()
}

fn usage(message: &str) -> ExitCode {
    eprintln!("byte_ranges: {message}");
    eprintln!(
        "usage: byte_ranges --input FILE [--mode plain|serial|pipeline|multiprocess] \
         [--workers N] [--replicas none|auto|STAGE=N] [--batch-size N] [--counted] [--report FILE]\n       \
         byte_ranges --generate N FILE"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (registry, key) = registry();
    parpipe::worker::dispatch_if_worker(&registry);

    let mut args = match common::parse(std::env::args().skip(1).collect(), &["--counted"]) {
        Ok(common::Command::Run(args)) => args,
        Ok(common::Command::Generate { records, path }) => {
            return common::generate_and_exit("byte_ranges", records, &path, generate)
        }
        Err(message) => return usage(&message),
    };
    let mode = args.mode.clone();
    let result = match mode.as_str() {
        "plain" => plain(&args.input),
        _ if args.parpipe_mode() => common::run_parpipe(
            &registry,
            &key,
            &Params {
                input: args.input.clone(),
                counted: args.has("--counted"),
            },
            &args,
        ),
        other => return usage(&format!("unknown mode '{other}'")),
    };
    let result = result.map(|stats| {
        eprintln!(
            "byte_ranges: {} chunks cut by bytes, {} by counting lines",
            CUT_BY_BYTES.load(Ordering::Relaxed),
            CUT_COUNTED.load(Ordering::Relaxed)
        );
        stats.to_json()
    });
    common::finish("byte_ranges", result)
}
