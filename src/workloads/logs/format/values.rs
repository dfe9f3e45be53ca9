//! Field values shared by the log formats (docs/log-formats.md, "Values"):
//! times (CLF, ISO 8601, W3C date and time, Unix seconds), byte counts,
//! status codes and durations, each read exactly from its bytes.

use crate::workloads::logs::parse::month;
use crate::workloads::logs::time::{days_in_month, unix_seconds};

/// Two ASCII digits as a number.
fn d2(s: &[u8]) -> Option<u32> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

/// Unix seconds for a checked civil date-time, minus `offset` seconds.
fn civil(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, offset: i64) -> Option<i64> {
    if y == 0 || mo == 0 || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(unix_seconds(i64::from(y), mo, d, h, mi, s) - offset)
}

/// `DD/Mon/YYYY:HH:MM:SS +hhmm` (nginx `$time_local`, the inside of
/// Apache's `%t`): exactly 26 bytes, the rules of docs/logs-workload.md §2.
pub fn clf_time(t: &[u8]) -> Option<i64> {
    if t.len() != 26 || t[2] != b'/' || t[6] != b'/' || t[11] != b':' || t[14] != b':' {
        return None;
    }
    if t[17] != b':' || t[20] != b' ' {
        return None;
    }
    let year = d2(&t[7..9])? * 100 + d2(&t[9..11])?;
    let (oh, om) = (d2(&t[22..24])?, d2(&t[24..26])?);
    if oh > 23 || om > 59 {
        return None;
    }
    let off = i64::from(oh * 3600 + om * 60);
    let off = match t[21] {
        b'+' => off,
        b'-' => -off,
        _ => return None,
    };
    let (d, mo) = (d2(&t[0..2])?, month(&t[3..6])?);
    let (h, mi, s) = (d2(&t[12..14])?, d2(&t[15..17])?, d2(&t[18..20])?);
    civil(year, mo, d, h, mi, s, off)
}

