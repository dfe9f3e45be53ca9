//! The `logs` dimensions beyond the original contract
//! (docs/logs-workload.md §4a): per-path statistics, traffic per time
//! bucket, referring hosts, user-agent families, and the client rules
//! (canonical IPv6, X-Forwarded-For).

use super::distinct::Distinct;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;
use std::sync::{Mutex, OnceLock};

/// What one path's lines add up to (besides its hit count, kept in
/// `LogsPartial::paths`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    /// Sum of `bytes`.
    pub bytes: u128,
    /// Lines with status 400–499 (404 included).
    pub client_errors: u64,
    /// Lines with status 500–599.
    pub server_errors: u64,
    /// Lines with status 404.
    pub not_found: u64,
}

impl PathStats {
    /// Counts one line.
    #[inline]
    pub fn add(&mut self, status: u16, bytes: u64) {
        self.bytes += u128::from(bytes);
        match status {
            404 => {
                self.client_errors += 1;
                self.not_found += 1;
            }
            400..=499 => self.client_errors += 1,
            500..=599 => self.server_errors += 1,
            _ => {}
        }
    }

    /// Folds `other` in; `None` when a sum overflows.
    pub fn checked_merge(&mut self, other: PathStats) -> Option<()> {
        self.bytes = self.bytes.checked_add(other.bytes)?;
        self.client_errors = self.client_errors.checked_add(other.client_errors)?;
        self.server_errors = self.server_errors.checked_add(other.server_errors)?;
        self.not_found = self.not_found.checked_add(other.not_found)?;
        Some(())
    }
}

/// The traffic of one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Parsed lines.
    pub requests: u64,
    /// Sum of their `bytes`.
    pub bytes: u128,
    /// Their distinct clients.
    pub clients: Distinct,
}

impl Traffic {
    /// Folds `other` in; `None` when a sum overflows.
    pub fn checked_merge(&mut self, other: Traffic) -> Option<()> {
        self.requests = self.requests.checked_add(other.requests)?;
        self.bytes = self.bytes.checked_add(other.bytes)?;
        self.clients.merge(other.clients);
        Some(())
    }
}

/// One bucket's values in `summary.json` (`hourly`, `daily`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Sum of `bytes`.
    pub bytes: u128,
    /// Distinct clients (exact up to 1024, else estimated).
    pub clients: u64,
    /// Parsed lines.
    pub requests: u64,
}

/// One of `top_paths_stats`' values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSummary {
    /// Lines with status 400–499.
    #[serde(rename = "4xx")]
    pub client_errors: u64,
    /// Lines with status 500–599.
    #[serde(rename = "5xx")]
    pub server_errors: u64,
    /// Sum of `bytes`.
    pub bytes: u128,
    /// Lines (the `top_paths` count).
    pub hits: u64,
}

/// The referring host of a raw referer (rule 6): `-` for direct traffic.
pub fn referrer_host(referer: &[u8]) -> &[u8] {
    if referer.is_empty() || referer == b"-" {
        return b"-";
    }
    let rest = match memchr::memmem::find(referer, b"://") {
        Some(i) => &referer[i + 3..],
        None => referer,
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let mut host = &rest[..end];
    if let Some(at) = memchr::memrchr(b'@', host) {
        host = &host[at + 1..];
    }
    if host.first() == Some(&b'[') {
        if let Some(close) = memchr::memchr(b']', host) {
            host = &host[..=close];
        }
    } else if let Some(colon) = memchr::memrchr(b':', host) {
        if host[colon + 1..].iter().all(u8::is_ascii_digit) {
            host = &host[..colon];
        }
    }
    if host.is_empty() {
        b"-"
    } else {
        host
    }
}

/// Writes the `top_referrers` key of a raw referer into `out`: its host
/// (see [`referrer_host`]) as text, ASCII letters lower-cased.
pub fn referrer_key(referer: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let host = referrer_host(referer);
    if host.is_ascii() {
        out.extend(host.iter().map(u8::to_ascii_lowercase));
    } else {
        out.extend_from_slice(String::from_utf8_lossy(host).as_bytes());
        out.make_ascii_lowercase();
    }
}

/// A user agent's families (rule 7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UaClass {
    /// Woothee's `crawler` category, by name.
    Crawler(Box<str>),
    /// Anything else: browser name and OS.
    Browser {
        /// The browser family.
        name: Box<str>,
        /// The operating system.
        os: Box<str>,
    },
}

