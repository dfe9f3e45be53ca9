//! The deterministic access-log generator behind `--records N --seed S` and
//! `parpipe generate`: realistic Combined/Common Log Format lines, with about
//! 2% malformed lines of many kinds (docs/logs-workload.md).
//!
//! Determinism is the contract: the same `(seed, records)` gives the same
//! bytes on every machine, release and chunking. Hence the PRNG lives here
//! (xoshiro256** seeded by SplitMix64, no `rand` whose streams change between
//! versions), every table is built with integer arithmetic only (no `powf`,
//! whose last bit may differ between libms), and each line consumes the random
//! stream in the same way whether it goes to a batch or to a writer.
//!
//! Speed matters because the generator feeds the default benchmark: lines are
//! written straight into the batch's buffer from precomputed pieces, numbers
//! with `itoa`, and no line allocates.

mod pools;
mod random;
mod vocabulary;

use pools::*;
use random::*;
use vocabulary::*;

#[cfg(any(feature = "cli", feature = "internals"))]
use std::io::{self, Write};

use crate::sources::LineBatch;

/// Deterministic generator of realistic access-log lines.
pub struct Generator {
    rng: Rng,
    /// Lines requested in total.
    records: u64,
    /// Lines handed out so far.
    produced: u64,
    /// Malformed lines generated so far (checked exactly by the tests).
    malformed: u64,
    /// Microseconds since [`START_DAY`] 00:00:00 UTC of the current line.
    utc_us: u64,
    /// Mean step between two lines, so that any record count spans [`SPAN_US`].
    mean_step_us: u64,
    clients: Strs,
    /// Preferred user agent (index into [`UAS`]) of each client.
    client_ua: Vec<u16>,
    client_pick: Picker,
    paths: Strs,
    path_kind: Vec<PathKind>,
    /// Typical response size of each path.
    path_bytes: Vec<u64>,
    path_pick: Picker,
    ua_pick: Picker,
    method_pick: Picker,
    status_pick: Picker,
    offset_pick: Picker,
    referer_pick: Picker,
    /// `dd/Mon/yyyy` of the days from [`FIRST_DATE`]: one copy per line
    /// instead of a calendar computation.
    dates: Vec<[u8; 11]>,
    /// Reused scratch for formatting integers.
    itoa: itoa::Buffer,
}

/// Longest line the generator can produce, with margin; `fill` stops before a
/// batch's `u32` offsets could overflow, so no line is ever half-written.
const MAX_LINE: usize = 4096;

/// 2024-02-26, in days since 1970-01-01: the logs cross 29 February and the
/// month boundary, which exercises the parser's calendar.
const START_DAY: i64 = 19779;

/// First day of the precomputed `dd/Mon/yyyy` texts: the logs start on
/// [`START_DAY`] UTC, and a negative offset may move local time a day back.
const FIRST_DATE: i64 = START_DAY - 1;

/// Number of precomputed dates: the span, the first hour and ±14 h offsets.
const N_DATES: i64 = 9;

/// Six days of traffic, whatever the record count.
const SPAN_US: u64 = 6 * 86_400 * 1_000_000;

/// Malformed lines per 10,000 (the brief asks for about 2%).
const MALFORMED_PER_10K: u32 = 220;

/// Number of distinct clients in the pool.
const N_CLIENTS: usize = 3000;

impl Generator {
    /// `records` lines from `seed`. Same (seed, records) → same lines, byte for
    /// byte, on every machine and however `fill` is chunked.
    pub fn new(seed: u64, records: u64) -> Self {
        // The pools come from their own stream so that they do not depend on
        // how many random numbers the line stream uses, and vice versa.
        let mut pool_rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng::new(seed);

        let ua_weights: Vec<u64> = UAS.iter().map(|u| u.1).collect();
        let ua_pick = Picker::new(&ua_weights, 12);
        let (clients, client_ua) = build_clients(&mut pool_rng, &ua_pick);
        let client_pick = Picker::new(&zipf_weights(clients.len()), 16);
        let (paths, path_kind, path_bytes) = build_paths(&mut pool_rng);
        let path_pick = Picker::new(&zipf_weights(paths.len()), 16);

        let mean_step_us = SPAN_US.checked_div(records).unwrap_or(0);
        // Start somewhere in the first hour so different seeds differ in time too.
        let utc_us = rng.below(3600) as u64 * 1_000_000;
        Generator {
            rng,
            records,
            produced: 0,
            malformed: 0,
            utc_us,
            mean_step_us,
            clients,
            client_ua,
            client_pick,
            paths,
            path_kind,
            path_bytes,
            path_pick,
            ua_pick,
            method_pick: Picker::new(&weights(METHODS), 12),
            status_pick: Picker::new(&weights(STATUSES), 12),
            offset_pick: Picker::new(&weights(OFFSETS), 12),
            referer_pick: Picker::new(&weights(REFERERS), 12),
            dates: (FIRST_DATE..FIRST_DATE + N_DATES).map(date_text).collect(),
            itoa: itoa::Buffer::new(),
        }
    }

