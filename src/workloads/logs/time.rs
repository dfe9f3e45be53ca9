//! Calendar arithmetic and UTC time formatting for the `logs` workload:
//! proleptic Gregorian dates <-> Unix seconds, and the `YYYY-MM-DDTHH`
//! hour bucket / `YYYY-MM-DDTHH:MM:SSZ` timestamp writers.
//!
//! No chrono: the conversions are Howard Hinnant's branch-light
//! `days_from_civil` / `civil_from_days` algorithms, which are exact for the
//! whole i64-day range we care about (years 0..=10000 and far beyond), and
//! the writers append digits by hand so the hot path never allocates.

/// Seconds in one day.
const DAY: i64 = 86_400;

/// True when `year` is a leap year in the proleptic Gregorian calendar.
#[inline]
fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
///
/// Returns 0 for a month outside 1-12 so that callers validating untrusted
/// input can simply check `day <= days_in_month(..)` with `day >= 1`.
#[inline]
pub fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 for a civil date (Hinnant's `days_from_civil`).
#[inline]
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Shift the year so it starts in March: the leap day then falls at the
    // end of the (shifted) year and the month lengths follow a fixed pattern.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0 .. February = 11
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) for days since 1970-01-01 (Hinnant's
/// `civil_from_days`).
#[inline]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
                                  // The casts are lossless: doy - .. + 1 is in 1..=31 and mp in 0..=11.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since 1970-01-01T00:00:00 UTC for a valid civil date-time (may be negative).
#[inline]
pub fn unix_seconds(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
}

/// Inverse: (year, month, day, hour, minute, second). Must be correct for years 0..=10000 at least.
#[inline]
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(DAY);
    // rem_euclid keeps the time of day in [0, 86399] for negative instants.
    let sod = secs.rem_euclid(DAY) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60)
}

/// Appends `v` as exactly two ASCII digits (`v` < 100).
#[inline]
fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Appends `YYYY-MM-DDTHH` and returns the minute and second still to write.
#[inline]
fn write_date_hour(secs: i64, out: &mut Vec<u8>) -> (u32, u32) {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    if y < 0 {
        // ISO 8601 style for completeness; the workload never produces it.
        out.push(b'-');
    }
    let ay = y.unsigned_abs();
    if ay < 10_000 {
        let ay = ay as u32;
        push2(out, ay / 100);
        push2(out, ay % 100);
    } else {
        // Five or more digits (10000 can appear after applying an offset).
        let mut buf = itoa::Buffer::new();
        out.extend_from_slice(buf.format(ay).as_bytes());
    }
    out.push(b'-');
    push2(out, mo);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, h);
    (mi, s)
}

/// Appends "YYYY-MM-DDTHH" (year zero-padded to at least 4 digits; 10000 prints as 10000).
#[inline]
pub fn write_hour_bucket(secs: i64, out: &mut Vec<u8>) {
    write_date_hour(secs, out);
}

/// Appends "YYYY-MM-DDTHH:MM:SSZ".
#[inline]
pub fn write_timestamp(secs: i64, out: &mut Vec<u8>) {
    let (mi, s) = write_date_hour(secs, out);
    out.push(b':');
    push2(out, mi);
    out.push(b':');
    push2(out, s);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> String {
        let mut v = Vec::new();
        write_timestamp(secs, &mut v);
        String::from_utf8(v).unwrap()
    }

    fn hb(secs: i64) -> String {
        let mut v = Vec::new();
        write_hour_bucket(secs, &mut v);
        String::from_utf8(v).unwrap()
    }

    /// Plain, independent day count: days from 0001-01-01 to the date.
    fn naive_days_since_0001(y: i64, m: u32, d: u32) -> i64 {
        let py = y - 1;
        let mut days = 365 * py + py.div_euclid(4) - py.div_euclid(100) + py.div_euclid(400);
        for mm in 1..m {
            days += i64::from(days_in_month(y.rem_euclid(400) as u32, mm));
        }
        days + i64::from(d) - 1
    }

    #[test]
    fn leap_years() {
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(0, 2), 29);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 12), 31);
        assert_eq!(days_in_month(2023, 0), 0);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    #[test]
    fn known_epoch_values() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 1, 1, 0, 0, 0), 946_684_800);
        assert_eq!(unix_seconds(2024, 2, 29, 12, 34, 56), 1_709_210_096);
        assert_eq!(unix_seconds(1969, 12, 31, 23, 59, 59), -1);
        assert_eq!(unix_seconds(1, 1, 1, 0, 0, 0), -62_135_596_800);
        assert_eq!(unix_seconds(0, 1, 1, 0, 0, 0), -62_167_219_200);
        assert_eq!(unix_seconds(9999, 12, 31, 23, 59, 59), 253_402_300_799);
        assert_eq!(unix_seconds(10000, 1, 1, 0, 0, 0), 253_402_300_800);
        assert_eq!(ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(ts(-1), "1969-12-31T23:59:59Z");
        assert_eq!(ts(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(hb(1_709_210_096), "2024-02-29T12");
        assert_eq!(ts(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(hb(-62_135_598_000), "0000-12-31T23");
        assert_eq!(ts(253_402_300_800), "10000-01-01T00:00:00Z");
        assert_eq!(hb(253_402_300_800), "10000-01-01T00");
    }

    #[test]
    fn matches_naive_day_count() {
        let epoch = naive_days_since_0001(1970, 1, 1);
        for y in (0..=10_000)
            .step_by(7)
            .chain([0, 1, 1900, 2000, 9999, 10_000])
        {
            for m in 1..=12 {
                let last = days_in_month(y as u32, m);
                for d in [1, 15, last] {
                    let expect = (naive_days_since_0001(y, m, d) - epoch) * DAY;
                    assert_eq!(unix_seconds(y, m, d, 0, 0, 0), expect, "{y}-{m}-{d}");
                }
            }
        }
    }

    #[test]
    fn round_trips() {
        let lo = unix_seconds(0, 1, 1, 0, 0, 0);
        let hi = unix_seconds(10_000, 12, 31, 23, 59, 59);
        // A stride co-prime with 86400 visits many times of day and dates.
        let mut s = lo;
        let mut n = 0;
        while s <= hi {
            let (y, mo, d, h, mi, se) = civil_from_unix(s);
            assert!((1..=12).contains(&mo) && d >= 1 && d <= days_in_month(y as u32, mo));
            assert!(h < 24 && mi < 60 && se < 60);
            assert_eq!(unix_seconds(y, mo, d, h, mi, se), s);
            s += 3_155_767; // ~36.5 days
            n += 1;
        }
        assert!(n > 100_000);
        // Every day boundary around the interesting edges.
        for base in [
            lo,
            unix_seconds(1900, 2, 27, 0, 0, 0),
            unix_seconds(2000, 2, 27, 0, 0, 0),
            hi - 5 * DAY,
        ] {
            for k in 0..5 * DAY / 3600 {
                let s = base + k * 3600 - 1;
                let (y, mo, d, h, mi, se) = civil_from_unix(s);
                assert_eq!(unix_seconds(y, mo, d, h, mi, se), s);
            }
        }
        // Every day of a leap-cycle year span, checked against the formatter.
        assert_eq!(
            ts(unix_seconds(1900, 3, 1, 0, 0, 0) - 1),
            "1900-02-28T23:59:59Z"
        );
        assert_eq!(
            ts(unix_seconds(2000, 3, 1, 0, 0, 0) - 1),
            "2000-02-29T23:59:59Z"
        );
    }
}
