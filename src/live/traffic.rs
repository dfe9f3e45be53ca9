//! The traffic a workload reports while it runs ([`Traffic`]: requests,
//! status classes, top paths, requests per hour of log time), shown by the
//! dashboard's traffic panels next to the engine's telemetry, and a short
//! history of its rates ([`TrafficPoint`]).
//!
//! A workload that has traffic to show (the `logs` sink) sets it on the
//! run's [`LiveBoard`](super::LiveBoard) with
//! [`set_traffic`](super::LiveBoard::set_traffic); the dashboard serves
//! it as the `traffic` key of `/api/status` and of each event. Every list
//! is bounded and every text cut (see the constants), so the status stays
//! small whatever the log holds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most hour buckets a [`Traffic`] carries (the latest ones).
pub const TRAFFIC_HOURS: usize = 48;
/// Most paths a [`Traffic`] carries.
pub const TRAFFIC_PATHS: usize = 10;
/// Longest text (a path, an hour key) a [`Traffic`] carries, in bytes.
pub const TRAFFIC_TEXT_BYTES: usize = 200;
/// Points kept in the traffic history.
pub const TRAFFIC_HISTORY: usize = 480;
/// Shortest interval a point of the traffic history covers, in seconds
/// (480 points: at least 2 minutes of history).
pub const TRAFFIC_POINT_SECONDS: f64 = 0.25;

/// The traffic of a run so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// Lines read.
    pub lines: u64,
    /// Lines parsed (valid).
    pub parsed: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Requests counted (parsed lines no stage dropped).
    pub requests: u64,
    /// Bytes sent, summed over the requests.
    pub bytes: u128,
    /// Distinct clients.
    pub clients: u64,
    /// Requests per status class (`2xx` …).
    pub status_classes: BTreeMap<String, u64>,
    /// Requests per hour of log time (`YYYY-MM-DDTHH`), the latest
    /// [`TRAFFIC_HOURS`] hours that have requests, oldest first.
    pub hours: Vec<(String, u64)>,
    /// The most requested paths, most first (at most [`TRAFFIC_PATHS`]).
    pub top_paths: Vec<(String, u64)>,
    /// Median request duration, when the log has durations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the durations, when the log has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_us: Option<u64>,
    /// The durations as `/metrics` exposes them, when the log has them
    /// (not part of the JSON status).
    #[serde(skip)]
    pub latency_histogram: Option<LatencyHistogram>,
}

/// The upper bounds of `parpipe_logs_request_duration_seconds`, in
/// microseconds: Prometheus's default buckets, 5 ms to 10 s.
pub const LATENCY_BOUNDS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// A duration histogram at [`LATENCY_BOUNDS_US`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    /// Durations counted.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Per bound of [`LATENCY_BOUNDS_US`] the durations above the bound
    /// before it and at most this one, then those above every bound (not
    /// cumulated).
    pub counts: Vec<u64>,
}

/// One point of the traffic history: the rates over the interval that
/// ended at `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficPoint {
    /// Seconds since the run started.
    pub t: f64,
    /// Requests per second, per status class.
    pub per_class: BTreeMap<String, f64>,
}

/// What the dashboard serves as `traffic`: the latest [`Traffic`] and
/// its history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficView {
    /// The traffic so far.
    #[serde(flatten)]
    pub now: Traffic,
    /// Rates per status class over the last minutes.
    pub history: Vec<TrafficPoint>,
}

/// `text` cut to at most [`TRAFFIC_TEXT_BYTES`] on a character boundary,
/// with `…` when it was longer.
pub fn cut_text(text: &str) -> String {
    if text.len() <= TRAFFIC_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = TRAFFIC_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The history point between `before` (at `t0`) and `now` (at `t1`).
pub(crate) fn rate_point(
    before: &Traffic,
    t0: f64,
    now: &Traffic,
    t1: f64,
) -> Option<TrafficPoint> {
    let dt = t1 - t0;
    if dt <= 1e-6 {
        return None;
    }
    let per_class = now
        .status_classes
        .iter()
        .map(|(class, &n)| {
            let was = before.status_classes.get(class).copied().unwrap_or(0);
            // A tenth of a request per second is as fine as a chart
            // shows; shorter numbers keep each event small.
            let rate = n.saturating_sub(was) as f64 / dt;
            (class.clone(), (rate * 10.0).round() / 10.0)
        })
        .collect();
    Some(TrafficPoint {
        t: (t1 * 100.0).round() / 100.0,
        per_class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(TRAFFIC_TEXT_BYTES);
        let cut = cut_text(&long);
        assert!(cut.len() <= TRAFFIC_TEXT_BYTES + "…".len());
        assert!(cut.ends_with('…'));
        assert_eq!(cut_text("/a"), "/a");
    }

    #[test]
    fn rates_are_per_class_deltas_over_time() {
        let mut a = Traffic::default();
        a.status_classes.insert("2xx".into(), 10);
        let mut b = a.clone();
        b.status_classes.insert("2xx".into(), 30);
        b.status_classes.insert("5xx".into(), 4);
        let p = rate_point(&a, 1.0, &b, 3.0).unwrap();
        assert_eq!(p.t, 3.0);
        assert_eq!(p.per_class["2xx"], 10.0);
        assert_eq!(p.per_class["5xx"], 2.0);
        let p = rate_point(&a, 0.0, &b, 3.0).unwrap();
        assert_eq!((p.per_class["2xx"], p.per_class["5xx"]), (6.7, 1.3));
        assert!(rate_point(&a, 3.0, &b, 3.0).is_none());
    }
}