    /// Lines not yet produced.
    pub fn remaining(&self) -> u64 {
        self.records - self.produced
    }

    /// Appends up to `max_lines` lines to `batch` (no terminator); returns how
    /// many were appended (0 = finished).
    ///
    /// When `batch` is empty its `first_line` is set to the number of the next
    /// line (1-based); when it is not, lines are appended after the ones it
    /// holds, which only keeps numbering right if those came from this
    /// generator. `max_lines` of 0 is taken as 1, so that 0 always means
    /// finished; the batch is also never filled past its 4 GiB limit.
    pub fn fill(&mut self, batch: &mut LineBatch, max_lines: usize) -> usize {
        if batch.is_empty() {
            batch.first_line = self.produced + 1;
        }
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(max_lines.max(1));
        let limit = u32::MAX as usize - MAX_LINE;
        let mut n = 0;
        while n < want && batch.data.len() <= limit {
            // Written in place rather than through `push_line`: it saves a copy
            // per line, and the limit above keeps the `u32` offset exact.
            self.write_line(&mut batch.data);
            batch.ends.push(batch.data.len() as u32);
            n += 1;
        }
        self.produced += n as u64;
        n
    }

    /// Appends up to `max_lines` lines to `out`, each followed by '\n' (the
    /// text form of a chunk, and of `parpipe generate`'s file); returns how
    /// many were appended (0 = finished). `max_lines` of 0 is taken as 1.
    pub fn fill_text(&mut self, out: &mut Vec<u8>, max_lines: usize) -> usize {
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(max_lines.max(1));
        for _ in 0..want {
            self.write_line(out);
            out.push(b'\n');
        }
        self.produced += want as u64;
        want
    }

    /// Writes all remaining lines, each followed by '\n', to `out` (used by
    /// `parpipe generate`); returns how many lines were written. On a write
    /// error the lines in the failed chunk count as produced.
    #[cfg(any(feature = "cli", feature = "internals"))]
    pub fn write_all<W: Write>(&mut self, mut out: W) -> io::Result<u64> {
        const CHUNK_LINES: usize = 4096;
        let mut buf = Vec::with_capacity(CHUNK_LINES * 256);
        let mut written = 0u64;
        loop {
            buf.clear();
            let n = self.fill_text(&mut buf, CHUNK_LINES);
            if n == 0 {
                break;
            }
            written += n as u64;
            out.write_all(&buf)?;
        }
        out.flush()?;
        Ok(written)
    }

    /// Appends one line (valid, odd or malformed) to `out`, without terminator.
    fn write_line(&mut self, out: &mut Vec<u8>) {
        // Time advances for every line, malformed or not, so a defect never
        // shifts the timestamps of the lines after it.
        let span = 2 * self.mean_step_us + 1;
        self.utc_us += self.rng.range64(span);
        if self.rng.below(10_000) >= MALFORMED_PER_10K {
            self.record(out, Defect::None);
            return;
        }
        self.malformed += 1;
        match self.rng.below(11) {
            0 => self.record(out, Defect::Truncated),
            1 => self.garbage(out),
            2 => self.record(out, Defect::NoSuchDate),
            3 => self.record(out, Defect::BadMonth),
            4 => self.record(out, Defect::NoBracket),
            5 => self.record(out, Defect::BadStatus),
            6 => self.record(out, Defect::HugeBytes),
            7 => {} // an empty line
            8 => self.binary(out),
            9 => self.record(out, Defect::BadTime),
            _ => self.record(out, Defect::UnclosedQuote),
        }
    }

