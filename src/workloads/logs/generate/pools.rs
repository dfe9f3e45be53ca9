//! The generator's pools, built once per generator: clients (with their
//! user agents) and paths, stored back to back.

use super::random::{pick_slice, Picker, Rng};
use super::vocabulary::{
    PathKind, QUERIES, UA_BAIDUSPIDER, UA_BINGBOT, UA_GOOGLEBOT, UA_SLURP, WORDS,
};
use super::{write_hex, N_CLIENTS};

/// Strings stored back to back.
pub(super) struct Strs {
    pub(super) data: Vec<u8>,
    pub(super) ends: Vec<usize>,
}

impl Strs {
    pub(super) fn new() -> Self {
        Strs {
            data: Vec::new(),
            ends: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Ends the string being written at the end of `data`.
    pub(super) fn finish(&mut self) {
        self.ends.push(self.data.len());
    }

    pub(super) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// The client pool: mostly IPv4, some IPv6, some hostnames (crawlers among
/// them, with their matching user agent), each with a preferred user agent.
pub(super) fn build_clients(rng: &mut Rng, ua_pick: &Picker) -> (Strs, Vec<u16>) {
    let mut s = Strs::new();
    let mut uas = Vec::with_capacity(N_CLIENTS);
    let mut num = itoa::Buffer::new();
    for _ in 0..N_CLIENTS {
        let mut ua = ua_pick.pick(rng.next()) as u16;
        let d = &mut s.data;
        let kind = rng.below(100);
        if kind < 84 {
            let mut a = 1 + rng.below(223);
            if a == 10 || a == 127 {
                a += 71;
            }
            let parts = [a, rng.below(256), rng.below(256), 1 + rng.below(254)];
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.push(b'.');
                }
                d.extend_from_slice(num.format(*p).as_bytes());
            }
        } else if kind < 92 {
            d.extend_from_slice(if rng.below(2) == 0 {
                b"2001:db8:"
            } else {
                b"2a02:"
            });
            write_hex(d, rng.below(0x10000));
            d.push(b':');
            write_hex(d, rng.below(0x10000));
            d.extend_from_slice(b"::");
            write_hex(d, 1 + rng.below(0xffff));
        } else {
            let (a, b) = (rng.below(256), rng.below(256));
            let (prefix, suffix): (&[u8], &[u8]) = match rng.below(6) {
                0 => {
                    ua = UA_GOOGLEBOT;
                    (b"crawl-66-249-", b".googlebot.com")
                }
                1 => {
                    ua = UA_BINGBOT;
                    (b"msnbot-157-55-", b".search.msn.com")
                }
                2 => {
                    ua = UA_BAIDUSPIDER;
                    (b"baiduspider-180-76-", b".crawl.baidu.com")
                }
                3 => {
                    ua = UA_SLURP;
                    (b"slurp-68-180-", b".crawl.yahoo.net")
                }
                4 => (b"host-", b".dsl.example.net"),
                _ => (b"cpe-", b".cable.example.org"),
            };
            d.extend_from_slice(prefix);
            d.extend_from_slice(num.format(a).as_bytes());
            d.push(b'-');
            d.extend_from_slice(num.format(b).as_bytes());
            d.extend_from_slice(suffix);
        }
        s.finish();
        uas.push(ua);
    }
    (s, uas)
}

/// A few hundred paths; the well-known ones first, so they are the popular ones.
pub(super) fn build_paths(rng: &mut Rng) -> (Strs, Vec<PathKind>, Vec<u64>) {
    let mut s = Strs::new();
    let mut kinds = Vec::new();
    let mut sizes = Vec::new();
    let mut num = itoa::Buffer::new();
    let fixed: &[(&[u8], PathKind, u64)] = &[
        (b"/", PathKind::Page, 12_000),
        (b"/index.html", PathKind::Page, 12_000),
        (b"/static/css/main.css", PathKind::Static, 40_000),
        (b"/static/js/app.js", PathKind::Static, 180_000),
        (b"/favicon.ico", PathKind::Static, 1_150),
        (b"/api/v1/health", PathKind::Api, 20),
        (b"/search", PathKind::Search, 9_000),
        (b"/robots.txt", PathKind::Static, 120),
        (b"/login", PathKind::Page, 4_000),
        (b"/products", PathKind::Page, 25_000),
        (b"/sitemap.xml", PathKind::Static, 60_000),
        (b"/about", PathKind::Page, 7_000),
        (b"/wp-login.php", PathKind::Missing, 0),
        (b"/.env", PathKind::Missing, 0),
        (b"/contact", PathKind::Page, 5_000),
        (b"/feed.xml", PathKind::Static, 30_000),
        (b"/caf\xc3\xa9/menu", PathKind::Page, 6_000),
        (b"/stra\xc3\x9fe", PathKind::Page, 3_000),
        (b"/%E2%82%AC/prix", PathKind::Page, 3_000),
        (b"/admin/config.php", PathKind::Missing, 0),
        (
            b"/downloads/dataset-full.tar.gz",
            PathKind::Download,
            4_700_000_000,
        ),
    ];
    for &(p, k, b) in fixed {
        s.data.extend_from_slice(p);
        s.finish();
        kinds.push(k);
        sizes.push(b);
    }
    for i in 0..300u32 {
        let d = &mut s.data;
        let (kind, size) = match i % 8 {
            0 | 1 => {
                d.extend_from_slice(b"/products/");
                d.extend_from_slice(num.format(1000 + rng.below(99_000)).as_bytes());
                (PathKind::Page, 15_000 + rng.below(30_000) as u64)
            }
            2 => {
                d.extend_from_slice(if rng.below(2) == 0 {
                    b"/api/v1/users/"
                } else {
                    b"/api/v1/orders/"
                });
                d.extend_from_slice(num.format(rng.below(1_000_000)).as_bytes());
                (PathKind::Api, 200 + rng.below(2_000) as u64)
            }
            3 | 4 => {
                d.extend_from_slice(b"/images/");
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                d.push(b'-');
                d.extend_from_slice(num.format(rng.below(1000)).as_bytes());
                d.extend_from_slice(if rng.below(3) == 0 { b".png" } else { b".jpg" });
                (PathKind::Static, 5_000 + rng.below(400_000) as u64)
            }
            5 => {
                d.extend_from_slice(b"/blog/202");
                d.push(b'0' + rng.below(5) as u8);
                d.push(b'/');
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                d.push(b'-');
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                (PathKind::Page, 8_000 + rng.below(40_000) as u64)
            }
            6 => {
                d.extend_from_slice(b"/docs/");
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                d.push(b'/');
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                d.extend_from_slice(b".html");
                (PathKind::Page, 4_000 + rng.below(20_000) as u64)
            }
            _ => {
                d.extend_from_slice(b"/static/");
                d.extend_from_slice(pick_slice(WORDS, rng.next()));
                d.push(b'.');
                write_hex(d, rng.below(u32::MAX));
                d.extend_from_slice(if rng.below(2) == 0 { b".js" } else { b".css" });
                (PathKind::Static, 2_000 + rng.below(200_000) as u64)
            }
        };
        s.finish();
        kinds.push(kind);
        sizes.push(size);
    }
    (s, kinds, sizes)
}

/// A query string suited to the path.
pub(super) fn write_query(
    out: &mut Vec<u8>,
    kind: PathKind,
    rng: &mut Rng,
    num: &mut itoa::Buffer,
) {
    if kind == PathKind::Search {
        out.extend_from_slice(b"?q=");
        out.extend_from_slice(pick_slice(WORDS, rng.next()));
        out.push(b'+');
        out.extend_from_slice(pick_slice(WORDS, rng.next()));
        return;
    }
    let q = pick_slice(QUERIES, rng.next());
    out.extend_from_slice(q);
    if q.ends_with(b"=") {
        out.extend_from_slice(num.format(rng.below(500)).as_bytes());
    }
}
