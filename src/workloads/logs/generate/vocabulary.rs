//! The generator's vocabulary: what a line is made of (methods, statuses,
//! paths, user agents, …) with integer weights, and the malformed pieces,
//! each guaranteed to be rejected by the docs/logs-workload.md parser.

/// The ways `record` can spoil a line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Defect {
    None,
    Truncated,
    NoSuchDate,
    BadMonth,
    NoBracket,
    BadStatus,
    HugeBytes,
    BadTime,
    UnclosedQuote,
}

/// The HTTP methods (only HEAD changes how the line is built).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Other,
    Head,
}

/// What a path is, which drives its status, size and query strings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PathKind {
    Page,
    Api,
    Static,
    Search,
    Missing,
    Download,
}

impl PathKind {
    pub(super) fn queryable(self) -> bool {
        matches!(self, PathKind::Page | PathKind::Api)
    }
}

pub(super) enum Referer {
    None,
    Internal,
    Search,
    Fixed(&'static [u8]),
}

// ---------------------------------------------------------------------------
// Vocabulary. Weights are relative integers.

pub(super) const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

pub(super) const METHODS: &[((&[u8], Method), u64)] = &[
    ((b"GET", Method::Get), 850),
    ((b"POST", Method::Other), 80),
    ((b"HEAD", Method::Head), 30),
    ((b"PUT", Method::Other), 15),
    ((b"DELETE", Method::Other), 10),
    ((b"OPTIONS", Method::Other), 10),
    ((b"PATCH", Method::Other), 5),
];

pub(super) const STATUSES: &[(&[u8], u64)] = &[
    (b"200", 760),
    (b"304", 60),
    (b"404", 50),
    (b"301", 30),
    (b"302", 20),
    (b"206", 8),
    (b"201", 10),
    (b"204", 8),
    (b"400", 8),
    (b"401", 6),
    (b"403", 8),
    (b"429", 3),
    (b"500", 10),
    (b"502", 3),
    (b"503", 7),
    (b"504", 2),
    (b"499", 1),
];

/// Server UTC offsets (sign, minutes): the log merges several servers, so
/// local and UTC hours (and days) often differ.
pub(super) const OFFSETS: &[((u8, u32), u64)] = &[
    ((b'+', 0), 500),
    ((b'-', 420), 150),
    ((b'+', 60), 80),
    ((b'-', 300), 80),
    ((b'+', 330), 50),
    ((b'+', 540), 50),
    ((b'-', 210), 30),
    ((b'+', 765), 20),
    ((b'-', 600), 20),
    ((b'+', 840), 10),
    ((b'-', 720), 10),
];

pub(super) const PROTOCOLS: &[&[u8]] = &[
    b"HTTP/1.1",
    b"HTTP/1.1",
    b"HTTP/1.1",
    b"HTTP/1.1",
    b"HTTP/1.1",
    b"HTTP/1.1",
    b"HTTP/2.0",
    b"HTTP/2.0",
    b"HTTP/1.0",
];

pub(super) const USERS: &[&[u8]] = &[
    b"alice",
    b"bob",
    b"carol",
    b"admin",
    b"svc-backup",
    b"j.doe",
];

pub(super) const WORDS: &[&[u8]] = &[
    b"alpha", b"river", b"summer", b"garden", b"coffee", b"rocket", b"winter", b"python", b"ocean",
    b"forest", b"pixel", b"cloud", b"market", b"silver", b"orange", b"planet", b"harbor",
    b"meadow", b"canyon", b"delta", b"copper", b"maple", b"lantern", b"violet",
];

pub(super) const REFERERS: &[(Referer, u64)] = &[
    (Referer::None, 550),
    (Referer::Internal, 200),
    (Referer::Fixed(b"https://www.google.com/"), 120),
    (Referer::Search, 40),
    (Referer::Fixed(b"https://duckduckgo.com/"), 20),
    (Referer::Fixed(b"https://l.facebook.com/"), 20),
    (Referer::Fixed(b"https://t.co/"), 20),
    (Referer::Fixed(b"android-app://com.google.android.gm/"), 10),
    (Referer::Fixed(b"http://best-casino.example.ru/"), 20),
];

/// User agents. Indices below name the crawlers that own crawler hostnames.
pub(super) const UAS: &[(&[u8], u64)] = &[
    (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36", 300),
    (b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15", 120),
    (b"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0", 80),
    (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0", 80),
    (b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1", 120),
    (b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36", 100),
    (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66", 60),
    (b"curl/8.5.0", 20),
    (b"curl/7.68.0", 10),
    (b"Wget/1.21.4", 8),
    (b"python-requests/2.31.0", 15),
    (b"Go-http-client/1.1", 8),
    (b"Prometheus/2.50.1", 5),
    (b"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 5),
    (b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 40),
    (b"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 20),
    (b"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", 10),
    (b"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", 8),
    (b"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 8),
    (b"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 10),
    (b"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 8),
    (b"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", 4),
    (b"Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)", 3),
    (b"Screaming Frog SEO Spider/19.4", 3),
    (b"Mozilla/5.0 (compatible; SiteAuditCrawler/1.2)", 3),
];
pub(super) const UA_GOOGLEBOT: u16 = 14;
pub(super) const UA_BINGBOT: u16 = 15;
pub(super) const UA_BAIDUSPIDER: u16 = 16;
pub(super) const UA_SLURP: u16 = 17;

pub(super) const QUERIES: &[&[u8]] = &[
    b"?page=",
    b"?id=",
    b"?sort=price&order=asc",
    b"?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
    b"?lang=en",
    b"?ref=home&v=",
];

// Malformed pieces, each guaranteed to be rejected by the docs/logs-workload.md parser.
pub(super) const NO_SUCH_DATES: &[&[u8]] = &[
    b"31/Apr/2024",
    b"30/Feb/2024",
    b"29/Feb/2023",
    b"31/Jun/2024",
    b"31/Sep/2024",
    b"31/Nov/2024",
    b"00/Mar/2024",
    b"32/Jan/2024",
    b"15/Mar/0000",
];
pub(super) const BAD_MONTHS: &[&[u8]] = &[
    b"Foo", b"Mai", b"Okt", b"Dez", b"JAN", b"jan", b"Sept", b"Ap",
];
pub(super) const BAD_STATUSES: &[&[u8]] = &[b"2O0", b"abc", b"-", b"20", b"2000", b"OK"];
pub(super) const HUGE_BYTES: &[&[u8]] = &[
    b"18446744073709551616",
    b"99999999999999999999999",
    b"340282366920938463463374607431768211456",
];
pub(super) const GARBAGE: &[&[u8]] = &[
    b"GET /index.html",
    b"<html><body><h1>400 Bad Request</h1></body></html>",
    b"{\"level\":\"error\",\"msg\":\"upstream timed out\",\"upstream\":\"10.0.0.7:8080\"}",
    b"*** log rotated ***",
    b"Connection reset by peer",
    b"-- MARK --",
    b"\t\t   ",
    b"2024-02-27T10:11:12Z INFO worker started pid=",
    b"#Fields: date time c-ip cs-method cs-uri-stem sc-status",
];
