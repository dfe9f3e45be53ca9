//! What the cutter learns of its input files before it cuts them: whether
//! each can be cut by bytes at all ([`inspect`]: a regular, plain file
//! whose size can be trusted), a sample of its line length, and
//! [`estimate_lines`], the lines of an input told from its size.

use super::super::input::{InputError, InputSpec};
use super::{read_at, InputFile, ASSUMED_MEAN_LINE};
use crate::file_range::file_identity;
use crate::sources::split;
use std::fs::File;
use std::io;
use std::path::PathBuf;

/// Inputs up to this many bytes in all are sampled by [`estimate_lines`].
pub(super) const SAMPLE_UP_TO: u64 = 4 << 20;

/// Lines in `inputs`, estimated before the run reads them: their bytes
/// over a mean line length. `None` unless every input is a regular file
/// (not standard input) that exists now.
///
/// Up to 4 MiB in all (`SAMPLE_UP_TO`), the mean is that of the first
/// 64 KiB of the first file, and a file starting with the gzip magic gives
/// `None` (its lines cannot be told from its size). Larger inputs are not
/// opened at all: a `stat` each, 200 bytes a line (`ASSUMED_MEAN_LINE`),
/// and a name ending in `.gz` gives `None`. A file that says 0 bytes but
/// reads some (a `/proc` file) gives `None` too. The only use of the estimate is to tell a
/// small input from a large one, and a large input is then read only by
/// the run itself, from its start, as it would be without the estimate.
pub fn estimate_lines(inputs: &[InputSpec]) -> Option<u64> {
    let mut total = 0u64;
    let mut paths = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let InputSpec::File(path) = spec else {
            return None;
        };
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        if meta.len() == 0 {
            // Empty, or a pseudo-file (`/proc`) that says 0 bytes and has
            // lines: its lines cannot be told from its size.
            let file = File::open(path).ok()?;
            if !size_is_trustworthy(&file, 0).ok()? {
                return None;
            }
        }
        total = total.saturating_add(meta.len());
        paths.push(path);
    }
    if total > SAMPLE_UP_TO {
        let gz = |p: &&PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        return (!paths.iter().any(gz)).then(|| total.div_ceil(ASSUMED_MEAN_LINE));
    }
    let mut sample = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let file = File::open(path).ok()?;
        let mut head = vec![0; if i == 0 { 64 << 10 } else { 2 }];
        let got = read_at(&file, &mut head, 0).ok()?;
        if got >= 2 && head[..2] == [0x1f, 0x8b] {
            return None;
        }
        if i == 0 {
            head.truncate(got);
            sample = head;
        }
    }
    let lines = split::count(&sample) as u64;
    let last = split::last_end(&sample)? as u64;
    Some(total.div_ceil((last / lines.max(1)).max(1)))
}

/// The file at `path` if it is a regular file whose first bytes are not
/// the gzip magic; `Ok(None)` if it is something else or cannot be opened
/// (the stream reader then reports that, in its usual words). A file that
/// opened but changed while it was inspected is an error.
pub(super) fn inspect(path: &std::path::Path) -> Result<Option<InputFile>, InputError> {
    let Ok(canonical) = std::fs::canonicalize(path) else {
        return Ok(None);
    };
    // Asked before opening: opening a FIFO waits for its writer, and
    // closing it again would cost the stream reader the bytes (or the
    // writer itself, by SIGPIPE).
    if !std::fs::metadata(&canonical).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let Ok(file) = File::open(&canonical) else {
        return Ok(None);
    };
    let name = canonical.display().to_string();
    let changed = |source: io::Error| InputError::Read {
        input: name.clone(),
        line: 1,
        what: "read error",
        source: io::Error::new(
            source.kind(),
            format!("the file changed during the run (while it was inspected: {source})"),
        ),
    };
    let meta = file.metadata().map_err(changed)?;
    if !meta.is_file() {
        return Ok(None);
    }
    let (len, modified_nanos) = file_identity(&canonical).map_err(changed)?;
    if len != meta.len() {
        return Err(changed(io::Error::other(format!(
            "{} bytes, then {len}",
            meta.len()
        ))));
    }
    if !size_is_trustworthy(&file, len).map_err(changed)? {
        return Ok(None);
    }
    let mut head = [0u8; 2];
    let got = read_at(&file, &mut head, 0).map_err(changed)?;
    if got == 2 && head == [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    let unterminated =
        len > 0 && read_at(&file, &mut last, len - 1).map_err(changed)? == 1 && last[0] != b'\n';
    let fingerprint = crate::file_range::fingerprint(&file, len).map_err(changed)?;
    let path = canonical;
    Ok(Some(InputFile {
        name: path.display().to_string(),
        path,
        len,
        modified_nanos,
        fingerprint,
        unterminated,
    }))
}

/// Whether a regular file of `len` bytes (as `stat` says) holds exactly
/// that many: its last byte reads, and nothing reads past it. Files of
/// the kernel's pseudo-filesystems do not (`/proc` ones say 0 bytes and
/// have lines; `/sys` ones say 4096 and have fewer), nor does a file being
/// appended to: byte ranges cut from such a size would read other lines
/// than the stream reader, so they are read as a stream.
fn size_is_trustworthy(file: &File, len: u64) -> io::Result<bool> {
    let mut probe = [0u8; 1];
    if len > 0 && read_at(file, &mut probe, len - 1)? != 1 {
        return Ok(false);
    }
    Ok(read_at(file, &mut probe, len)? == 0)
}

/// Lines and bytes in the first 64 KiB of `f` (a sample of its line length).
pub(super) fn sample(f: &InputFile) -> (u64, u64) {
    let mut head = vec![0; (64 << 10).min(f.len as usize)];
    let got = File::open(&f.path).and_then(|file| read_at(&file, &mut head, 0));
    let head = &head[..got.unwrap_or(0)];
    let lines = split::count(head) as u64;
    match split::last_end(head) {
        Some(end) if lines > 0 => (lines, end as u64),
        _ => (0, 0),
    }
}
