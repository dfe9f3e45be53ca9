//! The machine's own N-way bound: N serial processes at once, each on 1/N
//! of the input (logs: consecutive lines of the generated file; matrix:
//! 1/N of the tasks), with nothing to share or merge. No split of the work
//! over N cores can beat it on that machine in that minute, so a parallel
//! mode's *fraction of the bound* (bound wall ÷ mode wall, paired within a
//! repetition) says how much of what the machine allowed the mode obtained.
//!
//! The bound's wall time is the slowest part's own reported wall time
//! (every column counts its child's wall time alike); records, CPU and
//! peak RSS are the parts' sums. Its parts' summaries cannot equal the
//! whole input's, so each part's `summary.json` must instead be identical
//! in every repetition.

use super::child::Outcome;
use super::{BenchPlan, BenchWorkload, Column, Sample};
use crate::mode::Mode;
use anyhow::{bail, Context as _};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

/// One part of the bound: its input file (logs) and its record count.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    input: PathBuf,
    records: u64,
    /// The part's summary.json as first seen; every later run must match.
    reference: Option<String>,
}

/// `size` split into `ways` counts as even as possible (the first ones one
/// larger), never more parts than records, never an empty part.
pub fn split_counts(size: u64, ways: usize) -> Vec<u64> {
    let ways = (ways.max(1) as u64).min(size.max(1));
    (0..ways)
        .map(|i| size / ways + u64::from(i < size % ways))
        .collect()
}

/// Copies consecutive lines of `input` into one file per count.
fn split_lines(input: &Path, counts: &[u64], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open '{}'", input.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut paths = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        let path = dir.join(format!("part-{}-of-{}.log", i + 1, counts.len()));
        let out = std::fs::File::create(&path)
            .with_context(|| format!("cannot create '{}'", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        for _ in 0..count {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            out.write_all(&line)?;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

impl BenchPlan {
    /// Prepares the bound's parts for one workload and size (for logs,
    /// writes the part files beside the input).
    pub(crate) fn bound_parts(
        &self,
        workload: BenchWorkload,
        size: u64,
        input: &Path,
    ) -> anyhow::Result<Vec<Part>> {
        let counts = split_counts(size, self.bound_ways);
        let inputs = match workload {
            BenchWorkload::Logs => {
                let dir = self
                    .out
                    .join("inputs")
                    .join(format!("{}-{size}-bound", workload.as_str()));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create '{}'", dir.display()))?;
                split_lines(input, &counts, &dir)?
            }
            BenchWorkload::Matrix => vec![input.to_path_buf(); counts.len()],
        };
        Ok(inputs
            .into_iter()
            .zip(counts)
            .map(|(input, records)| Part {
                input,
                records,
                reference: None,
            })
            .collect())
    }

    /// Runs every part at once and waits for all of them.
    pub(crate) fn run_bound(
        &self,
        workload: BenchWorkload,
        size: u64,
        rep: usize,
        parts: &mut [Part],
    ) -> anyhow::Result<Sample> {
        let mut running = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let dir = self.out.join("runs").join(format!(
                "{}-{size}-bound-{}-of-{}",
                workload.as_str(),
                i + 1,
                parts.len()
            ));
            let cmd = self.mode_command(workload, Mode::Serial, part.records, &part.input, &[]);
            let what = format!("{} bound part {} at {size}", workload.as_str(), i + 1);
            match self.start(cmd, &dir, what) {
                Ok(r) => running.push(r),
                Err(e) => {
                    // Leave no part running behind the error.
                    for r in running {
                        let _ = r.finish();
                    }
                    return Err(e);
                }
            }
        }
        // Wait for every part before judging any, so none outlives an error.
        let outcomes: Vec<anyhow::Result<Outcome>> =
            running.into_iter().map(|r| r.finish()).collect();
        let mut sample = Sample {
            workload,
            size,
            column: Column::Bound,
            rep,
            wall_seconds: 0.0,
            records: 0,
            cpu_percent: 0.0,
            peak_rss_bytes: 0,
            inline: false,
        };
        for (i, (outcome, part)) in outcomes.into_iter().zip(parts.iter_mut()).enumerate() {
            let Outcome::Measured(report, summary) = outcome? else {
                bail!("serial mode is not available, so the bound cannot run");
            };
            match &part.reference {
                None => part.reference = Some(summary),
                Some(r) if *r == summary => {}
                Some(_) => bail!(
                    "{} bound part {} at {size}: summary.json differs from the part's first run",
                    workload.as_str(),
                    i + 1
                ),
            }
            sample.wall_seconds = sample.wall_seconds.max(report.wall_seconds);
            sample.records += report.records;
            sample.cpu_percent += report.total_cpu();
            sample.peak_rss_bytes += report.total_rss();
        }
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_even_and_cover_the_size() {
        assert_eq!(split_counts(10, 3), vec![4, 3, 3]);
        assert_eq!(split_counts(10, 1), vec![10]);
        assert_eq!(split_counts(2, 4), vec![1, 1]);
        assert_eq!(split_counts(1_000_000, 2), vec![500_000, 500_000]);
        assert_eq!(split_counts(0, 2), vec![0]);
    }

    #[test]
    fn lines_are_split_in_order_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.log");
        std::fs::write(&input, "a\nb\nc\nd\ne").unwrap();
        let paths = split_lines(&input, &split_counts(5, 2), dir.path()).unwrap();
        let texts: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(texts, ["a\nb\nc\n", "d\ne"]);
    }
}
