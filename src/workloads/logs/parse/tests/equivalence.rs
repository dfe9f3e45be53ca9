//! The property test: the parser agrees with the contract's regular
//! expression on generated lines, accepted and rejected alike.

use super::super::parse_line;
use proptest::prelude::*;
use proptest::sample::select;
use regex::bytes::Regex;
use std::sync::OnceLock;

const PATTERN: &str = r#"(?-u)^(\S+) (\S+) (\S+) \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?: .*)?$"#;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(PATTERN).unwrap())
}

/// client, request, method, path, status, bytes, referer, UA, utc.
type Fields = (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    u16,
    u64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
);

/// The contract written plainly: regex, then the extra rules.
fn reference(line: &[u8]) -> Option<Fields> {
    let c = re().captures(line)?;
    let g = |i: usize| c.get(i).map(|m| m.as_bytes().to_vec());
    let n = |i: usize| -> i64 {
        std::str::from_utf8(&g(i).unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes() == &g(5).unwrap()[..])? as i64
        + 1;
    let (day, year, hour, min, sec, oh, om) = (n(4), n(6), n(7), n(8), n(9), n(11), n(12));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let ok = (1..=9999).contains(&year)
        && day >= 1
        && day <= dim[month as usize - 1]
        && hour <= 23
        && min <= 59
        && sec <= 59
        && oh <= 23
        && om <= 59;
    if !ok {
        return None;
    }
    let bytes_text = g(15).unwrap();
    let bytes = if bytes_text == b"-" {
        0
    } else {
        std::str::from_utf8(&bytes_text)
            .unwrap()
            .parse::<u64>()
            .ok()?
    };
    // Days since 0001-01-01, then shifted to the Unix epoch.
    let py = year - 1;
    let mut days = 365 * py + py / 4 - py / 100 + py / 400;
    days += dim[..month as usize - 1].iter().sum::<i64>() + day - 1;
    days -= 719_162;
    let sign = if g(10).unwrap() == b"+" { 1 } else { -1 };
    let utc = days * 86_400 + hour * 3600 + min * 60 + sec - sign * (oh * 3600 + om * 60);
    let request = g(13).unwrap();
    let parts: Vec<&[u8]> = request.split(|&b| b == b' ').collect();
    let (method, path) = if parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) {
        (
            parts[0].to_vec(),
            parts[1].split(|&b| b == b'?').next().unwrap().to_vec(),
        )
    } else {
        (b"-".to_vec(), b"-".to_vec())
    };
    let status = n(14) as u16;
    Some((
        g(1).unwrap(),
        request,
        method,
        path,
        status,
        bytes,
        g(16),
        g(17),
        utc,
    ))
}

fn mine(line: &[u8]) -> Option<Fields> {
    let p = parse_line(line)?;
    Some((
        p.client.to_vec(),
        p.request.to_vec(),
        p.method.to_vec(),
        p.path.to_vec(),
        p.status,
        p.bytes,
        p.referer.map(<[u8]>::to_vec),
        p.user_agent.map(<[u8]>::to_vec),
        p.utc,
    ))
}

/// Bytes that stress every rule: quotes, backslashes, whitespace of
/// every kind, digits, signs, brackets and invalid UTF-8.
const ALPHABET: &[u8] = b"ab?/ \"\\\t\r\n\x0b\x0c09-+[]:\xff\xc3";

fn junk(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(select(ALPHABET), 0..=max)
}

fn lit(v: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    select(v).prop_map(|s| s.as_bytes().to_vec())
}

/// A number in `lo..=hi`, zero-padded to `w`, or occasionally junk.
fn num(lo: u32, hi: u32, w: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        150 => (lo..=hi).prop_map(move |v| format!("{v:0w$}").into_bytes()),
        1 => (0u32..100_000).prop_map(|v| v.to_string().into_bytes()),
        1 => junk(w + 1),
    ]
}

fn quoted_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => lit(&["-", "", "Mozilla/5.0 (X11) Googlebot", "a\\\"b", "x\\\\", "http://e.com/?q= 1"]),
        2 => junk(10),
    ]
}

