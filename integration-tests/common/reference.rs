//! An independent, deliberately plain implementation of docs/logs-workload.md's
//! `logs` summary: the regex from the page, std date arithmetic, BTreeMaps.
//! Slow and obvious, so that it can judge the fast implementation.

use regex::bytes::Regex;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PATTERN: &str = r#"(?-u)^(\S+) (\S+) (\S+) \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?: .*)?$"#;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Splits input bytes into lines as docs/logs-workload.md says.
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.is_empty() || data.ends_with(b"\n") {
        out.pop();
    }
    out.into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in(y: i64, m: i64) -> i64 {
    [
        31,
        if leap(y) { 29 } else { 28 },
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
    ][(m - 1) as usize]
}

/// Days from 0000-03-01-based counting, by plain loops over years (slow, obvious).
fn days_before_year(y: i64) -> i64 {
    // Days from 0000-01-01 to y-01-01.
    let y1 = y - 1;
    if y <= 0 {
        return 0;
    }
    366 + y1 * 365 + y1 / 4 - y1 / 100 + y1 / 400
}

fn epoch_minutes(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
    let mut days = days_before_year(y);
    for m in 1..mo {
        days += days_in(y, m);
    }
    days += d - 1;
    (days * 24 + h) * 60 + mi
}

fn civil(minutes: i64) -> (i64, i64, i64, i64, i64) {
    let mut days = minutes.div_euclid(1440);
    let rem = minutes.rem_euclid(1440);
    let mut y = 0;
    loop {
        let len = if leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let mut m = 1;
    while days >= days_in(y, m) {
        days -= days_in(y, m);
        m += 1;
    }
    (y, m, days + 1, rem / 60, rem % 60)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn num(b: &[u8]) -> i64 {
    std::str::from_utf8(b).unwrap().parse().unwrap()
}

/// One parsed line: (client, method, path, status, bytes, hour bucket, time, bot).
pub struct Parsed {
    pub client: String,
    pub referer: Option<Vec<u8>>,
    pub user_agent: Option<Vec<u8>>,
    pub day: String,
    pub method: String,
    pub path: String,
    pub status: String,
    pub bytes: u64,
    pub hour: String,
    pub time: String,
    pub bot: bool,
}

/// Parses one line, or None when rejected.
pub fn parse(re: &Regex, line: &[u8]) -> Option<Parsed> {
    let c = re.captures(line)?;
    let g = |i: usize| c.get(i).map(|m| m.as_bytes());
    let (day, year) = (num(g(4)?), num(g(6)?));
    let month_name = g(5)?;
    let month = MONTHS.iter().position(|m| m.as_bytes() == month_name)? as i64 + 1;
    let (h, mi, sec) = (num(g(7)?), num(g(8)?), num(g(9)?));
    let (oh, om) = (num(g(11)?), num(g(12)?));
    if year < 1
        || day < 1
        || day > days_in(year, month)
        || h > 23
        || mi > 59
        || sec > 59
        || oh > 23
        || om > 59
    {
        return None;
    }
    let bytes = match g(15)? {
        b"-" => 0,
        d => std::str::from_utf8(d).ok()?.parse::<u64>().ok()?,
    };
    let offset = (oh * 60 + om) * if g(10)? == b"+" { 1 } else { -1 };
    let (y, m, d, hh, mm) = civil(epoch_minutes(year, month, day, h, mi) - offset);
    let request = g(13)?;
    let parts: Vec<&[u8]> = request.split(|&b| b == b' ').collect();
    let (method, path) = if parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) {
        let target = parts[1];
        let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
        (text(parts[0]), text(path))
    } else {
        ("-".to_string(), "-".to_string())
    };
    let ua = g(17).map(|u| u.to_ascii_lowercase()).unwrap_or_default();
    let client = text(g(1)?);
    // docs/logs-workload.md §4a rule 4: IPv6, bare or bracketed, in RFC 5952 form.
    let bare = client
        .strip_prefix('[')
        .and_then(|c| c.strip_suffix(']'))
        .unwrap_or(&client);
    let client = match bare.parse::<std::net::Ipv6Addr>() {
        Ok(a) if client.contains(':') => a.to_string(),
        _ => client,
    };
    let contains = |needle: &[u8]| ua.windows(needle.len()).any(|w| w == needle);
    Some(Parsed {
        client,
        referer: g(16).map(<[u8]>::to_vec),
        user_agent: g(17).map(<[u8]>::to_vec),
        day: format!("{y:04}-{m:02}-{d:02}"),
        method,
        path,
        status: text(g(14)?),
        bytes,
        hour: format!("{y:04}-{m:02}-{d:02}T{hh:02}"),
        time: format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{sec:02}Z"),
        bot: [&b"bot"[..], b"crawler", b"spider", b"slurp"]
            .iter()
            .any(|n| contains(n)),
    })
}

fn top(counts: &BTreeMap<String, u64>) -> Value {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    Value::Array(v.into_iter().take(10).map(|(k, n)| json!([k, n])).collect())
}

/// A JSON integer, or its decimal text when it does not fit in u64
/// (serde_json's `Value` cannot hold it; see `common::read_summary`).
fn big(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(n) => json!(n),
        Err(_) => json!(n.to_string()),
    }
}

