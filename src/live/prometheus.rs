//! `/metrics`: the latest [`LiveStatus`] in the OpenMetrics text format
//! (encoded by prometheus-client at scrape time, from a [`Collector`]
//! reading the board, so the run itself updates nothing for Prometheus),
//! or in the Prometheus text format 0.0.4, by content negotiation.
//!
//! The metric names are a contract (dashboards and alerts depend on
//! them); `docs/live.md` lists them. Every family has HELP text, and a
//! unit where one applies (in its name, and as `# UNIT` in OpenMetrics).

use super::{LatencyHistogram, LiveBoard, LiveStatus, Traffic, LATENCY_BOUNDS_US};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4` (what `promtool check metrics`, the
    /// node_exporter textfile collector and older scrapers read).
    Text,
}

impl Format {
    /// The `Content-Type` of this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when it weighs
    /// `application/openmetrics-text` above `text/plain` (as Prometheus
    /// does), the text format otherwise (also with no header, `*/*`, or
    /// nothing this server speaks).
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in parts {
                if let Some(v) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open > text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The registry the server encodes on each scrape.
pub(crate) fn registry(board: LiveBoard) -> Registry {
    registry_of(board, true)
}

/// `process` false leaves out the `process_*` families: a file for
/// node_exporter's textfile collector must not repeat the names it
/// exports for itself, and describes a process that has ended.
fn registry_of(board: LiveBoard, process: bool) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatusCollector { board, process }));
    registry
}

/// Encodes the board's latest status.
#[derive(Debug)]
struct StatusCollector {
    board: LiveBoard,
    process: bool,
}

/// One family, its samples given as (labels, value).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: Vec<(Vec<(&str, String)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let kind = ConstCounter::new(0.0f64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in samples {
        ConstCounter::new(v.max(0.0)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family, its samples given as (labels, value).
fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: Vec<(Vec<(&str, String)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let kind = ConstGauge::new(0.0f64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled sample.
fn one(v: f64) -> Vec<(Vec<(&'static str, String)>, f64)> {
    vec![(Vec::new(), v)]
}

/// Resident memory of this process now (Linux `/proc/self/statm`), or the
/// run's peak where that cannot be read.
fn resident_bytes(status: Option<&LiveStatus>) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let pages = statm.and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    match pages {
        Some(p) if page > 0 => p * page as u64,
        _ => status.map_or(0, |s| s.report.peak_rss_bytes),
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.board.latest();
        let e = &mut encoder;
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;
        if self.process {
            counters(
                e,
                "process_cpu",
                "User and system CPU time this process has used.",
                Some(&seconds),
                one(crate::metrics::process_cpu_seconds()),
            )?;
            gauges(
                e,
                "process_resident_memory",
                "Resident memory of this process now.",
                Some(&bytes),
                one(resident_bytes(latest.as_ref()) as f64),
            )?;
        }
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        build.encode(e.encode_descriptor(
            "parpipe_build",
            "The parpipe build serving these metrics (always 1).",
            None,
            build.metric_type(),
        )?)?;
        gauges(
            e,
            "parpipe_run_start_time",
            "When the run started, since the Unix epoch.",
            Some(&seconds),
            one(self.board.started_unix()),
        )?;
        if let Some(traffic) = self.board.traffic() {
            encode_traffic(e, &traffic.now)?;
        }
        let Some(status) = latest else {
            let run = Info::new(vec![("run", self.board.run_id().to_string())]);
            run.encode(e.encode_descriptor(
                "parpipe_run",
                "The run these metrics describe (always 1): its id.",
                None,
                run.metric_type(),
            )?)?;
            return gauges(
                e,
                "parpipe_running",
                "1 while the run goes on, 0 once it ended.",
                None,
                one(1.0),
            );
        };
        encode_status(e, &self.board, &status)
    }
}

/// A histogram given by its counts (see [`LatencyHistogram`]).
#[derive(Debug)]
struct ConstHistogram<'a>(&'a LatencyHistogram);

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0;
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(h.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The `logs` workload's traffic so far (docs/live.md): requests per
/// status class, response bytes, and the request durations when the log
/// has them.
fn encode_traffic(e: &mut DescriptorEncoder, t: &Traffic) -> Result<(), std::fmt::Error> {
    let classes = t
        .status_classes
        .iter()
        .map(|(class, &n)| (vec![("status_class", class.clone())], n as f64))
        .collect();
    counters(
        e,
        "parpipe_logs_requests",
        "Requests counted from the log so far, per status class (2xx …).",
        None,
        classes,
    )?;
    counters(
        e,
        "parpipe_logs_response",
        "Response bytes summed over the requests counted so far.",
        Some(&Unit::Bytes),
        one(t.bytes as f64),
    )?;
    if let Some(h) = &t.latency_histogram {
        let metric = ConstHistogram(h);
        metric.encode(e.encode_descriptor(
            "parpipe_logs_request_duration",
            "Durations of the requests counted so far (the log's request time).",
            Some(&Unit::Seconds),
            metric.metric_type(),
        )?)?;
    }
    Ok(())
}

/// Everything that comes from a published status.
fn encode_status(
    e: &mut DescriptorEncoder,
    board: &LiveBoard,
    status: &LiveStatus,
) -> Result<(), std::fmt::Error> {
    let report = &status.report;
    let (seconds, bytes, ratio) = (Unit::Seconds, Unit::Bytes, Unit::Other("ratio".into()));
    let run = Info::new(vec![
        ("run", board.run_id().to_string()),
        ("pipeline", report.pipeline.clone()),
        ("mode", report.mode.as_str().to_string()),
    ]);
    run.encode(e.encode_descriptor(
        "parpipe_run",
        "The run these metrics describe (always 1): its id, pipeline and mode.",
        None,
        run.metric_type(),
    )?)?;
    let running = f64::from(u8::from(status.running));
    gauges(
        e,
        "parpipe_running",
        "1 while the run goes on, 0 once it ended.",
        None,
        one(running),
    )?;
    let failed = f64::from(u8::from(status.error.is_some()));
    gauges(
        e,
        "parpipe_run_failed",
        "1 once the run ended with an error, else 0.",
        None,
        one(failed),
    )?;
    gauges(
        e,
        "parpipe_run_elapsed",
        "Wall time of the run so far.",
        Some(&seconds),
        one(report.wall_seconds),
    )?;
    counters(
        e,
        "parpipe_records",
        "Records the source has produced so far.",
        None,
        one(report.records as f64),
    )?;
    gauges(
        e,
        "parpipe_peak_resident_memory",
        "Peak resident memory of the process running the pipeline (the coordinator in multiprocess mode).",
        Some(&bytes),
        one(report.peak_rss_bytes as f64),
    )?;
    let stage = |f: &dyn Fn(&crate::metrics::StageReport) -> f64| {
        report
            .stages
            .iter()
            .map(|s| (vec![("stage", s.name.clone())], f(s)))
            .collect::<Vec<_>>()
    };
    counters(
        e,
        "parpipe_stage_busy",
        "Time the stage spent in its own code (all replicas).",
        Some(&seconds),
        stage(&|s| s.busy_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_idle",
        "Time the stage waited for input (all replicas).",
        Some(&seconds),
        stage(&|s| s.idle_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_blocked",
        "Time the stage waited for downstream credit (all replicas).",
        Some(&seconds),
        stage(&|s| s.blocked_seconds),
    )?;
    counters(
        e,
        "parpipe_stage_records_in",
        "Records the stage received.",
        None,
        stage(&|s| s.records_in as f64),
    )?;
    counters(
        e,
        "parpipe_stage_records_out",
        "Records the stage produced.",
        None,
        stage(&|s| s.records_out as f64),
    )?;
    gauges(
        e,
        "parpipe_stage_replicas",
        "Actors (or workers) running the stage.",
        None,
        stage(&|s| s.replicas as f64),
    )?;
    gauges(
        e,
        "parpipe_stage_utilization",
        "Busy time over wall time and replicas, since the run started (0 to 1).",
        Some(&ratio),
        stage(&|s| s.utilization),
    )?;
    let bottleneck = report.bottleneck.as_ref().map(|b| b.stage.as_str());
    gauges(
        e,
        "parpipe_stage_bottleneck",
        "1 for the stage that limits the run (the highest utilization), 0 for the others.",
        None,
        stage(&|s| f64::from(u8::from(Some(s.name.as_str()) == bottleneck))),
    )?;
    let queue = |depth: bool| {
        status
            .queues
            .iter()
            .map(|q| {
                (
                    vec![("stage", q.stage.clone())],
                    if depth { q.depth } else { q.length } as f64,
                )
            })
            .collect::<Vec<_>>()
    };
    gauges(
        e,
        "parpipe_stage_queue_length",
        "Batches waiting in the stage's input queue now (pipeline mode).",
        None,
        queue(false),
    )?;
    gauges(
        e,
        "parpipe_stage_queue_depth",
        "Batches that may wait in the stage's input queue at most (pipeline mode).",
        None,
        queue(true),
    )?;
    encode_workers(e, status)
}

/// The per-worker families, labelled `worker="HOST/PID"`.
fn encode_workers(e: &mut DescriptorEncoder, status: &LiveStatus) -> Result<(), std::fmt::Error> {
    let (seconds, bytes) = (Unit::Seconds, Unit::Bytes);
    // The report's own name first: it stays once the worker has left,
    // as it has by the final state of a run.
    let name = |w: &crate::metrics::WorkerReport| {
        if !w.name.is_empty() {
            return w.name.clone();
        }
        status
            .liveness
            .iter()
            .find(|l| l.id == w.id && !l.name.is_empty())
            .map_or_else(|| format!("worker-{}", w.id), |l| l.name.clone())
    };
    let worker = |f: &dyn Fn(&crate::metrics::WorkerReport) -> f64| {
        status
            .report
            .workers
            .iter()
            .map(|w| (vec![("worker", name(w))], f(w)))
            .collect::<Vec<_>>()
    };
    counters(
        e,
        "parpipe_worker_chunks",
        "Chunks the worker completed.",
        None,
        worker(&|w| w.chunks as f64),
    )?;
    counters(
        e,
        "parpipe_worker_requeued_chunks",
        "Chunks taken back from the worker and run elsewhere.",
        None,
        worker(&|w| w.requeued_chunks as f64),
    )?;
    counters(
        e,
        "parpipe_worker_records",
        "Records in the chunks the worker completed.",
        None,
        worker(&|w| w.records as f64),
    )?;
    counters(
        e,
        "parpipe_worker_busy",
        "Time the worker spent processing chunks.",
        Some(&seconds),
        worker(&|w| w.busy_seconds),
    )?;
    gauges(
        e,
        "parpipe_worker_peak_resident_memory",
        "Peak resident memory of the worker process.",
        Some(&bytes),
        worker(&|w| w.peak_rss_bytes as f64),
    )?;
    let connected = status
        .liveness
        .iter()
        .map(|l| {
            (
                vec![(
                    "worker",
                    if l.name.is_empty() {
                        format!("worker-{}", l.id)
                    } else {
                        l.name.clone()
                    },
                )],
                f64::from(u8::from(l.connected)),
            )
        })
        .collect();
    gauges(
        e,
        "parpipe_worker_connected",
        "1 while the worker is connected, 0 once it left.",
        None,
        connected,
    )
}

/// The exposition text of `registry` in `format`.
pub(crate) fn render(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(match format {
        Format::OpenMetrics => text,
        Format::Text => to_text_format(&text),
    })
}

/// The final metrics of a run for node_exporter's textfile collector
/// (text format 0.0.4, without the `process_*` families).
pub(crate) fn final_text(board: &LiveBoard) -> Result<String, std::fmt::Error> {
    render(&registry_of(board.clone(), false), Format::Text)
}

/// OpenMetrics as written by prometheus-client, rewritten into the text
/// format 0.0.4: a counter's HELP and TYPE name its samples' `_total`
/// name, an info family becomes a gauge named `_info`, and `# UNIT` and
/// `# EOF` go (the unit stays in the name).
fn to_text_format(open_metrics: &str) -> String {
    let lines: Vec<&str> = open_metrics.lines().collect();
    let mut out = String::with_capacity(open_metrics.len());
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // prometheus-client writes HELP just before TYPE.
        let kind_of = |name: &str| {
            lines[i..]
                .iter()
                .find_map(|l| {
                    l.strip_prefix("# TYPE ")?
                        .strip_prefix(name)?
                        .strip_prefix(' ')
                })
                .unwrap_or("")
        };
        let renamed = |name: &str, kind: &str| match kind {
            "counter" => format!("{name}_total"),
            "info" => format!("{name}_info"),
            _ => name.to_string(),
        };
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name, kind_of(name))));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind_04 = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                k => k,
            };
            out.push_str(&format!("# TYPE {} {kind_04}\n", renamed(name, kind)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