    /// One log record; `defect` makes it malformed in one specific way that the
    /// parser rejects (docs/logs-workload.md §2).
    fn record(&mut self, out: &mut Vec<u8>, defect: Defect) {
        let start = out.len();
        let rng = &mut self.rng;
        let client = self.client_pick.pick(rng.next());
        out.extend_from_slice(self.clients.get(client));
        out.extend_from_slice(b" - ");
        if rng.below(100) < 3 {
            out.extend_from_slice(pick_slice(USERS, rng.next()));
        } else {
            out.push(b'-');
        }
        let no_bracket = if defect == Defect::NoBracket {
            1 + rng.below(2)
        } else {
            0
        };
        out.extend_from_slice(if no_bracket == 1 { b" " } else { b" [" });

        // Timestamp, local time of the (randomly chosen) server offset.
        let (sign, off_min) = OFFSETS[self.offset_pick.pick(rng.next())].0;
        let off_s = off_min as i64 * 60 * if sign == b'-' { -1 } else { 1 };
        let local = START_DAY * 86_400 + (self.utc_us / 1_000_000) as i64 + off_s;
        let (days, sod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let cached = usize::try_from(days - FIRST_DATE)
            .ok()
            .and_then(|i| self.dates.get(i));
        if defect == Defect::NoSuchDate {
            out.extend_from_slice(pick_slice(NO_SUCH_DATES, rng.next()));
        } else if let (Some(date), false) = (cached, defect == Defect::BadMonth) {
            out.extend_from_slice(date);
        } else {
            let (y, m, d) = civil_from_days(days);
            out.extend_from_slice(two(d));
            out.push(b'/');
            if defect == Defect::BadMonth {
                out.extend_from_slice(pick_slice(BAD_MONTHS, rng.next()));
            } else {
                out.extend_from_slice(MONTHS[m as usize - 1]);
            }
            out.push(b'/');
            out.extend_from_slice(self.itoa.format(y).as_bytes());
        }
        let (mut hh, mut mm, mut ss) = (sod / 3600, sod / 60 % 60, sod % 60);
        let (mut oh, mut om) = (off_min / 60, off_min % 60);
        if defect == Defect::BadTime {
            match rng.below(5) {
                0 => hh = 24,
                1 => mm = 60,
                2 => ss = 60,
                3 => oh = 24,
                _ => om = 75,
            }
        }
        out.push(b':');
        out.extend_from_slice(two(hh as u32));
        out.push(b':');
        out.extend_from_slice(two(mm as u32));
        out.push(b':');
        out.extend_from_slice(two(ss as u32));
        out.push(b' ');
        out.push(sign);
        out.extend_from_slice(two(oh));
        out.extend_from_slice(two(om));
        out.extend_from_slice(if no_bracket == 2 { b" \"" } else { b"] \"" });

        // Request. Odd-but-valid requests only appear on otherwise valid lines.
        let odd = if defect == Defect::None {
            rng.below(1000)
        } else {
            1000
        };
        let mut method = Method::Get;
        let mut path = 0;
        let status: &[u8] = if odd < 3 {
            // A client that closed the connection before sending anything.
            out.push(b'-');
            b"400"
        } else if odd < 4 {
            // A TLS handshake sent to the plain HTTP port, as nginx logs it.
            out.extend_from_slice(b"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03");
            b"400"
        } else if odd < 5 {
            b"408" // empty request
        } else {
            let (name, m) = METHODS[self.method_pick.pick(rng.next())].0;
            method = m;
            out.extend_from_slice(name);
            out.push(b' ');
            path = self.path_pick.pick(rng.next());
            out.extend_from_slice(self.paths.get(path));
            let kind = self.path_kind[path];
            if kind == PathKind::Search || (kind.queryable() && rng.below(100) < 15) {
                write_query(out, kind, rng, &mut self.itoa);
            }
            out.push(b' ');
            out.extend_from_slice(pick_slice(PROTOCOLS, rng.next()));
            if kind == PathKind::Missing && rng.below(10) < 8 {
                b"404"
            } else {
                STATUSES[self.status_pick.pick(rng.next())].0
            }
        };
        if defect == Defect::UnclosedQuote {
            out.push(b' ');
        } else {
            out.extend_from_slice(b"\" ");
        }
        let status_pos = out.len();
        if defect == Defect::BadStatus {
            out.extend_from_slice(pick_slice(BAD_STATUSES, rng.next()));
        } else {
            out.extend_from_slice(status);
        }
        out.push(b' ');

        // Bytes sent.
        if defect == Defect::HugeBytes {
            out.extend_from_slice(pick_slice(HUGE_BYTES, rng.next()));
        } else {
            let no_body = method == Method::Head || status == &b"304"[..] || status == &b"204"[..];
            let size = match status[0] {
                _ if no_body => 0,
                b'2' => {
                    let base = self.path_bytes[path];
                    base + rng.range64(base / 2 + 1)
                }
                b'3' => 150 + rng.below(120) as u64,
                b'4' => 150 + rng.below(450) as u64,
                _ => rng.below(600) as u64,
            };
            if (size == 0 && rng.below(2) == 0) || rng.below(100) == 0 {
                out.push(b'-');
            } else {
                out.extend_from_slice(self.itoa.format(size).as_bytes());
            }
        }

        // Combined Log Format tail, except on 3% of lines (Common Log Format).
        if rng.below(100) >= 3 {
            out.extend_from_slice(b" \"");
            self.referer(out);
            out.extend_from_slice(b"\" \"");
            let rng = &mut self.rng;
            if (5..7).contains(&odd) {
                // A quote escaped inside the user agent: valid, kept as `\"`.
                out.extend_from_slice(b"Mozilla/5.0 (compatible; \\\"Quoted\\\" Agent/1.0)");
            } else if odd == 7 {
                // Invalid UTF-8 inside a valid line: Latin-1 bytes and a lone 0xFF.
                out.extend_from_slice(b"Mozilla/5.0 (X11; Linux) Br\xf6wser/1.0 \xff");
            } else {
                let ua = if rng.below(100) < 92 {
                    self.client_ua[client] as usize
                } else {
                    self.ua_pick.pick(rng.next())
                };
                out.extend_from_slice(UAS[ua].0);
            }
            out.push(b'"');
            if self.rng.below(100) < 2 {
                // Trailing fields (response time), which the parser ignores.
                out.extend_from_slice(b" rt=0.");
                let ms = self.rng.below(1000);
                out.push(b'0' + (ms / 100) as u8);
                out.extend_from_slice(two(ms % 100));
            }
        }

        if defect == Defect::Truncated {
            // Cut anywhere before the status: what is left can never match.
            let cut = 1 + self.rng.below((status_pos - start - 1) as u32) as usize;
            out.truncate(start + cut);
        }
        debug_assert!(out.len() - start < MAX_LINE);
    }

    /// The referer field's content (without quotes).
    fn referer(&mut self, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        match REFERERS[self.referer_pick.pick(rng.next())].0 {
            Referer::None => out.push(b'-'),
            Referer::Internal => {
                out.extend_from_slice(b"https://www.example.com");
                out.extend_from_slice(self.paths.get(self.path_pick.pick(rng.next())));
            }
            Referer::Search => {
                out.extend_from_slice(b"https://www.bing.com/search?q=");
                out.extend_from_slice(pick_slice(WORDS, rng.next()));
                out.push(b'+');
                out.extend_from_slice(pick_slice(WORDS, rng.next()));
            }
            Referer::Fixed(s) => out.extend_from_slice(s),
        }
    }

    /// A line that is not a log record at all.
    fn garbage(&mut self, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        out.extend_from_slice(pick_slice(GARBAGE, rng.next()));
        if rng.below(2) == 0 {
            out.push(b' ');
            out.extend_from_slice(self.itoa.format(rng.next() >> 40).as_bytes());
        }
    }

    /// Binary junk with invalid UTF-8 (at least one 0xFF, never valid).
    fn binary(&mut self, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let len = 8 + rng.below(56);
        let ff = rng.below(len);
        for i in 0..len {
            let b = if i == ff { 0xff } else { rng.next() as u8 };
            // No LF or CR (they would split the line or be stripped) and no
            // '[' (so the junk can never look like a timestamp).
            out.push(match b {
                b'\n' | b'\r' | b'[' => b ^ 0x80,
                b => b,
            });
        }
    }
}

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `n` (0..=99) as two digits.
#[inline]
fn two(n: u32) -> &'static [u8] {
    let i = n as usize * 2;
    &DIGITS2[i..i + 2]
}

fn write_hex(out: &mut Vec<u8>, n: u32) {
    let mut buf = [0u8; 8];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `dd/Mon/yyyy` of a day counted from 1970-01-01 (years 1000-9999).
fn date_text(days: i64) -> [u8; 11] {
    let (y, m, d) = civil_from_days(days);
    let mut t = [b'/'; 11];
    t[..2].copy_from_slice(two(d));
    t[3..6].copy_from_slice(MONTHS[m as usize - 1]);
    t[7..9].copy_from_slice(two((y / 100) as u32));
    t[9..].copy_from_slice(two((y % 100) as u32));
    t
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (y, m, d, _, _, _) = super::time::civil_from_unix(days * 86_400);
    (y, m, d)
}

#[cfg(test)]
mod tests;
