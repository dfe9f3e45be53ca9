//! The dashboard's traffic panels from the `logs` run's partial so far:
//! [`traffic`] builds the [`Traffic`] the sink sets on the live board, and
//! [`TrafficTap`] decides when (at a batch, as often as its cost allows,
//! and at the end).

use crate::live::{cut_text, LiveBoard, Traffic, TRAFFIC_HOURS, TRAFFIC_PATHS};
use crate::workloads::logs::metrics::LogsPartial;
use crate::workloads::logs::time::write_hour_bucket;
use std::time::{Duration, Instant};

/// The traffic is recomputed at a batch once the time since the last
/// computation is at least this many times what that computation took:
/// its cost (which grows with the distinct paths and hours, not with the
/// lines) then stays under about a tenth of the sink's time, whatever the
/// machine, and a batch that follows the last one closely (then a pause,
/// as in `--follow`) is still shown while the computation is cheap.
pub const TRAFFIC_COST_RATIO: u32 = 10;

/// The traffic of `p` (the run's partial so far).
pub fn traffic(p: &LogsPartial) -> Traffic {
    let mut t = Traffic {
        lines: p.lines,
        parsed: p.parsed,
        rejected: p.rejected,
        requests: p.parsed.saturating_sub(p.dropped),
        bytes: p.bytes,
        clients: p.clients.len() as u64,
        ..Traffic::default()
    };
    let mut classes = [0u64; 10];
    for (code, &n) in p.status.iter().enumerate() {
        classes[(code / 100) % 10] = classes[(code / 100) % 10].saturating_add(n);
    }
    for (class, &n) in classes.iter().enumerate() {
        if n > 0 {
            t.status_classes.insert(format!("{class}xx"), n);
        }
    }
    let mut hours: Vec<(i64, u64)> = p.hours.iter().map(|(&h, &n)| (h, n)).collect();
    if hours.len() > TRAFFIC_HOURS {
        let older = hours.len() - TRAFFIC_HOURS;
        hours.select_nth_unstable_by(older, |a, b| a.0.cmp(&b.0));
        hours.drain(..older);
    }
    hours.sort_unstable();
    let mut key = Vec::with_capacity(16);
    t.hours = hours
        .into_iter()
        .map(|(h, n)| {
            key.clear();
            write_hour_bucket(h.saturating_mul(3600), &mut key);
            (String::from_utf8_lossy(&key).into_owned(), n)
        })
        .collect();
    let mut paths: Vec<(&[u8], u64)> = p.paths.iter().collect();
    let order = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
    if paths.len() > TRAFFIC_PATHS {
        paths.select_nth_unstable_by(TRAFFIC_PATHS - 1, order);
        paths.truncate(TRAFFIC_PATHS);
    }
    paths.sort_unstable_by(order);
    t.top_paths = paths
        .into_iter()
        .map(|(k, n)| (cut_text(&String::from_utf8_lossy(k)), n))
        .collect();
    if p.latency.count > 0 {
        let l = p.latency.summary();
        t.latency_p50_us = Some(l.p50_us);
        t.latency_p99_us = Some(l.p99_us);
        t.latency_histogram = Some(crate::live::LatencyHistogram {
            count: p.latency.count,
            sum_seconds: p.latency.sum as f64 / 1e6,
            counts: p
                .latency
                .counts_at_or_below(&crate::live::LATENCY_BOUNDS_US),
        });
    }
    t
}

/// Sets the run's traffic on a live board: at a batch while the run goes
/// on, as often as [`TRAFFIC_COST_RATIO`] allows, and once at its end.
#[derive(Debug)]
pub struct TrafficTap {
    board: LiveBoard,
    /// When the last computation ended, and what it took.
    last: Option<(Instant, Duration)>,
}

impl TrafficTap {
    /// A tap setting the traffic on `board`.
    pub fn new(board: LiveBoard) -> Self {
        TrafficTap { board, last: None }
    }

    /// Whether a batch now should recompute the traffic.
    pub fn due(&self) -> bool {
        self.due_at(Instant::now())
    }

    /// Whether a batch at `now` should recompute the traffic.
    fn due_at(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|(at, took)| now.saturating_duration_since(at) >= took * TRAFFIC_COST_RATIO)
    }

    /// Sets the traffic of `p` (the run's partial so far, or its result).
    pub fn set(&mut self, p: &LogsPartial) {
        let start = Instant::now();
        self.board.set_traffic(traffic(p));
        let end = Instant::now();
        self.last = Some((end, end - start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_bounded_and_ranked() {
        let mut p = LogsPartial {
            lines: 120,
            parsed: 110,
            rejected: 10,
            dropped: 5,
            bytes: 7,
            status: vec![0; 1000],
            ..LogsPartial::default()
        };
        p.status[200] = 90;
        p.status[404] = 15;
        for i in 0..100u64 {
            p.hours.insert(480_000 + i as i64, 1);
            p.paths.bump(format!("/p{i:03}").as_bytes(), i % 7);
        }
        p.paths.bump("/<script>".repeat(100).as_bytes(), 50);
        let t = traffic(&p);
        assert_eq!((t.requests, t.lines, t.rejected), (105, 120, 10));
        assert_eq!(t.status_classes["2xx"], 90);
        assert_eq!(t.status_classes["4xx"], 15);
        assert_eq!(t.hours.len(), TRAFFIC_HOURS);
        assert_eq!(t.hours.last().unwrap().0, "2024-10-08T03");
        assert!(t.hours.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(t.top_paths.len(), TRAFFIC_PATHS);
        assert_eq!(t.top_paths[0].1, 50);
        assert!(t.top_paths[0].0.len() <= crate::live::TRAFFIC_TEXT_BYTES + 3);
        assert_eq!(t.top_paths[1], ("/p006".to_string(), 6));
        assert_eq!(t.latency_p50_us, None);
    }

    /// A batch right after a cheap computation, then a pause (`--follow`):
    /// the tap is due again after ten times the computation's cost, not
    /// after a fixed period, so that batch is shown.
    #[test]
    fn a_cheap_tap_is_due_again_soon_after_a_set() {
        let mut tap = TrafficTap::new(LiveBoard::new());
        assert!(tap.due(), "the first batch is always shown");
        let mut p = LogsPartial {
            lines: 3,
            parsed: 3,
            status: vec![0; 1000],
            ..LogsPartial::default()
        };
        p.status[200] = 3;
        tap.set(&p);
        let (at, took) = tap.last.unwrap();
        assert!(tap.due_at(at + took * TRAFFIC_COST_RATIO));
        assert!(took.is_zero() || !tap.due_at(at));
        assert_eq!(tap.board.traffic().unwrap().now.lines, 3);
    }
}