/// The referring host of docs/logs-workload.md §4a rule 6, written out
/// step by step with a regular expression.
pub fn referrer_host(referer: &[u8]) -> String {
    if referer.is_empty() || referer == b"-" {
        return "-".into();
    }
    let after_scheme = Regex::new(r"(?s-u)^.*?://(.*)$").unwrap();
    let rest = match after_scheme.captures(referer) {
        Some(c) => c.get(1).unwrap().as_bytes().to_vec(),
        None => referer.to_vec(),
    };
    let authority: Vec<u8> = rest
        .iter()
        .take_while(|b| !b"/?#".contains(b))
        .copied()
        .collect();
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => authority[at + 1..].to_vec(),
        None => authority,
    };
    let port = Regex::new(r"(?-u)^(.*):[0-9]*$").unwrap();
    let host = if host.starts_with(b"[") {
        match host.iter().position(|&b| b == b']') {
            Some(close) => host[..=close].to_vec(),
            None => host,
        }
    } else {
        match port.captures(&host) {
            Some(c) => c.get(1).unwrap().as_bytes().to_vec(),
            None => host,
        }
    };
    if host.is_empty() {
        return "-".into();
    }
    text(&host).to_ascii_lowercase()
}

fn known(s: &str) -> String {
    if s.is_empty() {
        "UNKNOWN".into()
    } else {
        s.into()
    }
}

/// Woothee's families of a user agent: `(crawler name)` or `(browser, os)`.
pub fn ua_families(ua: &[u8]) -> Result<String, (String, String)> {
    let t = text(ua);
    match woothee::parser::Parser::new().parse(&t) {
        Some(r) if r.category == "crawler" => Ok(known(r.name)),
        Some(r) => Err((known(r.name), known(r.os))),
        None => Err(("UNKNOWN".into(), "UNKNOWN".into())),
    }
}

