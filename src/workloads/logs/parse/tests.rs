//! Tests of the line parser: hand-picked edge cases of each field, and a
//! property test against the contract's regular expression.

use super::*;
use crate::workloads::logs::time::write_timestamp;

const COMBINED: &[u8] = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

fn p(line: &[u8]) -> Option<ParsedLine<'_>> {
    parse_line(line)
}

fn ok(line: &[u8]) -> ParsedLine<'_> {
    match parse_line(line) {
        Some(pl) => pl,
        None => panic!("rejected: {:?}", String::from_utf8_lossy(line)),
    }
}

fn utc_text(secs: i64) -> String {
    let mut v = Vec::new();
    write_timestamp(secs, &mut v);
    String::from_utf8(v).unwrap()
}

/// A Common line with the given timestamp text between the brackets.
fn with_time(t: &str) -> Vec<u8> {
    format!(r#"1.2.3.4 - - [{t}] "GET / HTTP/1.1" 200 5"#).into_bytes()
}

fn time_of(t: &str) -> Option<String> {
    parse_line(&with_time(t)).map(|pl| utc_text(pl.utc))
}

/// A Common line with the given request text between the quotes.
fn with_request(r: &[u8]) -> Vec<u8> {
    let mut v = b"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] \"".to_vec();
    v.extend_from_slice(r);
    v.extend_from_slice(b"\" 200 5");
    v
}

/// A line ending with the given status-and-after text; leaked so the
/// parse result can borrow from it (fine in tests).
fn with_status_bytes(sb: &str) -> &'static [u8] {
    format!(r#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" {sb}"#)
        .into_bytes()
        .leak()
}

#[test]
fn combined_line() {
    let pl = ok(COMBINED);
    assert_eq!(pl.client, b"127.0.0.1");
    assert_eq!(pl.request, b"GET /apache_pb.gif?x=1 HTTP/1.0");
    assert_eq!(pl.method, b"GET");
    assert_eq!(pl.path, b"/apache_pb.gif");
    assert_eq!(pl.status, 200);
    assert_eq!(pl.bytes, 2326);
    assert_eq!(pl.referer, Some(&b"http://www.example.com/start.html"[..]));
    assert_eq!(
        pl.user_agent,
        Some(&b"Mozilla/4.08 [en] (Win98; I ;Nav)"[..])
    );
    assert_eq!(utc_text(pl.utc), "2000-10-10T20:55:36Z");
}

#[test]
fn common_line() {
    let pl = ok(br#"host.example user-identifier frank [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.0" 404 7"#);
    assert_eq!(pl.client, b"host.example");
    assert_eq!((pl.status, pl.bytes), (404, 7));
    assert_eq!((pl.referer, pl.user_agent), (None, None));
    assert_eq!(utc_text(pl.utc), "2000-10-10T13:55:36Z");
}

#[test]
fn common_line_with_trailing_fields() {
    let pl = ok(with_status_bytes("200 5 extra stuff here"));
    assert_eq!((pl.referer, pl.user_agent), (None, None));
    assert_eq!(pl.bytes, 5);
    // A lone space after bytes is ` .*` with an empty tail.
    assert!(ok(with_status_bytes("200 5 ")).referer.is_none());
    // Only one quoted field: the optional group fails, ` .*` takes it.
    assert!(ok(with_status_bytes(r#"200 5 "ref""#)).referer.is_none());
}

#[test]
fn trailing_space_and_fields_after_user_agent() {
    let pl = ok(with_status_bytes(r#"200 5 "r" "ua" "#));
    assert_eq!(
        (pl.referer, pl.user_agent),
        (Some(&b"r"[..]), Some(&b"ua"[..]))
    );
    let pl = ok(with_status_bytes(r#"200 5 "r" "ua" 0.123 "x""#));
    assert_eq!(pl.user_agent, Some(&b"ua"[..]));
}

#[test]
fn junk_right_after_user_agent_quote() {
    let pl = ok(with_status_bytes(r#"200 5 "r" "ua"x"#));
    assert_eq!((pl.referer, pl.user_agent), (None, None));
    // Two spaces between referer and UA: group fails, still parsed.
    let pl = ok(with_status_bytes(r#"200 5 "r"  "ua""#));
    assert_eq!((pl.referer, pl.user_agent), (None, None));
}

#[test]
fn nonexistent_dates() {
    assert_eq!(time_of("31/Apr/2020:00:00:00 +0000"), None);
    assert_eq!(
        time_of("30/Apr/2020:00:00:00 +0000").as_deref(),
        Some("2020-04-30T00:00:00Z")
    );
    assert_eq!(time_of("29/Feb/2023:00:00:00 +0000"), None);
    assert_eq!(
        time_of("29/Feb/2024:00:00:00 +0000").as_deref(),
        Some("2024-02-29T00:00:00Z")
    );
    assert_eq!(time_of("29/Feb/1900:00:00:00 +0000"), None);
    assert_eq!(
        time_of("29/Feb/2000:00:00:00 +0000").as_deref(),
        Some("2000-02-29T00:00:00Z")
    );
    assert_eq!(time_of("01/Jan/0000:00:00:00 +0000"), None);
    assert_eq!(time_of("00/Jan/2020:00:00:00 +0000"), None);
    assert_eq!(time_of("32/Jan/2020:00:00:00 +0000"), None);
    assert_eq!(
        time_of("31/Dec/9999:23:59:59 +0000").as_deref(),
        Some("9999-12-31T23:59:59Z")
    );
}

#[test]
fn month_case_and_names() {
    assert_eq!(time_of("01/jan/2020:00:00:00 +0000"), None);
    assert_eq!(time_of("01/JAN/2020:00:00:00 +0000"), None);
    assert_eq!(time_of("01/Foo/2020:00:00:00 +0000"), None);
    assert!(time_of("01/Dec/2020:00:00:00 +0000").is_some());
}

#[test]
fn time_of_day_ranges() {
    assert_eq!(time_of("01/Jan/2020:24:00:00 +0000"), None);
    assert_eq!(time_of("01/Jan/2020:00:60:00 +0000"), None);
    assert_eq!(time_of("01/Jan/2020:00:00:60 +0000"), None);
    assert_eq!(
        time_of("01/Jan/2020:23:59:59 +0000").as_deref(),
        Some("2020-01-01T23:59:59Z")
    );
    assert_eq!(time_of("1/Jan/2020:00:00:00 +0000"), None);
    assert_eq!(time_of("01/Jan/2020:00:00:00 0000"), None);
    assert_eq!(time_of("01/Jan/2020:00:00:00 *0000"), None);
}

#[test]
fn offsets() {
    assert_eq!(time_of("01/Jan/2020:00:00:00 +2400"), None);
    assert_eq!(time_of("01/Jan/2020:00:00:00 +0060"), None);
    assert_eq!(
        time_of("02/Jan/2020:00:00:00 +2359").as_deref(),
        Some("2020-01-01T00:01:00Z")
    );
    assert_eq!(
        time_of("31/Dec/2023:23:30:00 -0100").as_deref(),
        Some("2024-01-01T00:30:00Z")
    );
    assert_eq!(
        time_of("01/Jan/0001:00:30:00 +0100").as_deref(),
        Some("0000-12-31T23:30:00Z")
    );
    assert_eq!(
        time_of("31/Dec/9999:23:30:00 -0100").as_deref(),
        Some("10000-01-01T00:30:00Z")
    );
}

#[test]
fn bytes_field() {
    assert_eq!(ok(with_status_bytes("200 -")).bytes, 0);
    assert_eq!(ok(with_status_bytes("200 - x")).bytes, 0);
    assert_eq!(p(with_status_bytes("200 -x")), None);
    assert_eq!(p(with_status_bytes("200 --")), None);
    assert_eq!(
        ok(with_status_bytes("200 18446744073709551615")).bytes,
        u64::MAX
    );
    assert_eq!(p(with_status_bytes("200 18446744073709551616")), None);
    assert_eq!(p(with_status_bytes("200 99999999999999999999999")), None);
    assert_eq!(
        ok(with_status_bytes("200 000000000000000000000042")).bytes,
        42
    );
    assert_eq!(p(with_status_bytes("200 12a")), None);
    assert_eq!(p(with_status_bytes("200 abc")), None);
    assert_eq!(p(with_status_bytes("200 ")), None);
    assert_eq!(p(with_status_bytes("200 12\t")), None);
}

#[test]
fn status_field() {
    assert_eq!(ok(with_status_bytes("000 1")).status, 0);
    assert_eq!(ok(with_status_bytes("999 1")).status, 999);
    assert_eq!(p(with_status_bytes("2000 1")), None);
    assert_eq!(p(with_status_bytes("20 1")), None);
    assert_eq!(p(with_status_bytes("2x0 1")), None);
}

#[test]
fn escaped_quotes_kept_verbatim() {
    let pl = ok(br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET /a\"b HTTP/1.1" 200 5 "-" "Moz \"x\" \\""#);
    assert_eq!(pl.request, br#"GET /a\"b HTTP/1.1"#);
    assert_eq!(pl.path, br#"/a\"b"#);
    assert_eq!(pl.user_agent, Some(&br#"Moz \"x\" \\"#[..]));
    assert_eq!(pl.referer, Some(&b"-"[..]));
}

#[test]
fn backslash_at_end_of_line() {
    assert_eq!(
        p(br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET \"#),
        None
    );
    // In the UA: the group cannot close, ` .*` still matches.
    let pl = ok(with_status_bytes(r#"200 5 "r" "ua\"#));
    assert_eq!(pl.user_agent, None);
}

#[test]
fn invalid_utf8_carried() {
    let line =
        b"1.2.\xff - - [01/Jan/2020:00:00:00 +0000] \"GET /\xc3( HTTP/1.1\" 200 5 \"r\" \"ua\xfe\"";
    let pl = ok(line);
    assert_eq!(pl.client, b"1.2.\xff");
    assert_eq!(pl.path, b"/\xc3(");
    assert_eq!(pl.user_agent, Some(&b"ua\xfe"[..]));
}

#[test]
fn whitespace_in_fields() {
    assert_eq!(
        p(br#"1.2.3.4	x - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 5"#),
        None
    );
    assert_eq!(
        p(br#"1.2.3.4  - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 5"#),
        None
    );
    assert_eq!(
        p(b"1.2.3.4 - \r [01/Jan/2020:00:00:00 +0000] \"GET / HTTP/1.1\" 200 5"),
        None
    );
    // CR in the middle of the request or the ignored tail is fine.
    let pl = ok(b"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] \"GET /\rx HTTP/1.1\" 200 5 a\rb");
    assert_eq!(pl.path, b"/\rx");
    // LF cannot be in the ignored tail (`.` excludes it).
    assert_eq!(p(with_status_bytes("200 5 a\nb")), None);
}

#[test]
fn request_shapes() {
    let mp = |r: &[u8]| {
        let line = with_request(r);
        let pl = ok(&line);
        (pl.method.to_vec(), pl.path.to_vec(), pl.request == r)
    };
    let dash = (b"-".to_vec(), b"-".to_vec(), true);
    assert_eq!(mp(b""), dash);
    assert_eq!(mp(b"-"), dash);
    assert_eq!(mp(b"\x16\x03\x01garbage"), dash);
    assert_eq!(mp(b"GET  / HTTP/1.1"), dash);
    assert_eq!(mp(b"GET / HTTP/1.1 "), dash);
    assert_eq!(mp(b"GET /index.html"), dash);
    assert_eq!(mp(b"GET / HTTP/1.1 x"), dash);
    assert_eq!(
        mp(b"GET /a/b?q=1&r=2 HTTP/1.1"),
        (b"GET".to_vec(), b"/a/b".to_vec(), true)
    );
    assert_eq!(
        mp(b"GET ?q HTTP/1.1"),
        (b"GET".to_vec(), b"".to_vec(), true)
    );
    assert_eq!(mp(b"GET\t/ x y"), (b"GET\t/".to_vec(), b"x".to_vec(), true));
}

#[test]
fn missing_fields_and_odd_clients() {
    assert_eq!(
        p(br#"1.2.3.4 - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 5"#),
        None
    );
    assert_eq!(
        p(br#"1.2.3.4 [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 5"#),
        None
    );
    let pl =
        ok(br#"2001:db8::ff00:42:8329 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 5"#);
    assert_eq!(pl.client, b"2001:db8::ff00:42:8329");
    assert_eq!(p(b""), None);
    assert_eq!(p(b" "), None);
    assert_eq!(
        p(br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200"#),
        None
    );
}

#[test]
fn bot_detection() {
    assert!(is_bot(b"Googlebot/2.1"));
    assert!(is_bot(b"BOT"));
    assert!(is_bot(b"my-Crawler"));
    assert!(is_bot(b"SpIdEr"));
    assert!(is_bot(b"Yahoo! Slurp"));
    assert!(!is_bot(b"Mozilla/5.0 (X11; Linux x86_64)"));
    assert!(!is_bot(b"bo"));
    assert!(!is_bot(b"b\xcft"));
    assert!(!is_bot(b""));
    assert!(!is_bot(b"spide"));
    assert!(!is_bot(b"crawle"));
    assert!(!is_bot(b"slur"));
    // Prefilter hits without a whole word.
    assert!(!is_bot(b"Sparc boa CRAWLE slur spide"));
    assert!(is_bot(b"Sparc boa CRAWLE slur spideR"));
    assert!(is_bot(b"xxBoT"));
}

mod equivalence;