/// Classifies a user agent with Woothee's rules.
pub fn classify(user_agent: &[u8]) -> UaClass {
    let text = String::from_utf8_lossy(user_agent);
    let unknown = || UaClass::Browser {
        name: "UNKNOWN".into(),
        os: "UNKNOWN".into(),
    };
    // Woothee leaves a name or OS empty for some families: that is unknown too.
    let or_unknown = |s: &str| -> Box<str> {
        if s.is_empty() {
            "UNKNOWN".into()
        } else {
            s.into()
        }
    };
    match woothee::parser::Parser::new().parse(&text) {
        Some(r) if r.category == "crawler" => UaClass::Crawler(or_unknown(r.name)),
        Some(r) => UaClass::Browser {
            name: or_unknown(r.name),
            os: or_unknown(r.os),
        },
        None => unknown(),
    }
}

/// `Enrichment::ua_family` of a line without a user agent.
pub const NO_FAMILY: u32 = u32::MAX;

/// The families seen by this process, numbered in the order first seen,
/// so that `enrich` can hand a family to `metrics` as a number. Numbers
/// never leave the process (partials carry names), so their order does
/// not matter. Bounded: Woothee's data set has a fixed list of names and
/// operating systems.
#[derive(Default)]
struct Families {
    list: Vec<UaClass>,
    ids: FxHashMap<UaClass, u32>,
}

fn families() -> std::sync::MutexGuard<'static, Families> {
    static FAMILIES: OnceLock<Mutex<Families>> = OnceLock::new();
    FAMILIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The number of `user_agent`'s family in this process's table (see [`for_each_family`]).
pub fn family_id(user_agent: &[u8]) -> u32 {
    let class = classify(user_agent);
    let mut f = families();
    if let Some(&id) = f.ids.get(&class) {
        return id;
    }
    let id = f.list.len() as u32;
    f.list.push(class.clone());
    f.ids.insert(class, id);
    id
}

/// Calls `each` with the family of every number of `counts` (a count
/// per family number) that is not 0.
pub fn for_each_family(counts: &[u64], mut each: impl FnMut(&UaClass, u64)) {
    let f = families();
    for (id, &n) in counts.iter().enumerate() {
        if let (Some(class), true) = (f.list.get(id), n > 0) {
            each(class, n);
        }
    }
}

/// The RFC 5952 text of an IPv6 client, bare or in brackets, when it is
/// not already written so (rule 4); `None` for anything else.
pub fn canonical_ipv6(client: &[u8]) -> Option<String> {
    if !may_be_ipv6(client) {
        return None;
    }
    let inner = match client {
        [b'[', inner @ .., b']'] => inner,
        _ => client,
    };
    let addr: Ipv6Addr = std::str::from_utf8(inner).ok()?.parse().ok()?;
    // Written on the stack first: most addresses are already canonical,
    // and then nothing is allocated. The longest form is 45 bytes.
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    std::io::Write::write_fmt(&mut cursor, format_args!("{addr}")).ok()?;
    let len = cursor.position() as usize;
    let text = &buf[..len];
    (text != client).then(|| String::from_utf8_lossy(text).into_owned())
}

/// False for a client that cannot be an IPv6 address, told from its first
/// five bytes: an address Rust's parser reads starts with `[`, or has its
/// first `:` there (a group is at most four digits). IPv4 and host names
/// are turned away without a scan.
#[inline]
pub fn may_be_ipv6(client: &[u8]) -> bool {
    let head = &client[..client.len().min(5)];
    head.first() == Some(&b'[') || head.contains(&b':')
}

