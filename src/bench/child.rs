//! One child process of the bench: the command line of a mode run, starting
//! it, and reading back the report and `summary.json` it wrote. Several
//! children can be started before any is waited for (the bound runs its
//! parts at once).

use super::{BenchPlan, BenchWorkload, Column, Sample};
use crate::mode::Mode;
use anyhow::{bail, Context as _};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What a child wrote in its report: the keys shared by `parpipe run`'s
/// report.json and a baseline's report.
#[derive(Debug, Deserialize)]
pub(crate) struct ChildReport {
    pub(crate) wall_seconds: f64,
    pub(crate) records: u64,
    pub(crate) cpu_percent: f64,
    pub(crate) peak_rss_bytes: u64,
    /// Set (multiprocess mode) when `cpu_percent` already counts the
    /// workers.
    #[serde(default)]
    coordinator_cpu_percent: Option<f64>,
    #[serde(default)]
    workers: Vec<ChildWorker>,
    /// How the run executed (whether a parallel mode ran it inline).
    #[serde(default)]
    plan: Option<crate::plan::Plan>,
}

#[derive(Debug, Deserialize)]
struct ChildWorker {
    #[serde(default)]
    cpu_percent: f64,
    #[serde(default)]
    peak_rss_bytes: u64,
}

impl ChildReport {
    /// CPU % of the coordinator plus its workers (a multiprocess report
    /// counts them already; a baseline's workers are its own).
    pub(crate) fn total_cpu(&self) -> f64 {
        if self.coordinator_cpu_percent.is_some() {
            return self.cpu_percent;
        }
        self.cpu_percent + self.workers.iter().map(|w| w.cpu_percent).sum::<f64>()
    }

    /// Peak RSS of the coordinator plus its workers' peaks.
    pub(crate) fn total_rss(&self) -> u64 {
        self.peak_rss_bytes + self.workers.iter().map(|w| w.peak_rss_bytes).sum::<u64>()
    }

    /// The sample this report makes.
    pub(crate) fn sample(
        &self,
        workload: BenchWorkload,
        size: u64,
        column: Column,
        rep: usize,
    ) -> Sample {
        Sample {
            workload,
            size,
            column,
            rep,
            wall_seconds: self.wall_seconds,
            records: self.records,
            cpu_percent: self.total_cpu(),
            peak_rss_bytes: self.total_rss(),
            inline: self.plan.as_ref().is_some_and(crate::plan::Plan::inline),
        }
    }
}

/// How one child run ended.
pub(crate) enum Outcome {
    /// It ran: its report and the text of its summary.json.
    Measured(Box<ChildReport>, String),
    /// `parpipe run` said the mode is not available in this build.
    Unavailable(String),
}

/// A started child, with where it writes.
pub(crate) struct Running {
    child: Child,
    report: PathBuf,
    summary: PathBuf,
    what: String,
}

impl BenchPlan {
    /// `parpipe run` of one mode on one input (`records` counts matrix
    /// tasks; logs read `input`), with `extra` flags.
    pub(crate) fn mode_command(
        &self,
        workload: BenchWorkload,
        mode: Mode,
        records: u64,
        input: &Path,
        extra: &[String],
    ) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args([
            "run",
            "--workload",
            workload.as_str(),
            "--mode",
            mode.as_str(),
        ]);
        match workload {
            BenchWorkload::Logs => cmd.arg("--input").arg(input),
            BenchWorkload::Matrix => cmd.args([
                "--records",
                &records.to_string(),
                "--matrix-size",
                &self.matrix_size.to_string(),
            ]),
        };
        cmd.args(extra);
        cmd
    }

    /// Starts `cmd` writing into `dir` (cleared of an older report and
    /// summary first).
    pub(crate) fn start(
        &self,
        mut cmd: Command,
        dir: &Path,
        what: String,
    ) -> anyhow::Result<Running> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create '{}'", dir.display()))?;
        let report = dir.join("report.json");
        let summary = dir.join("summary.json");
        let _ = std::fs::remove_file(&report);
        let _ = std::fs::remove_file(&summary);
        cmd.arg("--out")
            .arg(dir)
            .arg("--report")
            .arg(&report)
            .arg("-q");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start '{}'", self.exe.display()))?;
        Ok(Running {
            child,
            report,
            summary,
            what,
        })
    }

    /// Starts `cmd` and waits for it.
    pub(crate) fn run_command(
        &self,
        cmd: Command,
        dir: &Path,
        what: String,
    ) -> anyhow::Result<Outcome> {
        self.start(cmd, dir, what)?.finish()
    }
}

impl Running {
    /// Waits for the child and reads what it wrote.
    pub(crate) fn finish(self) -> anyhow::Result<Outcome> {
        let out = self
            .child
            .wait_with_output()
            .with_context(|| format!("{}: cannot wait for the child", self.what))?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.code() == Some(2) && stderr.contains("not available") {
            return Ok(Outcome::Unavailable(stderr));
        }
        if !out.status.success() {
            bail!("{}: the child failed ({}): {stderr}", self.what, out.status);
        }
        let text = std::fs::read_to_string(&self.report)
            .with_context(|| format!("cannot read '{}'", self.report.display()))?;
        let parsed: ChildReport = serde_json::from_str(&text)
            .with_context(|| format!("bad report '{}'", self.report.display()))?;
        let summary_text = std::fs::read_to_string(&self.summary)
            .with_context(|| format!("cannot read '{}'", self.summary.display()))?;
        Ok(Outcome::Measured(Box::new(parsed), summary_text))
    }
}
