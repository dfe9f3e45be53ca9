//! The live dashboard of the real binary in each mode: `/metrics` scraped
//! twice during a run and parsed by a real Prometheus parser (counters
//! grow), `/api/status` as JSON, and the page rendered by a real headless
//! Chromium (its DOM shows every stage and, in multiprocess mode, every
//! worker). The runs are long on purpose and killed once checked.

mod common;

use common::bin;
use common::live::get;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A run with a dashboard; killed on drop.
struct LiveRun {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a run that lasts far longer than the test, and waits for the
/// dashboard's announcement on stderr.
fn start(mode: &str, extra: &[&str]) -> LiveRun {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(bin())
        .args(["run", "-q", "--mode", mode, "--records", "2000000000"])
        .args(["--dashboard", "127.0.0.1:0", "--out", out.to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("parpipe exited before announcing the dashboard")
            .unwrap();
        if let Some(rest) = line.strip_prefix("parpipe: dashboard on http://") {
            break rest.trim().parse().unwrap();
        }
    };
    // Keep draining stderr so that the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    LiveRun {
        child,
        addr,
        _dir: dir,
    }
}

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (code, text) = get(addr, "/metrics");
    assert_eq!(code, 200, "{text}");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn sample(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// Scrapes until `pred` holds (the run publishes a few times a second),
/// for at most a minute.
fn scrape_until(
    addr: SocketAddr,
    what: &str,
    pred: impl Fn(&prometheus_parse::Scrape) -> bool,
) -> prometheus_parse::Scrape {
    let started = Instant::now();
    loop {
        let s = scrape(addr);
        if pred(&s) {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const STAGE_COUNTERS: [&str; 5] = [
    "parpipe_stage_busy_seconds_total",
    "parpipe_stage_idle_seconds_total",
    "parpipe_stage_blocked_seconds_total",
    "parpipe_stage_records_in_total",
    "parpipe_stage_records_out_total",
];

fn check_metrics_grow(mode: &str, extra: &[&str]) -> LiveRun {
    let run = start(mode, extra);
    let records = |s: &prometheus_parse::Scrape| sample(s, "parpipe_records_total", None);
    let first = scrape_until(run.addr, "records counted", |s| {
        records(s).unwrap_or(0.0) > 0.0
    });
    let before = records(&first).unwrap();
    let second = scrape_until(run.addr, "records grow", |s| records(s).unwrap() > before);
    for name in STAGE_COUNTERS {
        for stage in ["parse", "enrich", "metrics"] {
            let v = sample(&second, name, Some(("stage", stage)));
            assert!(
                v.is_some_and(|v| v >= 0.0),
                "{mode}: {name}{{stage={stage}}}"
            );
        }
    }
    let parse_in = |s: &prometheus_parse::Scrape| {
        sample(
            s,
            "parpipe_stage_records_in_total",
            Some(("stage", "parse")),
        )
        .unwrap_or(0.0)
    };
    let third = scrape_until(run.addr, "parse records grow", |s| {
        parse_in(s) > parse_in(&second)
    });
    let busy = |s: &prometheus_parse::Scrape| {
        sample(
            s,
            "parpipe_stage_busy_seconds_total",
            Some(("stage", "parse")),
        )
        .unwrap()
    };
    assert!(busy(&third) >= busy(&first), "{mode}: busy time went down");
    assert!(sample(&third, "process_cpu_seconds_total", None).unwrap() > 0.0);
    assert!(sample(&third, "process_resident_memory_bytes", None).unwrap() > 1e6);
    assert_eq!(sample(&third, "parpipe_running", None), Some(1.0));
    eprintln!(
        "{mode}: records {before} -> {}, parse in {} -> {}",
        records(&third).unwrap(),
        parse_in(&second),
        parse_in(&third)
    );

    let (code, json) = get(run.addr, "/api/status");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], mode);
    assert_eq!(v["running"], true);
    for key in [
        "wall_seconds",
        "records",
        "stages",
        "bottleneck",
        "workers",
        "cpu_percent",
    ] {
        assert!(!v[key].is_null(), "{mode}: /api/status lacks {key}");
    }
    run
}

#[test]
fn serial_metrics_grow_during_a_run() {
    check_metrics_grow("serial", &[]);
}

#[test]
fn pipeline_metrics_grow_and_show_queues() {
    let run = check_metrics_grow("pipeline", &[]);
    let s = scrape(run.addr);
    assert_eq!(
        sample(&s, "parpipe_stage_queue_depth", Some(("stage", "parse"))),
        Some(4.0)
    );
    assert!(sample(&s, "parpipe_stage_queue_length", Some(("stage", "metrics"))).is_some());
}

/// The `worker` labels of a family's samples.
fn workers(s: &prometheus_parse::Scrape, name: &str) -> Vec<(String, f64)> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter_map(|x| {
            let v = match x.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => return None,
            };
            Some((x.labels.get("worker")?.to_string(), v))
        })
        .collect()
}

#[test]
fn multiprocess_metrics_grow_with_a_row_per_worker() {
    let run = check_metrics_grow("multiprocess", &["--workers", "2"]);
    let s = scrape_until(run.addr, "both workers have results", |s| {
        let rows = workers(s, "parpipe_worker_chunks_total");
        rows.len() == 2 && rows.iter().all(|(_, v)| *v > 0.0)
    });
    // Workers are named HOST/PID, not by the coordinator's numbering.
    let names: Vec<String> = workers(&s, "parpipe_worker_chunks_total")
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    for w in &names {
        let (host, pid) = w.rsplit_once('/').unwrap_or_else(|| panic!("{w}"));
        assert!(!host.is_empty() && pid.parse::<u32>().is_ok(), "{w}");
    }
    assert_ne!(names[0], names[1]);
    let requeued = workers(&s, "parpipe_worker_requeued_chunks_total");
    for w in &names {
        assert!(requeued.iter().any(|(r, _)| r == w), "{w}");
    }
}

#[test]
fn a_non_loopback_dashboard_needs_a_token() {
    let out = Command::new(bin())
        .args(["run", "-q", "--records", "10", "--dashboard", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");
}

/// Debian's Chromium, if installed.
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The page's DOM after its scripts ran, as headless Chromium sees it.
fn rendered_dom(browser: &str, addr: SocketAddr) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // The page keeps an event stream open: stop after a fixed time.
            "--timeout=8000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{addr}/"))
        .output()
        .expect("cannot start chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_page_in_a_real_browser_shows_every_stage_and_worker() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: no chromium at /usr/bin/chromium (apt-get install chromium)");
        return;
    };
    for (mode, extra) in [
        ("pipeline", &[][..]),
        ("multiprocess", &["--workers", "2"][..]),
    ] {
        let run = start(mode, extra);
        // Wait until the run has numbers (and, for workers, results).
        scrape_until(run.addr, "workers have results", |s| {
            sample(s, "parpipe_records_total", None).unwrap_or(0.0) > 0.0
                && (mode != "multiprocess" || {
                    let rows = workers(s, "parpipe_worker_chunks_total");
                    rows.len() == 2 && rows.iter().all(|(_, v)| *v > 0.0)
                })
        });
        let dom = rendered_dom(browser, run.addr);
        for stage in ["generate", "parse", "enrich", "metrics", "write"] {
            assert!(
                dom.contains(&format!("data-stage=\"{stage}\"")),
                "{mode}: no row for stage {stage}; the page's state: {}",
                dom.split("id=\"state\"")
                    .nth(1)
                    .map_or("?", |s| &s[..s.len().min(80)])
            );
        }
        assert!(dom.contains(">running<"), "{mode}: state not shown");
        assert!(dom.contains("busy;"), "{mode}: no bottleneck sentence");
        if mode == "multiprocess" {
            for w in ["1", "2"] {
                assert!(
                    dom.contains(&format!("data-worker=\"{w}\"")),
                    "no row for worker {w}"
                );
            }
        }
        eprintln!(
            "{mode}: the page shows every stage{}",
            if mode == "multiprocess" {
                " and worker"
            } else {
                ""
            }
        );
    }
}
