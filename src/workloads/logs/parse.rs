//! Access-log line parsing (docs/logs-workload.md §2): a hand-written,
//! single forward pass over the bytes that accepts exactly the lines the
//! contract's regular expression (plus its date/range/u64 rules) accepts, and
//! the bot test used by enrichment.
//!
//! Why not the regex at run time: the pipeline targets millions of lines per
//! second per core, and the expression is simple enough that each of its
//! parts has exactly one way to match (see the notes in `parse_line`), so a
//! direct scan is equivalent and several times faster. The property test at
//! the bottom checks the equivalence against the real regex.

use super::time::{days_in_month, unix_seconds};
use memchr::{memchr, memchr2};

/// The fields of a parsed line, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// First field (`\S+`): the client address or host name.
    pub client: &'a [u8],
    /// Raw request between the quotes (no unescaping).
    pub request: &'a [u8],
    /// `b"-"` when the request is not three non-empty parts.
    pub method: &'a [u8],
    /// Target up to the first `?`; `b"-"` likewise.
    pub path: &'a [u8],
    /// 0..=999 (the three digits).
    pub status: u16,
    /// Response size; `-` reads as 0.
    pub bytes: u64,
    /// None when absent.
    pub referer: Option<&'a [u8]>,
    /// None when absent.
    pub user_agent: Option<&'a [u8]>,
    /// Unix seconds, UTC.
    pub utc: i64,
}

/// `\S` in ASCII mode excludes exactly these: space, \t, \n, \x0B, \x0C, \r.
#[inline(always)]
fn is_space(b: u8) -> bool {
    b == b' ' || (b'\t'..=b'\r').contains(&b)
}

/// Scans a `\S+` field starting at `start` that must be followed by a space;
/// returns the index of that space. `\S+` cannot contain a space, so the
/// field is the maximal run and there is nothing to backtrack into.
#[inline(always)]
fn field(line: &[u8], start: usize) -> Option<usize> {
    let rest = line.get(start..)?;
    for (k, &b) in rest.iter().enumerate() {
        if is_space(b) {
            return (b == b' ' && k > 0).then_some(start + k);
        }
    }
    None
}

/// Scans `((?:[^"\\]|\\.)*)"` from `start`; returns the index of the closing
/// quote. Each byte has only one alternative that can match it (a `\` must
/// take `\\.`, any byte but `"` and `\` must take `[^"\\]`, and a `"` ends
/// the repetition), so the tokenization is forced left to right and the
/// string ends at the first quote not eaten by a backslash. A backslash with
/// no following byte, or followed by LF (`.` excludes LF), cannot match.
#[inline(always)]
pub(crate) fn quoted(line: &[u8], start: usize) -> Option<usize> {
    let mut p = start;
    loop {
        let k = p + memchr2(b'"', b'\\', line.get(p..)?)?;
        if line[k] == b'"' {
            return Some(k);
        }
        if *line.get(k + 1)? == b'\n' {
            return None;
        }
        p = k + 2;
    }
}

/// Two ASCII digits as a number.
#[inline(always)]
fn d2(a: u8, b: u8) -> Option<u32> {
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
}

/// Month number for an exact English three-letter abbreviation. The list
/// already satisfies the regex's `[A-Z][a-z]{2}`, so one lookup does both.
#[inline(always)]
pub(crate) fn month(m: &[u8]) -> Option<u32> {
    let n = match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(n)
}

/// Parses `[DD/Mon/YYYY:HH:MM:SS +hhmm]` (exactly 28 bytes, brackets
/// included) into UTC Unix seconds, applying the calendar and range rules.
#[inline(always)]
fn timestamp(t: &[u8; 28]) -> Option<i64> {
    if t[0] != b'['
        || t[3] != b'/'
        || t[7] != b'/'
        || t[12] != b':'
        || t[15] != b':'
        || t[18] != b':'
        || t[21] != b' '
        || t[27] != b']'
    {
        return None;
    }
    let day = d2(t[1], t[2])?;
    let mon = month(&t[4..7])?;
    let year = d2(t[8], t[9])? * 100 + d2(t[10], t[11])?;
    let hour = d2(t[13], t[14])?;
    let min = d2(t[16], t[17])?;
    let sec = d2(t[19], t[20])?;
    let oh = d2(t[23], t[24])?;
    let om = d2(t[25], t[26])?;
    if year == 0
        || day == 0
        || day > days_in_month(year, mon)
        || hour > 23
        || min > 59
        || sec > 59
        || oh > 23
        || om > 59
    {
        return None;
    }
    let off = i64::from(oh * 3600 + om * 60);
    let local = unix_seconds(i64::from(year), mon, day, hour, min, sec);
    // "+hhmm" means local = UTC + offset, so UTC = local - offset.
    match t[22] {
        b'+' => Some(local - off),
        b'-' => Some(local + off),
        _ => None,
    }
}

/// Method and path of a request: exactly three non-empty parts separated by
/// single spaces, otherwise `-` and `-`.
#[inline(always)]
pub(crate) fn method_path(req: &[u8]) -> (&[u8], &[u8]) {
    const DASH: &[u8] = b"-";
    // Methods and protocols are a few bytes: a plain scan beats a memchr
    // call there; the target may be long, so it gets memchr.
    let split = || -> Option<(&[u8], &[u8])> {
        let s1 = req.iter().position(|&b| b == b' ')?;
        let rest = &req[s1 + 1..];
        let s2 = memchr(b' ', rest)?;
        let (method, target, proto) = (&req[..s1], &rest[..s2], &rest[s2 + 1..]);
        if method.is_empty() || target.is_empty() || proto.is_empty() || proto.contains(&b' ') {
            return None;
        }
        let path = match memchr(b'?', target) {
            Some(q) => &target[..q],
            None => target,
        };
        Some((method, path))
    };
    split().unwrap_or((DASH, DASH))
}