/// The summary docs/logs-workload.md defines for `data`, as JSON.
pub fn summary(data: &[u8]) -> Value {
    let re = Regex::new(PATTERN).unwrap();
    let (mut parsed, mut rejected, mut bytes, mut bots) = (0u64, 0u64, 0u128, 0u64);
    let mut samples = Vec::new();
    let mut clients: BTreeMap<String, u64> = BTreeMap::new();
    let mut paths: BTreeMap<String, u64> = BTreeMap::new();
    let (mut status, mut methods, mut hours) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut class_bytes: BTreeMap<String, u128> = BTreeMap::new();
    let mut path_stats: BTreeMap<String, [u128; 4]> = BTreeMap::new();
    let (mut not_found, mut referrers) = (BTreeMap::new(), BTreeMap::new());
    let (mut browsers, mut systems, mut crawlers) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    type Bucket = (u64, u128, std::collections::BTreeSet<String>);
    let (mut hourly, mut daily): (BTreeMap<String, Bucket>, BTreeMap<String, Bucket>) =
        Default::default();
    let all = lines(data);
    for (i, line) in all.iter().enumerate() {
        match parse(&re, line) {
            None => {
                rejected += 1;
                if samples.len() < 5 {
                    samples.push(i as u64 + 1);
                }
            }
            Some(p) => {
                parsed += 1;
                bytes += p.bytes as u128;
                bots += p.bot as u64;
                *class_bytes
                    .entry(format!("{}xx", &p.status[..1]))
                    .or_default() += p.bytes as u128;
                *status.entry(p.status.clone()).or_insert(0u64) += 1;
                *methods.entry(p.method).or_insert(0u64) += 1;
                *hours.entry(p.hour.clone()).or_insert(0u64) += 1;
                let stats = path_stats.entry(p.path.clone()).or_default();
                let code: u32 = p.status.parse().unwrap();
                stats[0] += p.bytes as u128;
                stats[1] += (400..500).contains(&code) as u128;
                stats[2] += (500..600).contains(&code) as u128;
                if code == 404 {
                    *not_found.entry(p.path.clone()).or_insert(0u64) += 1;
                }
                if let Some(r) = &p.referer {
                    *referrers.entry(referrer_host(r)).or_insert(0u64) += 1;
                }
                if let Some(ua) = &p.user_agent {
                    match ua_families(ua) {
                        Ok(crawler) => *crawlers.entry(crawler).or_insert(0u64) += 1,
                        Err((browser, os)) => {
                            *browsers.entry(browser).or_insert(0u64) += 1;
                            *systems.entry(os).or_insert(0u64) += 1;
                        }
                    }
                }
                for (map, key) in [(&mut hourly, &p.hour), (&mut daily, &p.day)] {
                    let b = map.entry(key.clone()).or_default();
                    b.0 += 1;
                    b.1 += p.bytes as u128;
                    b.2.insert(p.client.clone());
                }
                *paths.entry(p.path).or_default() += 1;
                *clients.entry(p.client).or_default() += 1;
            }
        }
    }
    json!({
        // No stage drops lines in the built-in pipeline.
        "lines": all.len(), "parsed": parsed, "dropped": 0, "rejected": rejected, "rejected_samples": samples,
        "bytes": big(bytes), "clients": clients.len(), "bots": bots, "status": status,
        "status_class_bytes": class_bytes.into_iter().map(|(k, v)| (k, big(v))).collect::<BTreeMap<_, _>>(),
        "methods": methods, "hours": hours, "top_paths": top(&paths), "top_clients": top(&clients),
        "time_zone": "UTC",
        "top_paths_stats": top(&paths).as_array().unwrap().iter().map(|pair| {
            let path = pair[0].as_str().unwrap();
            let s = path_stats[path];
            json!([path, {"4xx": big(s[1]), "5xx": big(s[2]), "bytes": big(s[0]), "hits": pair[1]}])
        }).collect::<Vec<_>>(),
        "top_not_found": top(&not_found), "top_referrers": top(&referrers),
        "top_browsers": top(&browsers), "top_operating_systems": top(&systems),
        "top_crawlers": top(&crawlers),
        "hourly": buckets(hourly), "daily": buckets(daily),
    })
}

/// `hourly` / `daily` values with the exact number of distinct clients
/// (the run estimates it above 1024: compare with [`same_summary`]).
fn buckets(map: BTreeMap<String, (u64, u128, std::collections::BTreeSet<String>)>) -> Value {
    map.into_iter()
        .map(|(k, (requests, bytes, clients))| {
            (
                k,
                json!({"bytes": big(bytes), "clients": clients.len(), "requests": requests}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Where the reference writes a sum above u64 as its digits (see [`big`])
/// and `serde_json` read the run's as a float, puts the digits in `got`
/// when the float is their nearest double.
fn big_as_text(got: &mut Value, expected: &Value) {
    match (got, expected) {
        (g @ Value::Number(_), Value::String(digits))
            if g.is_f64() && g.as_f64() == digits.parse::<f64>().ok() =>
        {
            *g = Value::String(digits.clone());
        }
        (Value::Array(g), Value::Array(e)) => {
            for (g, e) in g.iter_mut().zip(e) {
                big_as_text(g, e);
            }
        }
        (Value::Object(g), Value::Object(e)) => {
            for (k, g) in g.iter_mut() {
                if let Some(e) = e.get(k) {
                    big_as_text(g, e);
                }
            }
        }
        _ => {}
    }
}

/// Asserts that a run's summary is the reference's: equal, except that a
/// bucket's distinct clients above 1024 (a HyperLogLog estimate in the
/// run) need only be within 5 % of the exact count.
pub fn assert_same_summary(got: &Value, expected: &Value, what: &str) {
    let mut got = got.clone();
    big_as_text(&mut got, expected);
    for key in ["hourly", "daily"] {
        let (Some(g), Some(e)) = (got[key].as_object_mut(), expected[key].as_object()) else {
            continue;
        };
        for (bucket, exp) in e {
            let exact = exp["clients"].as_u64().unwrap();
            if let Some(est) = g.get_mut(bucket).and_then(|b| b.get_mut("clients")) {
                let est_n = est.as_u64().unwrap();
                if exact > 1024 && (est_n as f64 - exact as f64).abs() <= 0.05 * exact as f64 {
                    *est = json!(exact);
                }
            }
        }
    }
    assert_eq!(&got, expected, "{what}");
}
