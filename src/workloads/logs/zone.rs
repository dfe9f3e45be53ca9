//! `--tz`: the zone of the `logs` time buckets (docs/logs-workload.md §4a,
//! rule 1). A line's UTC time becomes a local wall-clock time, whose hour
//! and day are the buckets; `records.jsonl` keeps UTC.
//!
//! IANA names come from the time-zone database built into the binary
//! (jiff's bundled copy), never from the machine's files, so a worker on
//! another machine buckets a line exactly as the coordinator would.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The zone given to `--tz`, checked.
#[derive(Debug, Clone)]
pub enum Zone {
    /// UTC (the default): buckets as before `--tz` existed.
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// An IANA zone.
    Named(TimeZone),
}

/// The largest fixed offset `--tz` takes: 23:59.
const MAX_OFFSET: i32 = 23 * 3600 + 59 * 60;

impl Zone {
    /// Reads `UTC`, an IANA name (`Europe/Berlin`) or a fixed offset
    /// (`+02:00`, `-0530`). The error says what was expected.
    pub fn parse(text: &str) -> Result<Zone, String> {
        if text == "UTC" {
            return Ok(Zone::Utc);
        }
        if let Some(sign) = text.strip_prefix(['+', '-']).map(|_| text.as_bytes()[0]) {
            return fixed_offset(&text[1..])
                .map(|secs| Zone::Fixed(if sign == b'-' { -secs } else { secs }))
                .ok_or_else(|| {
                    format!("time zone '{text}': expected an offset +HH:MM or -HH:MM (hours 00-23, minutes 00-59)")
                });
        }
        TimeZone::get(text).map(Zone::Named).map_err(|_| {
            format!(
                "time zone '{text}': expected UTC, an IANA zone name such as Europe/Berlin, or an offset such as +02:00"
            )
        })
    }

    /// The name `summary.json` shows as `time_zone`: `UTC`, the IANA name,
    /// or the offset as `+HH:MM`.
    pub fn label(&self) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Fixed(secs) => {
                let sign = if *secs < 0 { '-' } else { '+' };
                let abs = secs.unsigned_abs();
                format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
            }
            Zone::Named(tz) => tz.iana_name().unwrap_or("UTC").to_string(),
        }
    }
}

/// `HH:MM` or `HHMM`, hours 00–23 and minutes 00–59, in seconds.
fn fixed_offset(t: &str) -> Option<i32> {
    let b = t.as_bytes();
    let (h, m) = match b.len() {
        5 if b[2] == b':' => (&b[0..2], &b[3..5]),
        4 => (&b[0..2], &b[2..4]),
        _ => return None,
    };
    let two = |d: &[u8]| -> Option<i32> {
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| i32::from(d[0] - b'0') * 10 + i32::from(d[1] - b'0'))
    };
    let (h, m) = (two(h)?, two(m)?);
    let secs = h * 3600 + m * 60;
    (h <= 23 && m <= 59 && secs <= MAX_OFFSET).then_some(secs)
}

/// Turns UTC seconds into local wall-clock seconds, remembering the span
/// of time over which the last offset looked up holds: lines come mostly
/// in time order, so nearly every line is answered without a lookup.
#[derive(Debug, Clone)]
pub struct LocalClock {
    zone: Zone,
    /// `[from, until)` in UTC seconds, and the offset valid there.
    cached: Option<(i64, i64, i64)>,
}

impl LocalClock {
    /// A clock for `zone`.
    pub fn new(zone: Zone) -> LocalClock {
        LocalClock { zone, cached: None }
    }

    /// `utc` (Unix seconds) as local wall-clock seconds since the epoch.
    #[inline]
    pub fn local(&mut self, utc: i64) -> i64 {
        match &self.zone {
            Zone::Utc => utc,
            Zone::Fixed(secs) => utc + i64::from(*secs),
            Zone::Named(tz) => {
                if let Some((from, until, offset)) = self.cached {
                    if (from..until).contains(&utc) {
                        return utc + offset;
                    }
                }
                let (from, until, offset) = offset_span(tz, utc);
                self.cached = Some((from, until, offset));
                utc + offset
            }
        }
    }
}

/// The offset of `tz` at `utc` and the UTC span `[from, until)` around it
/// with no transition. Times outside the database's range (years before
/// -9999 or after 9999, which a parsed line can reach only at its edges)
/// take the offset at the nearest end of the range.
fn offset_span(tz: &TimeZone, utc: i64) -> (i64, i64, i64) {
    let clamped = utc.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    let ts = Timestamp::from_second(clamped).unwrap_or(Timestamp::UNIX_EPOCH);
    let offset = i64::from(tz.to_offset(ts).seconds());
    let in_range = clamped == utc;
    // A transition exactly at `ts` belongs to the span starting there.
    let from = tz
        .preceding(
            ts.checked_add(jiff::SignedDuration::from_secs(1))
                .unwrap_or(ts),
        )
        .next()
        .map_or(i64::MIN, |t| t.timestamp().as_second());
    let until = tz
        .following(ts)
        .next()
        .map_or(i64::MAX, |t| t.timestamp().as_second());
    if in_range {
        (from, until, offset)
    } else {
        (utc, utc.saturating_add(1), offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_offsets_are_read_and_bad_ones_refused() {
        assert!(matches!(Zone::parse("UTC"), Ok(Zone::Utc)));
        assert_eq!(Zone::parse("+02:00").unwrap().label(), "+02:00");
        assert_eq!(Zone::parse("-0530").unwrap().label(), "-05:30");
        assert_eq!(Zone::parse("+00:00").unwrap().label(), "+00:00");
        assert_eq!(
            Zone::parse("Europe/Berlin").unwrap().label(),
            "Europe/Berlin"
        );
        for bad in [
            "+24:00",
            "+02:60",
            "+2:00",
            "02:00",
            "Mars/Olympus",
            "",
            "+02:0x",
        ] {
            let e = Zone::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn berlin_local_time_follows_summer_time_both_ways() {
        let mut clock = LocalClock::new(Zone::parse("Europe/Berlin").unwrap());
        // 2024-03-31 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST.
        let spring = 1_711_846_800;
        assert_eq!(clock.local(spring - 1) - (spring - 1), 3600);
        assert_eq!(clock.local(spring) - spring, 7200);
        // 2024-10-27 01:00 UTC: back from 03:00 CEST to 02:00 CET; the
        // local hour 02 happens twice.
        let autumn = 1_729_990_800;
        assert_eq!(clock.local(autumn - 1) - (autumn - 1), 7200);
        assert_eq!(clock.local(autumn) - autumn, 3600);
        assert_eq!(
            (clock.local(autumn - 1800)).div_euclid(3600),
            (clock.local(autumn + 1800)).div_euclid(3600)
        );
        // Out of time order, and far out of range: no panic, an offset.
        assert_eq!(clock.local(spring) - spring, 7200);
        let _ = clock.local(i64::MIN / 2);
        let _ = clock.local(253_402_300_800 + 3600);
        let mut fixed = LocalClock::new(Zone::parse("-05:30").unwrap());
        assert_eq!(fixed.local(0), -19_800);
    }
}