/// Parses one line; None when the line is rejected.
pub fn parse_line(line: &[u8]) -> Option<ParsedLine<'_>> {
    // `^(\S+) (\S+) (\S+) ` — three maximal non-whitespace runs.
    let c_end = field(line, 0)?;
    let i_end = field(line, c_end + 1)?;
    let u_end = field(line, i_end + 1)?;

    // `\[..\] "` — fixed width, then the opening quote of the request.
    let t0 = u_end + 1;
    let t: &[u8; 28] = line.get(t0..t0 + 28)?.try_into().ok()?;
    if line.get(t0 + 28..t0 + 30)? != b" \"" {
        return None;
    }
    let utc = timestamp(t)?;

    // `((?:[^"\\]|\\.)*)"` — the request.
    let r0 = t0 + 30;
    let r_end = quoted(line, r0)?;
    let request = &line[r0..r_end];

    // ` (\d{3}) ` — status.
    let s = line.get(r_end + 1..r_end + 6)?;
    if s[0] != b' ' || s[4] != b' ' {
        return None;
    }
    let (a, b, c) = (
        s[1].wrapping_sub(b'0'),
        s[2].wrapping_sub(b'0'),
        s[3].wrapping_sub(b'0'),
    );
    if a > 9 || b > 9 || c > 9 {
        return None;
    }
    let status = u16::from(a) * 100 + u16::from(b) * 10 + u16::from(c);

    // `(\d+|-)` — backtracking into the digits cannot help because what
    // follows must be a space or the end, never a digit; so digits are
    // maximal, and `-` stands alone.
    let mut p = r_end + 6;
    let bytes = match line.get(p) {
        Some(b'-') => {
            p += 1;
            0
        }
        Some(d) if d.is_ascii_digit() => {
            let mut v: u64 = 0;
            while let Some(&d) = line.get(p) {
                let dv = d.wrapping_sub(b'0');
                if dv > 9 {
                    break;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(dv))?;
                p += 1;
            }
            v
        }
        _ => return None,
    };

    // `(?: "ref" "ua")?(?: .*)?$`. The optional group is greedy, so it is
    // taken when it matches and what follows it (end, or a space and then no
    // LF) also matches; otherwise the regex falls back to ` .*`, and the line
    // is still parsed, without referer and user agent.
    let (referer, user_agent) = match line.get(p) {
        None => (None, None),
        Some(b' ') => match combined(line, p) {
            Some(ru) => ru,
            None if memchr(b'\n', &line[p + 1..]).is_none() => (None, None),
            None => return None,
        },
        Some(_) => return None,
    };

    let (method, path) = method_path(request);
    Some(ParsedLine {
        client: &line[..c_end],
        request,
        method,
        path,
        status,
        bytes,
        referer,
        user_agent,
        utc,
    })
}

/// The Combined-format tail at `p` (which holds a space): ` "ref" "ua"`
/// followed by the end of the line or by a space and anything without LF.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn combined(line: &[u8], p: usize) -> Option<(Option<&[u8]>, Option<&[u8]>)> {
    if *line.get(p + 1)? != b'"' {
        return None;
    }
    let ref_end = quoted(line, p + 2)?;
    if line.get(ref_end + 1..ref_end + 3)? != b" \"" {
        return None;
    }
    let ua_end = quoted(line, ref_end + 3)?;
    let after = ua_end + 1;
    match line.get(after) {
        None => {}
        Some(b' ') if memchr(b'\n', &line[after + 1..]).is_none() => {}
        Some(_) => return None,
    }
    Some((
        Some(&line[p + 2..ref_end]),
        Some(&line[ref_end + 3..ua_end]),
    ))
}

/// True when the user agent contains, ASCII case-insensitively, "bot", "crawler", "spider" or "slurp".
pub fn is_bot(user_agent: &[u8]) -> bool {
    // Measured faster than an ASCII-case-insensitive Aho-Corasick on real
    // user agents (~70 bytes). Case folding uses `| 0x20`, which is exact
    // for letters: only 'X' and 'x' fold to 'x'.
    //
    // Pass 1 is a branch-free scan for the folded two-byte prefixes "bo",
    // "cr", "sp", "sl": with no early exit it vectorizes, and browser user
    // agents almost never contain them, so pass 2 rarely runs.
    let Some((_, rest)) = user_agent.split_first() else {
        return false;
    };
    let mut candidate = false;
    for (&a, &b) in user_agent.iter().zip(rest) {
        let (a, b) = (a | 0x20, b | 0x20);
        candidate |= (a == b'b') & (b == b'o')
            | (a == b'c') & (b == b'r')
            | (a == b's') & ((b == b'p') | (b == b'l'));
    }
    candidate && contains_bot_word(user_agent)
}

/// The exact check behind `is_bot`'s prefilter.
fn contains_bot_word(ua: &[u8]) -> bool {
    fn at(s: &[u8], word: &[u8]) -> bool {
        s.len() >= word.len() && s.iter().zip(word).all(|(&a, &w)| a | 0x20 == w)
    }
    (0..ua.len()).any(|i| {
        let s = &ua[i..];
        at(s, b"bot") || at(s, b"crawler") || at(s, b"spider") || at(s, b"slurp")
    })
}

#[cfg(test)]
mod tests;
