//! Telling whether an input file stayed the same while it was read: what a
//! regular file looked like when it was opened (length, modification time,
//! identity) and how many bytes were read from it, checked when reading
//! reaches its end. A file truncated, rewritten, or replaced during a run
//! then fails the run, with the same words multiprocess mode uses
//! ("the file shrank during the run", `ranges/`; "the file changed during
//! the run", `file_range.rs`), instead of giving the counts of whatever
//! happened to be read.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// A regular input file as it was at open.
pub(super) struct Watch {
    path: PathBuf,
    /// The opened file itself (a second handle): its length now.
    file: File,
    len: u64,
    modified: Option<SystemTime>,
    id: Option<(u64, u64)>,
    /// Bytes read from the file so far (by the [`Counted`] reader).
    read: Arc<AtomicU64>,
    /// Plain text: every byte up to the end must be read. (A gzip decoder
    /// may stop before the last byte, so only the other checks apply.)
    pub(super) plain: bool,
}

/// A reader that counts the bytes it hands out.
pub(super) struct Counted {
    inner: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(unix)]
fn identity(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<(u64, u64)> {
    None
}

impl Watch {
    /// Watches `file` (opened from `path`) if it is a regular file; returns
    /// the reader to read it through. Other files (pipes, devices) are
    /// returned unwatched: they have no length to hold on to.
    pub(super) fn open(
        path: PathBuf,
        file: File,
    ) -> io::Result<(Option<Watch>, Box<dyn Read + Send>)> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok((None, Box::new(file)));
        }
        let read = Arc::new(AtomicU64::new(0));
        let watch = Watch {
            path,
            file: file.try_clone()?,
            len: meta.len(),
            modified: meta.modified().ok(),
            id: identity(&meta),
            read: read.clone(),
            plain: true,
        };
        Ok((Some(watch), Box::new(Counted { inner: file, read })))
    }

    /// At the end of reading (or on a read error): why the file is not the
    /// one that was opened, if it is not.
    pub(super) fn changed(&self) -> Option<io::Error> {
        let why = |text: &str| {
            Some(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                text.to_string(),
            ))
        };
        let now = match self.file.metadata() {
            Ok(m) => m,
            Err(e) => return Some(e),
        };
        let read = self.read.load(Ordering::Relaxed);
        if now.len() < self.len || (self.plain && read < self.len) {
            return why("the file shrank during the run");
        }
        match std::fs::metadata(&self.path) {
            Ok(at_path) if identity(&at_path) == self.id => {}
            _ => return why("the file was replaced or removed during the run"),
        }
        if now.len() != self.len || now.modified().ok() != self.modified {
            return why("the file changed during the run");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::LineBatch;
    use super::super::input::{InputSpec, LineReader};
    use std::io::Write;
    use std::path::Path;

    /// 20,000 lines of 64 bytes: well beyond one read buffer.
    fn big(path: &Path) {
        let line = format!("{}\n", "x".repeat(63));
        std::fs::write(path, line.repeat(20_000)).unwrap();
    }

    /// Reads one line, lets `meddle` act on the file, reads on to the end.
    fn read_with(path: &Path, meddle: impl FnOnce(&Path)) -> Result<u64, String> {
        let mut reader = LineReader::new(vec![InputSpec::File(path.to_path_buf())]);
        let mut batch = LineBatch::default();
        let mut lines = reader
            .fill(&mut batch, 1, usize::MAX)
            .map_err(|e| e.to_string())? as u64;
        meddle(path);
        loop {
            batch = LineBatch::default();
            match reader.fill(&mut batch, 1000, usize::MAX) {
                Ok(0) => return Ok(lines),
                Ok(n) => lines += n as u64,
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn an_unchanged_file_reads_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        big(&path);
        assert_eq!(read_with(&path, |_| {}), Ok(20_000));
    }

    #[test]
    fn a_file_truncated_while_read_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        for keep in [0u64, 64 * 5_000, 64 * 5_000 + 10] {
            big(&path);
            let err = read_with(&path, |p| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(keep)
                    .unwrap()
            })
            .unwrap_err();
            assert!(
                err.starts_with(&format!("input '{}' line ", path.display())),
                "{err}"
            );
            assert!(
                err.ends_with("read error: the file shrank during the run"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_file_replaced_or_rewritten_while_read_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let other = dir.path().join("b.log");
        big(&path);
        let err = read_with(&path, |p| {
            big(&other);
            std::fs::rename(&other, p).unwrap();
        })
        .unwrap_err();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.ends_with("the file was replaced or removed during the run"),
            "{err}"
        );
        big(&path);
        let err = read_with(&path, |p| {
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"one more line\n").unwrap();
        })
        .unwrap_err();
        assert!(err.ends_with("the file changed during the run"), "{err}");
    }

    #[test]
    fn a_truncated_gzip_file_reports_the_truncation() {
        use flate2::{write::GzEncoder, Compression};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log.gz");
        let mut text = Vec::new();
        for i in 0..200_000u32 {
            // Varied lines, so the compressed file is well beyond one buffer.
            writeln!(text, "{:x} {}", i.wrapping_mul(2_654_435_761), i).unwrap();
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&text).unwrap();
        let bytes = gz.finish().unwrap();
        assert!(bytes.len() > 1 << 19, "{}", bytes.len());
        std::fs::write(&path, &bytes).unwrap();
        let half = bytes.len() as u64 / 2;
        let err = read_with(&path, |p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(half)
                .unwrap()
        })
        .unwrap_err();
        assert!(err.ends_with("the file shrank during the run"), "{err}");
    }
}
