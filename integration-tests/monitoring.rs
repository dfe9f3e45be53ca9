//! What a monitoring stack sees of a real run: the final state stays
//! scrapable for `--linger` seconds (`parpipe_running 0`, the final
//! totals) and a signal ends the linger at once; `--metrics-file` writes
//! the same for node_exporter's textfile collector; both formats by
//! content negotiation; `promtool check metrics` finds nothing to say;
//! workers are named `HOST/PID`; every PromQL expression of the Grafana
//! dashboard names only metrics parpipe exports; and a real Prometheus
//! server scraping at 1 s holds the final state after the run has ended.
//! `promtool` and `prometheus` come from Debian's `prometheus` package:
//! without them those checks say SKIPPED.

mod common;

use common::bin;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `parpipe run` with `args` and waits for its dashboard's address.
fn start(args: &[&str]) -> (Killed, SocketAddr) {
    let mut child = Command::new(bin())
        .args(["run", "-q"])
        .args(args)
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
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("parpipe: {line}");
        }
    });
    (Killed(child), addr)
}

/// A GET with the given headers over a fresh connection: (headers, body).
fn get(addr: SocketAddr, path: &str, headers: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: t\r\n{headers}\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.contains(" 200 "), "GET {path}: {text}");
    (head.to_ascii_lowercase(), body.to_string())
}

/// (name, labels, value) of every sample of a text-format exposition.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels.strip_suffix('}').unwrap();
            (name.to_string(), labels.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn value(text: &str, name: &str) -> f64 {
    samples(text)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .2
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// `promtool check metrics` on `text`, when promtool is installed.
fn promtool_check(what: &str, text: &str) {
    let Some(promtool) = which("promtool") else {
        eprintln!("SKIPPED: promtool check of {what}: no promtool (apt-get install prometheus)");
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics on {what}: {said}"
    );
    eprintln!("promtool check metrics on {what}: clean");
}

/// The metric names an expression selects: what is left once strings,
/// label matchers, ranges, grouping clauses, functions, keywords and
/// dashboard variables are set aside.
fn metric_names(expr: &str) -> Vec<String> {
    let mut text = expr.to_string();
    for pattern in [
        r#""[^"]*""#,
        r"\{[^}]*\}",
        r"\[[^\]]*\]",
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        r"\$[A-Za-z_]+",
    ] {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, " ")
            .into_owned();
    }
    let keywords = ["and", "or", "unless", "bool", "offset", "by", "without"];
    let ident = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    ident
        .find_iter(&text)
        .filter(|m| !text[m.end()..].trim_start().starts_with('('))
        .filter(|m| !keywords.contains(&m.as_str()))
        .filter(|m| m.start() == 0 || !text[..m.start()].ends_with(|c: char| c.is_ascii_digit()))
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Every PromQL expression of the Grafana dashboard (panel targets and
/// template queries).
fn dashboard_expressions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/parpipe.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    let label_values = regex::Regex::new(r"label_values\(([^,)]+)").unwrap();
    for var in json["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["definition"].as_str() {
            for c in label_values.captures_iter(q) {
                exprs.push(c[1].trim().to_string());
            }
        }
    }
    exprs
}

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[test]
fn the_final_state_lingers_in_both_formats_and_a_signal_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = dir.path().join("parpipe.prom");
    let (mut run, addr) = start(&[
        "--mode",
        "multiprocess",
        "--workers",
        "2",
        "--records",
        "60000",
        "--batch-size",
        "4096",
        "--dashboard",
        "127.0.0.1:0",
        "--linger",
        "600",
        "--metrics-file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    // Scraped until the run has ended (it then lingers for 10 minutes).
    let started = Instant::now();
    let text = loop {
        let (_, text) = get(addr, "/metrics", "");
        if value(&text, "parpipe_running") == 0.0 {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "never ended");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(value(&text, "parpipe_records_total"), 60000.0);
    assert_eq!(value(&text, "parpipe_run_failed"), 0.0);
    // The outputs are written before the linger, not after it.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["records"], 60000);

    // Workers by host and pid, their chunks adding up.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let chunks: Vec<_> = samples(&text)
        .into_iter()
        .filter(|(n, _, _)| n == "parpipe_worker_chunks_total")
        .collect();
    assert_eq!(chunks.len(), 2, "{text}");
    for (_, labels, _) in &chunks {
        let name = labels
            .strip_prefix("worker=\"")
            .and_then(|l| l.strip_suffix('"'))
            .unwrap();
        let (h, pid) = name.rsplit_once('/').unwrap();
        assert!(pid.parse::<u32>().is_ok(), "{name}");
        assert!(host.is_empty() || h == host, "{name} (host {host})");
    }
    assert!(chunks.iter().map(|c| c.2).sum::<f64>() > 0.0);

    // Content negotiation: the text format 0.0.4 by default and for
    // text/plain, OpenMetrics when preferred (as Prometheus asks).
    for accept in ["", "Accept: text/plain\r\n", "Accept: */*\r\n"] {
        let (head, body) = get(addr, "/metrics", accept);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{accept}: {head}"
        );
        assert!(!body.contains("# EOF") && !body.contains("# UNIT"));
    }
    for accept in [
        "Accept: application/openmetrics-text; version=1.0.0\r\n".to_string(),
        format!("Accept: {PROMETHEUS_ACCEPT}\r\n"),
    ] {
        let (head, body) = get(addr, "/metrics", &accept);
        assert!(
            head.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{accept}: {head}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(body.contains("# UNIT parpipe_stage_busy_seconds seconds"));
        assert!(body.contains("# TYPE parpipe_build info"));
    }

    // Every family has HELP, and promtool agrees.
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    for f in &families {
        assert!(text.contains(&format!("# HELP {f} ")), "no HELP for {f}");
    }
    for name in [
        "parpipe_build_info",
        "parpipe_run_info",
        "parpipe_stage_utilization_ratio",
        "parpipe_stage_bottleneck",
        "parpipe_worker_requeued_chunks_total",
        "process_resident_memory_bytes",
    ] {
        assert!(families.contains(name), "{name} not exported");
    }
    assert!(text.contains("parpipe_build_info{version=\""));
    promtool_check("a scrape", &text);

    // The textfile: the same final state, without process_* (node_exporter
    // has its own), written before the linger.
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&saved, "parpipe_running"), 0.0);
    assert_eq!(value(&saved, "parpipe_records_total"), 60000.0);
    assert!(!saved.contains("process_"), "{saved}");
    promtool_check("--metrics-file", &saved);

    // The Grafana dashboard asks only for what parpipe exports (a family
    // may have no sample in this mode, as queues in multiprocess mode).
    let exported: BTreeSet<String> = families.iter().map(|f| f.to_string()).collect();
    let exprs = dashboard_expressions();
    assert!(exprs.len() >= 10);
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(exported.contains(&name), "{expr}: {name} is not exported");
        }
    }

    // A signal ends the linger at once, and the run's exit status stands.
    let signalled = Instant::now();
    // SAFETY: kill has no memory effects; the pid is our own child's.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "still lingering 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert!(status.success(), "{status:?}");
}