/// The first address of an X-Forwarded-For value (rule 5): before its
/// first comma, spaces and tabs trimmed; `None` when that is empty or `-`.
pub fn first_forwarded(value: &[u8]) -> Option<&[u8]> {
    let first = match memchr::memchr(b',', value) {
        Some(c) => &value[..c],
        None => value,
    };
    let first = first.trim_ascii();
    (!first.is_empty() && first != b"-").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referring_hosts() {
        let cases: [(&[u8], &[u8]); 12] = [
            (b"-", b"-"),
            (b"", b"-"),
            (b"https://www.Example.com/a?b", b"www.Example.com"),
            (b"http://user:pw@host.example:8080/x", b"host.example"),
            (b"http://[2001:db8::1]:443/", b"[2001:db8::1]"),
            (
                b"android-app://com.google.android.gm/",
                b"com.google.android.gm",
            ),
            (b"www.example.com/page", b"www.example.com"),
            (b"file:///etc/passwd", b"-"),
            (b"http://h#frag", b"h"),
            (b"http://h?q", b"h"),
            (b"http://h:port/", b"h:port"),
            (b"://", b"-"),
        ];
        for (referer, host) in cases {
            assert_eq!(
                referrer_host(referer),
                host,
                "{}",
                String::from_utf8_lossy(referer)
            );
        }
    }

    #[test]
    fn user_agent_families() {
        let chrome = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(
            classify(chrome),
            UaClass::Browser {
                name: "Chrome".into(),
                os: "Windows 10".into()
            }
        );
        let google = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(classify(google), UaClass::Crawler("Googlebot".into()));
        for unknown in [&b"-"[..], b"", b"\xff\xfe"] {
            assert_eq!(
                classify(unknown),
                UaClass::Browser {
                    name: "UNKNOWN".into(),
                    os: "UNKNOWN".into()
                }
            );
        }
        let (g, c) = (family_id(google), family_id(chrome));
        assert_ne!(g, c);
        assert_eq!(family_id(google), g, "one number per family");
        let mut counts = vec![0; g.max(c) as usize + 1];
        counts[g as usize] = 2;
        let mut seen = Vec::new();
        for_each_family(&counts, |class, n| seen.push((class.clone(), n)));
        assert_eq!(seen, vec![(classify(google), 2)]);
    }

    #[test]
    fn ipv6_clients_are_written_one_way() {
        for form in [
            &b"[2001:db8::1]"[..],
            b"2001:DB8:0:0:0:0:0:1",
            b"2001:db8:0::1",
        ] {
            assert_eq!(canonical_ipv6(form).as_deref(), Some("2001:db8::1"));
        }
        assert_eq!(canonical_ipv6(b"2001:db8::1"), None, "already canonical");
        assert_eq!(canonical_ipv6(b"::1"), None);
        assert_eq!(
            canonical_ipv6(b"::FFFF:1.2.3.4").as_deref(),
            Some("::ffff:1.2.3.4")
        );
        for other in [
            &b"1.2.3.4"[..],
            b"[::1]:80",
            b"fe80::1%eth0",
            b"host:name",
            b"-",
        ] {
            assert_eq!(canonical_ipv6(other), None);
        }
    }

    #[test]
    fn forwarded_for_takes_the_first_address() {
        assert_eq!(
            first_forwarded(b"10.0.0.2, 10.0.0.1, 127.0.0.1"),
            Some(&b"10.0.0.2"[..])
        );
        assert_eq!(first_forwarded(b" 2001:db8::1 "), Some(&b"2001:db8::1"[..]));
        assert_eq!(first_forwarded(b"-"), None);
        assert_eq!(first_forwarded(b""), None);
        assert_eq!(first_forwarded(b" , 1.2.3.4"), None);
    }

    #[test]
    fn path_stats_count_error_classes() {
        let mut s = PathStats::default();
        for (status, bytes) in [(200, 10), (404, 1), (403, 0), (503, 5), (302, 0)] {
            s.add(status, bytes);
        }
        assert_eq!(
            s,
            PathStats {
                bytes: 16,
                client_errors: 2,
                server_errors: 1,
                not_found: 1
            }
        );
    }
}
