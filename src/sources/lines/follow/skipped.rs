//! Telling that a rotation skipped a file: the path was rotated more than
//! once between two looks, so a whole generation of the log was written,
//! renamed away and never at the path when the reader looked.
//!
//! What it can tell: when the reader moves from the file it read (A) to
//! the one now at the path (C), a regular file next to them whose name
//! starts with the followed file's name (`app.log.1`, `app.log-20240101`)
//! and that was created (its birth time) after A was, no earlier than A
//! was last changed
//! (A's status change time: the rename that rotated it, or its last write)
//! and no later than C was created is a generation between them that was not read.
//!
//! What it cannot tell: a skipped file already deleted, moved to another
//! directory or renamed without the followed name as a prefix; one
//! compressed before the look (`.gz`, `.bz2`, `.xz`, `.zst`: the
//! compressed copy is a new file, indistinguishable from a later
//! compression of A); rotations by truncation (copytruncate), which leave
//! no file behind; file systems without birth times.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A file's status change time.
fn changed(meta: &Metadata) -> SystemTime {
    let (s, ns) = (meta.ctime(), meta.ctime_nsec());
    let at = Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32);
    SystemTime::UNIX_EPOCH + at
}

/// Names of compressed copies: never counted (see the module docs).
fn compressed(name: &str) -> bool {
    [".gz", ".bz2", ".xz", ".zst"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The files rotated away between `old` (the file read until now) and
/// `new` (the one now at `path`), with their sizes.
pub(super) fn skipped(path: &Path, old: &Metadata, new: &Metadata) -> Vec<(PathBuf, u64)> {
    let (Ok(new_born), Ok(old_born)) = (new.created(), old.created()) else {
        return Vec::new();
    };
    let old_changed = changed(old);
    let Some(prefix) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let id = |m: &Metadata| (m.dev(), m.ino());
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name == prefix || !name.starts_with(prefix) || compressed(name) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_file() || id(&meta) == id(old) || id(&meta) == id(new) {
            continue;
        }
        let Ok(born) = meta.created() else {
            continue;
        };
        // Inclusive: the kernel stamps times from a coarse clock, so a
        // rename and the creation right after it can carry the same time.
        // Older generations were created before A (strictly: they may
        // share A's tick only if they came first).
        if born > old_born && born >= old_changed && born <= new_born {
            found.push((entry.path(), meta.len()));
        }
    }
    found.sort();
    found
}