#[test]
fn linger_and_metrics_file_are_checked_up_front() {
    for (value, dashboard) in [
        ("-1", true),
        ("3601", true),
        ("nan", true),
        ("soon", true),
        ("5", false),
    ] {
        let mut args = vec!["run", "--records", "10", "--linger", value];
        if dashboard {
            args.extend(["--dashboard", "127.0.0.1:0"]);
        }
        let out = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--linger {value}: {out:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/parpipe.prom");
    let out = Command::new(bin())
        .args(["run", "--records", "10", "--metrics-file"])
        .arg(&missing)
        .args(["--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics-file"));
    assert!(!dir.path().join("out/summary.json").exists());
}

/// A free port on loopback (bound, then released for the server).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An instant query's single value from Prometheus's HTTP API.
fn query(prometheus: SocketAddr, expr: &str) -> Option<f64> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (_, body) = get(prometheus, &format!("/api/v1/query?query={encoded}"), "");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{body}");
    let v = json["data"]["result"].as_array()?.first()?["value"][1].clone();
    v.as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_holds_the_final_state_after_the_run() {
    let Some(prometheus) = which("prometheus") else {
        eprintln!("SKIPPED: no prometheus server (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (target, web) = (free_port(), free_port());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: parpipe\n    scrape_interval: 1s\n    \
             static_configs: [{{targets: [\"127.0.0.1:{target}\"]}}]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _server = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let web = SocketAddr::from(([127, 0, 0, 1], web));
    let started = Instant::now();
    // Ready is not enough: Prometheus applies its targets a few seconds
    // after it starts, and a short run could end (linger included) before
    // the first scrape. Wait until it has tried the (still silent) target.
    while std::net::TcpStream::connect(web).is_err() || !ready(web) || !scraping(web) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus never ready: {}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = dir.path().join("out");
    let records = 300_000;
    let run = Command::new(bin())
        .args(["run", "-q", "--mode", "pipeline", "--records"])
        .arg(records.to_string())
        .args(["--dashboard", &format!("127.0.0.1:{target}")])
        .args(["--linger", "4", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    // The run has ended and its server is gone: what Prometheus holds.
    let running = query(web, "last_over_time(parpipe_running[10m])");
    let total = query(web, "last_over_time(parpipe_records_total[10m])");
    let scrapes = query(web, "count_over_time(parpipe_running[10m])");
    eprintln!(
        "prometheus after the run: parpipe_running {running:?}, parpipe_records_total {total:?}, {scrapes:?} scrapes"
    );
    assert_eq!(running, Some(0.0));
    assert_eq!(total, Some(records as f64));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["records"], records);
}

/// Whether Prometheus has tried to scrape its one target at least once.
fn scraping(web: SocketAddr) -> bool {
    let (_, body) = get(web, "/api/v1/targets", "");
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
        return false;
    };
    json["data"]["activeTargets"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["lastScrape"].as_str())
        .is_some_and(|when| !when.starts_with("0001-"))
}

fn ready(web: SocketAddr) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(web) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = write!(s, "GET /-/ready HTTP/1.0\r\nHost: t\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.contains(" 200 ")
}

#[test]
fn the_dashboard_check_sees_every_metric_an_expression_names() {
    assert_eq!(
        metric_names(
            r#"sum by (stage) (rate(a_total{instance=~"$instance"}[$__rate_interval])) / on(instance, job) group_left(version) b_info == 1"#
        ),
        ["a_total", "b_info"]
    );
    assert_eq!(metric_names("parpipe_running"), ["parpipe_running"]);
}
