//! The aggregate's renumbering, the chunk check of a worker's partial,
//! and a partial's round trip through the wire encoding.

use super::*;
use crate::stage::Aggregate;

#[test]
fn renumbering_moves_rejected_lines_and_refuses_overflow() {
    let agg = LogsMetrics::default();
    assert!(agg.renumbers());
    let mut p = LogsPartial {
        rejected_samples: vec![1, 7],
        ..LogsPartial::default()
    };
    agg.renumber(&mut p, 1000).unwrap();
    assert_eq!(p.rejected_samples, vec![1001, 1007]);
    assert!(agg.renumber(&mut p, u64::MAX).is_err());
    let emitting = LogsMetrics {
        emit_records: true,
        ..LogsMetrics::default()
    };
    assert!(
        !emitting.renumbers(),
        "rendered records hold line numbers as text"
    );
}

/// Four lines from line 101: one rejected (103), three parsed, one of
/// them dropped by a plugged-in stage.
fn chunk_partial() -> LogsPartial {
    let mut p = LogsPartial {
        lines: 4,
        parsed: 3,
        dropped: 1,
        rejected: 1,
        rejected_samples: vec![103],
        bots: 1,
        status: vec![0; 1000],
        ..LogsPartial::default()
    };
    p.status[200] = 2;
    p.methods.bump(b"GET", 2);
    p.hours.insert(480_000, 2);
    p.traffic.entry(480_000).or_default().requests = 2;
    p
}

#[test]
fn a_chunk_partial_must_account_for_exactly_its_lines() {
    let good = chunk_partial();
    good.check_chunk(101, 4).unwrap();
    assert!(good.check_chunk(101, 5).unwrap_err().contains("4 lines"));
    // Its rejected line must lie inside the chunk.
    assert!(good.check_chunk(104, 4).is_err());
    assert!(good.check_chunk(1, 4).is_err());
    type Alteration = (&'static str, fn(&mut LogsPartial));
    let altered: [Alteration; 10] = [
        ("more lines", |p| p.lines += 1),
        ("more parsed", |p| p.parsed += 1),
        ("more dropped than parsed", |p| p.dropped = 4),
        ("a status more", |p| p.status[404] += 1),
        ("a method more", |p| p.methods.bump(b"POST", 1)),
        ("an hour more", |p| *p.hours.entry(7).or_insert(0) += 1),
        ("an hourly request more", |p| {
            p.traffic.entry(7).or_default().requests += 1
        }),
        ("more bots than kept", |p| p.bots = 3),
        ("a sample too many", |p| p.rejected_samples.push(104)),
        ("a sample out of order", |p| {
            p.rejected += 1;
            p.parsed -= 1;
            p.dropped -= 1;
            p.status[200] -= 1;
            p.methods = Counts::default();
            p.methods.bump(b"GET", 1);
            p.hours.insert(480_000, 1);
            p.traffic.entry(480_000).or_default().requests = 1;
            p.rejected_samples = vec![104, 102];
        }),
    ];
    for (what, alter) in altered {
        let mut p = good.clone();
        alter(&mut p);
        assert!(p.check_chunk(101, 4).is_err(), "{what}");
    }
    // An uncounted chunk: the worker numbers its lines from 1.
    let mut p = good;
    p.rejected_samples = vec![3];
    p.check_chunk(1, 4).unwrap();
}

#[test]
fn partials_round_trip() {
    let mut p = LogsPartial {
        lines: 3,
        ..LogsPartial::default()
    };
    p.clients.bump(b"1.2.3.4", 2);
    p.paths.bump("/caf\u{e9}".as_bytes(), 1);
    p.methods.bump(b"", 7);
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&p, config).unwrap();
    let (back, used): (LogsPartial, usize) =
        bincode::serde::decode_from_slice(&bytes, config).unwrap();
    assert_eq!((back, used), (p.clone(), bytes.len()));
}
