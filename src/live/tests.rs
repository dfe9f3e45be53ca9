//! The dashboard server against a board published by hand: real sockets,
//! the exposition parsed by a real Prometheus parser.

use super::*;
use crate::metrics::{RunReport, StageKind, StageStats, WorkerReport};
use std::io::{Read, Write};
use std::time::Duration;

fn status(records: u64, wall: f64, running: bool) -> LiveStatus {
    let mut parse = StageStats::new("parse", StageKind::Stage);
    parse.record_batch(records, records, Duration::from_secs_f64(wall / 2.0));
    let mut source = StageStats::new("source", StageKind::Source);
    source.record_batch(0, records, Duration::from_millis(5));
    let mut report = RunReport::new(
        "logs",
        crate::Mode::Multiprocess,
        Duration::from_secs_f64(wall),
        &[source, parse],
        crate::metrics::ProcessStats {
            cpu_percent: 150.0,
            peak_rss_bytes: 20 << 20,
        },
    );
    report.workers = vec![WorkerReport {
        id: 1,
        address: "127.0.0.1:5000".into(),
        name: "node-a/4242".into(),
        chunks: records / 1000,
        records,
        busy_seconds: wall,
        requeued_chunks: 1,
        cpu_percent: 99.0,
        cpu_seconds: 0.99 * wall,
        peak_rss_bytes: 10 << 20,
        shipped_unreadable: 0,
        unreadable_inputs: Vec::new(),
    }];
    LiveStatus {
        running,
        report,
        queues: vec![QueueFill {
            stage: "parse".into(),
            length: 3,
            depth: 4,
        }],
        liveness: vec![WorkerLiveness {
            id: 1,
            name: "node-a/4242".into(),
            last_heard_seconds_ago: 0.2,
            connected: true,
        }],
        history: Vec::new(),
        error: None,
    }
}

/// A GET over a fresh connection; returns (status code, body).
pub(crate) fn get(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// [`get`] off the System's thread, so that the server keeps running.
async fn aget(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let (path, auth) = (path.to_string(), auth.map(str::to_string));
    tokio::task::spawn_blocking(move || get(addr, &path, auth.as_deref()))
        .await
        .unwrap()
}

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap()
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .unwrap_or_else(|| panic!("no sample {name}{{{}={}}}", label.0, label.1));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{name}: not a number"),
    }
}

#[test]
fn metrics_status_and_page_are_served_and_grow() {
    let board = LiveBoard::new();
    actix::System::new().block_on(async {
        let dash = Dashboard::start("127.0.0.1:0", board.clone(), None).unwrap();
        let addr = dash.addr();
        // The server runs on its own threads; requests come from this one.
        let (code, body) = aget(addr, "/api/status", None).await;
        assert_eq!(code, 200);
        assert!(body.contains("\"starting\":true"), "{body}");

        board.publish(status(10_000, 1.0, true));
        let first = parse_metrics(&aget(addr, "/metrics", None).await.1);
        board.publish(status(30_000, 2.0, true));
        let (code, text) = aget(addr, "/metrics", None).await;
        assert_eq!(code, 200);
        let second = parse_metrics(&text);
        for name in [
            "parpipe_stage_busy_seconds_total",
            "parpipe_stage_records_in_total",
            "parpipe_stage_records_out_total",
        ] {
            let (a, b) = (
                value(&first, name, ("stage", "parse")),
                value(&second, name, ("stage", "parse")),
            );
            assert!(b > a, "{name}: {a} then {b}");
        }
        for name in [
            "parpipe_stage_idle_seconds_total",
            "parpipe_stage_blocked_seconds_total",
        ] {
            value(&second, name, ("stage", "parse"));
        }
        assert_eq!(
            value(&second, "parpipe_stage_queue_length", ("stage", "parse")),
            3.0
        );
        assert_eq!(
            value(
                &second,
                "parpipe_worker_chunks_total",
                ("worker", "node-a/4242")
            ),
            30.0
        );
        assert_eq!(
            value(
                &second,
                "parpipe_worker_requeued_chunks_total",
                ("worker", "node-a/4242")
            ),
            1.0
        );
        assert!(second
            .samples
            .iter()
            .any(|s| s.metric == "process_cpu_seconds_total"));
        assert!(second
            .samples
            .iter()
            .any(|s| s.metric == "process_resident_memory_bytes"));

        let (_, json) = aget(addr, "/api/status", None).await;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["records"], 30_000);
        assert_eq!(v["mode"], "multiprocess");
        assert_eq!(v["running"], true);
        assert_eq!(v["history"].as_array().unwrap().len(), 1);
        assert!(v["stages"].is_array() && v["workers"].is_array() && v["bottleneck"].is_object());

        let (code, page) = aget(addr, "/", None).await;
        assert_eq!(code, 200);
        assert!(page.contains("<title>parpipe dashboard</title>"));
        assert!(
            !page.contains("http://") || !page.contains("<script src"),
            "no external assets"
        );
        dash.stop().await;
    });
}

#[test]
fn non_loopback_needs_a_token_and_checks_it() {
    let board = LiveBoard::new();
    assert!(matches!(
        super::check_dashboard_address("0.0.0.0:0", None),
        Err(DashboardError::NeedsToken(_))
    ));
    assert!(matches!(
        super::check_dashboard_address("localhost:80", None),
        Err(DashboardError::BadAddress { .. })
    ));
    let token = crate::protocol::Token::new("s3cret").unwrap();
    actix::System::new().block_on(async {
        let dash = Dashboard::start("0.0.0.0:0", board.clone(), Some(token)).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], dash.addr().port()));
        assert_eq!(aget(addr, "/metrics", None).await.0, 401);
        assert_eq!(aget(addr, "/metrics", Some("wrong")).await.0, 401);
        assert_eq!(aget(addr, "/api/status?token=wrong", None).await.0, 401);
        assert_eq!(aget(addr, "/metrics", Some("s3cret")).await.0, 200);
        assert_eq!(aget(addr, "/?token=s3cret", None).await.0, 200);
        dash.stop().await;
    });
}

#[test]
fn events_stream_each_publication_and_end_with_the_final_one() {
    let board = LiveBoard::new();
    actix::System::new().block_on(async {
        let dash = Dashboard::start("127.0.0.1:0", board.clone(), None).unwrap();
        board.publish(status(1_000, 1.0, true));
        let addr = dash.addr();
        // The stream is read on a thread while statuses are published here.
        let reader = tokio::task::spawn_blocking(move || get(addr, "/api/events", None));
        let mut rx = board.subscribe();
        // Published once the reader has had the first event's chance; the
        // stream ends only after a final status, so the reader returns.
        rx.borrow_and_update();
        board.publish(status(2_000, 2.0, true));
        board.publish(status(3_000, 3.0, false));
        let (code, body) = reader.await.unwrap();
        assert_eq!(code, 200);
        let events: Vec<serde_json::Value> = body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let last = events.last().expect("at least the final event");
        assert_eq!(last["running"], false, "{body}");
        assert_eq!(last["records"], 3_000);
        dash.stop().await;
    });
}