/// `YYYY-MM-DD` then `T` (or, with `sep`, that byte) then `HH:MM:SS`, an
/// optional fraction (`.` and digits, dropped), then `Z`, `+hh:mm`,
/// `-hh:mm`, `+hhmm`, `-hhmm`, or nothing (UTC).
pub fn iso_time(t: &[u8]) -> Option<i64> {
    if t.len() < 19 || t[4] != b'-' || t[7] != b'-' || !matches!(t[10], b'T' | b' ') {
        return None;
    }
    if t[13] != b':' || t[16] != b':' {
        return None;
    }
    let year = d2(&t[0..2])? * 100 + d2(&t[2..4])?;
    let (mo, d) = (d2(&t[5..7])?, d2(&t[8..10])?);
    let (h, mi, s) = (d2(&t[11..13])?, d2(&t[14..16])?, d2(&t[17..19])?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let off = match rest {
        b"" | b"Z" => 0,
        [sign @ (b'+' | b'-'), hh @ ..] if !hh.is_empty() => {
            let (oh, om) = match hh {
                [a, b, b':', c, d] | [a, b, c, d] => (d2(&[*a, *b])?, d2(&[*c, *d])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    civil(year, mo, d, h, mi, s, off)
}

/// W3C `date` (`YYYY-MM-DD`) and `time` (`HH:MM:SS`, optional fraction), UTC.
pub fn w3c_time(date: &[u8], time: &[u8]) -> Option<i64> {
    if date.len() != 10 || time.len() < 8 {
        return None;
    }
    let mut joined = [0u8; 19];
    joined[..10].copy_from_slice(date);
    joined[10] = b'T';
    joined[11..].copy_from_slice(&time[..8]);
    let rest = &time[8..];
    if !rest.is_empty()
        && (rest[0] != b'.' || rest.len() == 1 || !rest[1..].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    iso_time(&joined)
}

/// Unix seconds written as digits with an optional fraction (nginx
/// `$msec`, Caddy's `ts`); the fraction is dropped (floor for positive
/// times).
pub fn unix_time(t: &[u8]) -> Option<i64> {
    let int = match memchr::memchr(b'.', t) {
        Some(dot) => {
            if !t[dot + 1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            &t[..dot]
        }
        None => t,
    };
    if int.is_empty() || int.len() > 12 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(int).ok()?.parse().ok()
}

/// A decimal size: digits (leading zeros allowed, at most u64), or `-` for 0.
pub fn bytes(b: &[u8]) -> Option<u64> {
    if b == b"-" {
        return Some(0);
    }
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |v, &d| {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A status: exactly three ASCII digits.
pub fn status(s: &[u8]) -> Option<u16> {
    match s {
        [a, b, c] if s.iter().all(u8::is_ascii_digit) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// The unit a duration field is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Unit {
    /// Seconds, possibly with a fraction (`0.123`).
    Seconds,
    /// Milliseconds, possibly with a fraction.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

/// A duration in `unit` as whole microseconds: digits with an optional
/// `.fraction`; digits past the microsecond are dropped (truncation, so
/// the value never depends on floating point). `-`, an empty value and a
/// negative one (ALB's `-1`) are no duration.
pub fn duration_us(v: &[u8], unit: Unit) -> Option<u64> {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if int.is_empty() || int.len() > 15 || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let int: u64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    // Fraction digits that still count at microsecond resolution.
    let (scale, keep) = match unit {
        Unit::Seconds => (1_000_000, 6),
        Unit::Millis => (1_000, 3),
        Unit::Micros => (1, 0),
        Unit::Nanos => return Some(int / 1_000),
    };
    let mut us = int.checked_mul(scale)?;
    let mut place = scale;
    for &d in frac.iter().take(keep) {
        place /= 10;
        us += u64::from(d - b'0') * place;
    }
    Some(us)
}

/// A JSON number as written (`0.000929675`, `1646861401.5241024`, `-1`),
/// as the digits [`duration_us`] and [`unix_time`] read; `None` for a
/// negative one or an exponent.
pub fn json_number_text(n: &serde_json::Number) -> Option<String> {
    let s = n.to_string();
    (!s.starts_with('-') && !s.contains(['e', 'E'])).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = 971_186_136; // 2000-10-10T13:55:36Z
        assert_eq!(clf_time(b"10/Oct/2000:13:55:36 -0700"), Some(t + 7 * 3600));
        assert_eq!(clf_time(b"31/Apr/2000:13:55:36 -0700"), None);
        assert_eq!(iso_time(b"2000-10-10T13:55:36Z"), Some(t));
        assert_eq!(iso_time(b"2000-10-10T13:55:36.186641Z"), Some(t));
        assert_eq!(iso_time(b"2000-10-10T15:55:36+02:00"), Some(t));
        assert_eq!(iso_time(b"2000-10-10T12:55:36-0100"), Some(t));
        assert_eq!(iso_time(b"2000-10-10T13:55:36"), Some(t));
        assert_eq!(iso_time(b"2000-10-10T13:55:3"), None);
        assert_eq!(iso_time(b"2000-10-10T13:55:36+2"), None);
        assert_eq!(w3c_time(b"2000-10-10", b"13:55:36"), Some(t));
        assert_eq!(w3c_time(b"2000-10-10", b"13:55:36.5"), Some(t));
        assert_eq!(w3c_time(b"2000-10-10", b"13:55:36x"), None);
        assert_eq!(unix_time(b"971186136.999"), Some(t));
        assert_eq!(unix_time(b"-5"), None);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(bytes(b"-"), Some(0));
        assert_eq!(bytes(b"007"), Some(7));
        assert_eq!(bytes(b"18446744073709551616"), None);
        assert_eq!(status(b"404"), Some(404));
        assert_eq!(status(b"40"), None);
        assert_eq!(duration_us(b"0.123", Unit::Seconds), Some(123_000));
        assert_eq!(duration_us(b"0.000929675", Unit::Seconds), Some(929));
        assert_eq!(duration_us(b"15", Unit::Millis), Some(15_000));
        assert_eq!(duration_us(b"2.5", Unit::Millis), Some(2_500));
        assert_eq!(duration_us(b"1500", Unit::Micros), Some(1_500));
        assert_eq!(duration_us(b"1500000", Unit::Nanos), Some(1_500));
        assert_eq!(duration_us(b"-1", Unit::Seconds), None);
        assert_eq!(duration_us(b"-", Unit::Seconds), None);
        assert_eq!(duration_us(b"1.", Unit::Seconds), Some(1_000_000));
    }
}
