//! Time series for the report's charts: `summary.json`'s time buckets
//! (`YYYY-MM-DDTHH` hours, `YYYY-MM-DD` days) regrouped so that a chart
//! has a readable number of bars, the gaps filled with zeros.
//!
//! Hours over at most two weeks stay hours; up to 400 days become days;
//! longer spans become months, then years. Past [`MAX_BARS`] bars (a
//! hostile file spanning millennia), neighbours are merged.

use super::html::Bar;
use crate::workloads::logs::time::{civil_from_unix, days_in_month, unix_seconds};

/// Most bars a chart draws.
pub const MAX_BARS: usize = 400;

/// How wide one bar is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

/// Reads `YYYY-MM-DDTHH` or `YYYY-MM-DD` as Unix seconds (its start).
pub fn parse_bucket(key: &str) -> Option<i64> {
    let (date, hour) = match key.split_once('T') {
        Some((d, h)) => (d, h.parse::<u32>().ok().filter(|h| *h < 24)?),
        None => (key, 0),
    };
    let mut parts = date.rsplitn(3, '-');
    let day: u32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let year: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(0..=10_000).contains(&year) {
        return None;
    }
    if day == 0 || day > days_in_month(year as u32, month) {
        return None;
    }
    Some(unix_seconds(year, month, day, hour, 0, 0))
}

/// The bucket of `secs` at `step`: its start (as a sortable index) and label.
fn bucket(secs: i64, step: Step) -> (i64, String) {
    let (y, m, d, h, _, _) = civil_from_unix(secs);
    match step {
        Step::Hour => (
            secs.div_euclid(3600),
            format!("{y:04}-{m:02}-{d:02} {h:02}:00"),
        ),
        Step::Day => (secs.div_euclid(86_400), format!("{y:04}-{m:02}-{d:02}")),
        Step::Month => (y * 12 + i64::from(m) - 1, format!("{y:04}-{m:02}")),
        Step::Year => (y, format!("{y:04}")),
    }
}

/// The label of bucket index `i` at `step` (the inverse of [`bucket`]).
fn label(i: i64, step: Step) -> String {
    match step {
        Step::Hour => bucket(i * 3600, step).1,
        Step::Day => bucket(i * 86_400, step).1,
        Step::Month => format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1),
        Step::Year => format!("{i:04}"),
    }
}

/// The step that keeps the span from `first` to `last` (Unix seconds)
/// readable.
fn step_for(first: i64, last: i64) -> Step {
    let hours = (last - first) / 3600 + 1;
    if hours <= 14 * 24 {
        Step::Hour
    } else if hours <= 400 * 24 {
        Step::Day
    } else if hours <= 400 * 24 * 31 {
        Step::Month
    } else {
        Step::Year
    }
}

/// The bars of `points` (bucket key, value) at a readable step, the
/// gaps filled with zeros; keys that are not time buckets are skipped.
/// `finest` is the finest step the keys allow (days cannot become hours).
pub fn regroup(points: &[(String, u128)], finest: Step) -> (Step, Vec<Bar>) {
    let mut parsed: Vec<(i64, u128)> = points
        .iter()
        .filter_map(|(k, v)| Some((parse_bucket(k)?, *v)))
        .collect();
    parsed.sort_unstable_by_key(|p| p.0);
    let (Some(first), Some(last)) = (parsed.first(), parsed.last()) else {
        return (finest, Vec::new());
    };
    let step = match (step_for(first.0, last.0), finest) {
        (Step::Hour, Step::Day) => Step::Day,
        (s, _) => s,
    };
    let mut sums: Vec<(i64, u128)> = Vec::new();
    for (secs, v) in &parsed {
        let (i, _) = bucket(*secs, step);
        match sums.last_mut() {
            Some((j, sum)) if *j == i => *sum = sum.saturating_add(*v),
            _ => sums.push((i, *v)),
        }
    }
    let (lo, hi) = (sums[0].0, sums[sums.len() - 1].0);
    let span = (hi - lo + 1) as usize;
    // Merge neighbours when even years are too many.
    let group = span.div_ceil(MAX_BARS).max(1) as i64;
    let mut bars: Vec<Bar> = Vec::with_capacity(span.min(MAX_BARS));
    let mut at = sums.iter().peekable();
    let mut i = lo;
    while i <= hi {
        let end = (i + group - 1).min(hi);
        let mut value = 0u128;
        while let Some((j, v)) = at.peek() {
            if *j > end {
                break;
            }
            value = value.saturating_add(*v);
            at.next();
        }
        let text = if group == 1 {
            label(i, step)
        } else {
            format!("{} – {}", label(i, step), label(end, step))
        };
        bars.push(Bar { label: text, value });
        i = end + 1;
    }
    (step, bars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(keys: &[(&str, u128)]) -> Vec<(String, u128)> {
        keys.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn hours_stay_hours_and_gaps_are_zero() {
        let (step, bars) = regroup(
            &pts(&[("2024-01-01T22", 3), ("2024-01-02T01", 5)]),
            Step::Hour,
        );
        assert_eq!(step, Step::Hour);
        let v: Vec<u128> = bars.iter().map(|b| b.value).collect();
        assert_eq!(v, [3, 0, 0, 5]);
        assert_eq!(bars[0].label, "2024-01-01 22:00");
        assert_eq!(bars[3].label, "2024-01-02 01:00");
    }

    #[test]
    fn long_spans_become_days_months_years() {
        let (step, bars) = regroup(
            &pts(&[
                ("2024-01-01T00", 1),
                ("2024-01-01T05", 2),
                ("2024-02-10T00", 4),
            ]),
            Step::Hour,
        );
        assert_eq!(step, Step::Day);
        assert_eq!(bars.len(), 41);
        assert_eq!((bars[0].value, bars[40].value), (3, 4));
        let (step, bars) = regroup(&pts(&[("2020-01-01", 1), ("2024-03-01", 1)]), Step::Day);
        assert_eq!(step, Step::Month);
        assert_eq!(bars.len(), 51);
        assert_eq!(bars[50].label, "2024-03");
        // Millennia: years, merged into at most MAX_BARS bars.
        let (step, bars) = regroup(
            &pts(&[("0001-01-01T00", 1), ("9999-12-31T23", 2)]),
            Step::Hour,
        );
        assert_eq!(step, Step::Year);
        assert!(bars.len() <= MAX_BARS);
        assert_eq!(bars.iter().map(|b| b.value).sum::<u128>(), 3);
    }

    #[test]
    fn bad_keys_are_skipped() {
        assert_eq!(parse_bucket("2024-02-30T00"), None);
        assert_eq!(parse_bucket("2024-01-01T24"), None);
        assert_eq!(parse_bucket("<b>"), None);
        assert!(parse_bucket("10000-01-01T00").is_some());
        let (_, bars) = regroup(&pts(&[("x", 1)]), Step::Hour);
        assert!(bars.is_empty());
    }
}