fn tail() -> impl Strategy<Value = Vec<u8>> {
    let combined = (
        quoted_text(),
        quoted_text(),
        prop_oneof![
            6 => lit(&["", " ", " x y"]),
            1 => lit(&["x", "\"", " \""]),
            1 => junk(4)
        ],
    )
        .prop_map(|(r, u, after)| [&b" \""[..], &r, b"\" \"", &u, b"\"", &after].concat());
    prop_oneof![
        3 => Just(Vec::new()),
        6 => combined,
        1 => junk(8).prop_map(|j| [&b" "[..], &j].concat()),
        1 => junk(3),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    let who = (
        prop_oneof![12 => lit(&["1.2.3.4", "::1", "h\u{e9}.example", "-"]), 1 => junk(5)],
        prop_oneof![12 => lit(&["-", "ident"]), 1 => junk(3)],
        prop_oneof![12 => lit(&["-", "frank"]), 1 => junk(3)],
    );
    let date = (
        num(0, 32, 2),
        prop_oneof![12 => select(&MONTHS[..]).prop_map(|m| m.as_bytes().to_vec()), 1 => lit(&["jan", "JAN", "Foo", "Ja"])],
        prop_oneof![
            num(0, 10_000, 4),
            num(1895, 2105, 4),
            num(9998, 9999, 4),
            num(0, 2, 4)
        ],
        num(0, 24, 2),
        num(0, 60, 2),
        num(0, 60, 2),
    );
    let zone = (
        prop_oneof![30 => lit(&["+", "-"]), 1 => lit(&["", " ", "*"])],
        num(0, 24, 2),
        num(0, 60, 2),
    );
    let req = prop_oneof![
        8 => lit(&["GET / HTTP/1.1", "GET /a?b=c HTTP/1.0", "POST ?q HTTP/2", "GET /x", "-", "", "GET  / HTTP/1.1", "a b c d", "GET /\\\" HTTP/1.1"]),
        2 => junk(12),
    ];
    let status = prop_oneof![8 => num(0, 999, 3), 1 => num(0, 9999, 4)];
    let bytes = prop_oneof![
        3 => any::<u64>().prop_map(|v| v.to_string().into_bytes()),
        2 => (0u64..100_000).prop_map(|v| v.to_string().into_bytes()),
        8 => Just(b"-".to_vec()),
        3 => lit(&["-", "0", "007", "18446744073709551615", "18446744073709551616", "99999999999999999999", "-5", "", "--"]),
        1 => junk(4),
    ];
    let body = (who, date, zone, req, status, bytes, tail()).prop_map(
        |((c, i, u), (d, mo, y, h, mi, s), (sg, oh, om), rq, st, by, tl)| {
            let mut v = Vec::with_capacity(128);
            for part in [
                &c[..],
                b" ",
                &i,
                b" ",
                &u,
                b" [",
                &d,
                b"/",
                &mo,
                b"/",
                &y,
                b":",
                &h,
                b":",
                &mi,
                b":",
                &s,
                b" ",
                &sg,
                &oh,
                &om,
                b"] \"",
                &rq,
                b"\" ",
                &st,
                b" ",
                &by,
                &tl,
            ] {
                v.extend_from_slice(part);
            }
            v
        },
    );
    // Occasionally one byte edit anywhere, to reach shapes the
    // grammar does not build (a lost space, a stray quote...).
    let edit = prop::option::weighted(
        0.15,
        (any::<prop::sample::Index>(), select(ALPHABET), 0u8..3),
    );
    (body, edit).prop_map(|(mut v, e)| {
        if let Some((at, b, op)) = e {
            let k = at.index(v.len() + 1);
            match op {
                0 if k < v.len() => v[k] = b,
                1 => v.insert(k, b),
                _ if k < v.len() => {
                    v.remove(k);
                }
                _ => {}
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn parse_line_agrees_with_regex(line in line()) {
        prop_assert_eq!(mine(&line), reference(&line), "line {:?}", String::from_utf8_lossy(&line));
    }
}

/// The generator must make both outcomes common, or the property
/// test above proves little.
#[test]
fn generator_mixes_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = line();
    let (mut parsed, mut combined, mut n) = (0, 0, 0);
    for _ in 0..2000 {
        let v = strat.new_tree(&mut runner).unwrap().current();
        if let Some(f) = reference(&v) {
            parsed += 1;
            combined += usize::from(f.7.is_some());
        }
        n += 1;
    }
    assert!(
        parsed * 5 > n && parsed * 5 < 4 * n,
        "parsed {parsed} of {n}"
    );
    assert!(combined * 10 > n, "combined {combined} of {n}");
}
