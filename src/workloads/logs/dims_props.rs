//! Property test of the dimensions' merge (docs/logs-workload.md §4a):
//! lines cut into batches anywhere, counted per batch, the partials merged
//! in any grouping (and through the wire encoding, as a worker's would
//! be), always give the same `summary.json` bytes.

use super::metrics::{LogsMetrics, LogsPartial, SummaryView};
use super::stages::{Enrich, Parse};
use crate::sources::LineBatch;
use crate::stage::{Aggregate, BatchInfo, Stage};
use proptest::prelude::*;

/// Lines from a small vocabulary, so that keys repeat and buckets fill.
fn line(i: u64, pick: &[u8; 6]) -> Vec<u8> {
    let clients = [
        "10.0.0.1",
        "2001:DB8::1",
        "[2001:db8::1]",
        "h.example",
        "10.0.0.2",
    ];
    let paths = ["/", "/a", "/b?x", "/missing"];
    let statuses = [200, 404, 500, 302, 403];
    let referers = ["-", "", "https://A.example/x", "http://b.example:8/"];
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "-",
    ];
    let hour = pick[5] % 30;
    format!(
        "{} - - [27/Oct/2024:{:02}:{:02}:00 +0000] \"GET {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
        clients[pick[0] as usize % clients.len()],
        hour % 24,
        i % 60,
        paths[pick[1] as usize % paths.len()],
        statuses[pick[2] as usize % statuses.len()],
        u64::from(pick[3]) * 100,
        referers[pick[3] as usize % referers.len()],
        agents[pick[4] as usize % agents.len()],
    )
    .into_bytes()
}

/// Counts `lines[range]` as one batch.
fn partial(lines: &[Vec<u8>], from: usize, to: usize, zone: &str) -> LogsPartial {
    let mut batch = LineBatch::new(from as u64 + 1);
    for l in &lines[from..to] {
        batch.push_line(l).unwrap();
    }
    let info = BatchInfo {
        seq: 0,
        first_line: from as u64 + 1,
        records: (to - from) as u64,
    };
    let parsed = Parse::default().process(batch, &info).unwrap();
    let enriched = Enrich::in_zone(zone).process(parsed, &info).unwrap();
    let mut metrics = LogsMetrics {
        view: SummaryView {
            top: 3,
            time_zone: zone.into(),
        },
        ..LogsMetrics::default()
    };
    let mut acc = metrics.empty();
    metrics.add(&mut acc, enriched, &info).unwrap();
    metrics.seal(&mut acc);
    acc
}

fn through_the_wire(p: LogsPartial) -> LogsPartial {
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&p, config).unwrap();
    bincode::serde::decode_from_slice(&bytes, config).unwrap().0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_split_and_grouping_gives_the_same_summary(
        picks in proptest::collection::vec(any::<[u8; 6]>(), 1..120),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "-03:30"]),
        pairwise_from_the_right in any::<bool>(),
    ) {
        let lines: Vec<Vec<u8>> = picks.iter().enumerate().map(|(i, p)| line(i as u64, p)).collect();
        let whole = partial(&lines, 0, lines.len(), zone).summary().to_json();

        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(lines.len() + 1)).collect();
        bounds.extend([0, lines.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let parts: Vec<LogsPartial> = bounds
            .windows(2)
            .map(|w| through_the_wire(partial(&lines, w[0], w[1], zone)))
            .collect();
        let view = SummaryView { top: 3, time_zone: zone.into() };
        let merged = if pairwise_from_the_right {
            // (a + (b + (c + …))): later partials grouped first.
            let mut it = parts.into_iter().rev();
            let mut acc = it.next().unwrap();
            for earlier in it {
                let mut e = earlier;
                e.try_merge(acc).unwrap();
                acc = e;
            }
            acc
        } else {
            let mut acc = LogsPartial { view, ..LogsPartial::default() };
            for p in parts {
                acc.try_merge(p).unwrap();
            }
            acc
        };
        prop_assert_eq!(merged.summary().to_json(), whole);
    }
}
