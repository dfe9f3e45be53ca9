//! Snapshots: JSON outputs (`summary.json`, `report.json`) rewritten in
//! place while a run goes on (`--snapshot-every`), told apart from a final
//! result by their content and taken back when the run fails.
//!
//! - Every snapshot is a JSON object whose first key is `"final": false`
//!   ([`mark`]); a final result has no `final` key (its bytes are the
//!   contract's). A reader tells them apart without timestamps, even after
//!   a run killed with SIGKILL, which nothing can clean up after.
//! - This process remembers which file it placed at each path (device and
//!   inode). [`retract_snapshot`] removes the file at a path if it is still
//!   that snapshot — not a final result that replaced it, nor another
//!   program's file — so a run that fails or is interrupted leaves none.

use super::OutputError;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The snapshots this process placed: path, and the file's identity.
static PLACED: Mutex<Vec<(PathBuf, (u64, u64))>> = Mutex::new(Vec::new());

fn placed() -> std::sync::MutexGuard<'static, Vec<(PathBuf, (u64, u64))>> {
    PLACED.lock().unwrap_or_else(|p| p.into_inner())
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// `json` (an object, compact or pretty) with `"final": false` as its
/// first key. Anything else is returned as it is.
pub fn mark(json: &str) -> String {
    let Some(body) = json.strip_prefix('{') else {
        return json.to_string();
    };
    let sep = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    if body.starts_with('\n') {
        format!("{{\n  \"final\": false{sep}{body}")
    } else {
        format!("{{\"final\":false{sep}{body}")
    }
}

/// Writes `json` (a JSON object), [`mark`]ed as a snapshot, to `path`
/// atomically through its own temporary `.NAME.snapshot.parpipe-….tmp`
/// (never the one the final output is written through), and remembers it
/// for [`retract_snapshot`].
pub fn write_snapshot(path: &Path, json: &str) -> Result<(), OutputError> {
    super::write_atomic_tagged(path, mark(json).as_bytes(), ".snapshot")?;
    if let Some(id) = identity(path) {
        let mut placed = placed();
        placed.retain(|(p, _)| p != path);
        placed.push((path.to_path_buf(), id));
    }
    Ok(())
}

/// Removes the snapshot this process last placed at `path`, if the file
/// there is still that snapshot; forgets it either way. True if removed.
pub fn retract_snapshot(path: &Path) -> bool {
    let mut placed = placed();
    let Some(i) = placed.iter().position(|(p, _)| p == path) else {
        return false;
    };
    let (_, id) = placed.swap_remove(i);
    drop(placed);
    if identity(path) != Some(id) {
        return false;
    }
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot remove the snapshot '{}': {e}", path.display());
            false
        }
    }
}

/// [`retract_snapshot`] for every snapshot this process placed; returns
/// the paths removed.
pub fn retract_snapshots() -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = placed().iter().map(|(p, _)| p.clone()).collect();
    paths.into_iter().filter(|p| retract_snapshot(p)).collect()
}
