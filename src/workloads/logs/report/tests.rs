//! Structural tests of `report.html`: it is balanced HTML with one script
//! of its own, shows the key numbers, escapes every text from the log,
//! hides the sections of absent keys, and stays bounded.

use super::html;

/// Elements that have no end tag.
const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];

/// Checks that every element is closed in order (outside the contents of
/// `<style>` and `<script>`, which are skipped) and returns the tag names
/// in document order.
fn balanced(page: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut tags = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>').expect("an unclosed tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_default();
            assert_eq!(open, name, "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "a '<' that starts no tag: <{tag}>");
        tags.push(name.clone());
        if name == "style" || name == "script" {
            let close = format!("</{name}>");
            let end = rest.find(&close).expect("an unclosed style or script");
            rest = &rest[end + close.len()..];
            continue;
        }
        if !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    tags
}

const HOSTILE: &str = "<script>alert(1)</script>";

fn summary_json(extra: &str) -> String {
    format!(
        r#"{{"bots":3,"bytes":123456789,"clients":1245,"dropped":0,
        "hours":{{"1995-07-01T04":10,"1995-07-01T07":20}},"lines":32,
        "methods":{{"GET":29,"\"><img src=x onerror=alert(2)>":1}},"parsed":30,"rejected":2,
        "rejected_samples":[4,9],"status":{{"200":25,"404":4,"503":1}},
        "status_class_bytes":{{"2xx":123000000,"4xx":456789,"5xx":0}},
        "top_clients":[["10.0.0.1",20],["'onmouseover='x",10]],
        "top_paths":[["/index.html",25],["{}",5]]{extra}}}"#,
        HOSTILE.replace('"', "\\\"")
    )
}

#[test]
fn the_page_is_balanced_and_shows_the_key_numbers() {
    let page = html(&summary_json(""), &[b"bad line", b"<b>bold</b> \xff"]);
    let tags = balanced(&page);
    assert_eq!(tags.iter().filter(|t| *t == "script").count(), 1);
    for shown in [
        "1,245",       // distinct clients
        "118 MiB",     // bytes
        "123,456,789", // exact bytes
        "93.8 %",      // 30 of 32 lines valid
        "404",         // a status code …
        "Not Found",   // … with its name
        "Service Unavailable",
        "/index.html",
        "10.0.0.1",
        "line 9",
        "bad line",
        "1995-07-01 04:00", // the first hour, and the last
        "1995-07-01 07:00",
    ] {
        assert!(page.contains(shown), "{shown} is not shown");
    }
    // Hours without requests between the first and last are bars of 0.
    assert_eq!(page.matches("<rect").count(), 4);
}

#[test]
fn text_from_the_log_is_escaped() {
    let page = html(
        &summary_json(r#","vhosts":{"<i>host</i>":30}"#),
        &[b"</pre><script>alert(3)</script>"],
    );
    balanced(&page);
    assert!(!page.contains(HOSTILE));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<img"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("&#39;onmouseover=&#39;x"));
    assert!(page.contains("&lt;i&gt;host&lt;/i&gt;"));
    assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert(3)"));
    assert_eq!(page.matches("<script").count(), 1);
    // Nothing is fetched from anywhere: no external reference at all.
    for external in ["http://", "https://", "src=\"", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
}

#[test]
fn absent_keys_are_not_shown() {
    let plain = html(&summary_json(""), &[]);
    for id in ["id=\"latency\"", "id=\"vhosts\"", "id=\"more\""] {
        assert!(!plain.contains(id), "{id}");
    }
    let latency = r#","latency":{"count":30,"max_us":7063000,"p50_us":26624,"p90_us":196608,"p99_us":671744,"sum_us":2262540},
        "top_paths_latency":[["/index.html",{"count":25,"max_us":900,"p50_us":500,"p90_us":800,"p99_us":900,"sum_us":12500}]],
        "vhosts":{"www.example.com":30}"#;
    let timed = html(&summary_json(latency), &[]);
    balanced(&timed);
    for shown in [
        "id=\"latency\"",
        "id=\"vhosts\"",
        "26.6 ms",
        "672 ms",
        "7.06 s",
        "www.example.com",
    ] {
        assert!(timed.contains(shown), "{shown}");
    }
    // A key no section knows is drawn generically.
    let more = html(
        &summary_json(r#","per_day":{"1995-07-01":{"bytes":7,"requests":30}}"#),
        &[],
    );
    balanced(&more);
    assert!(
        more.contains("id=\"more\"") && more.contains("per_day") && more.contains("1995-07-01")
    );
    // An empty run still gives a page.
    let empty = html(
        r#"{"bots":0,"bytes":0,"clients":0,"dropped":0,"hours":{},"lines":0,"methods":{},"parsed":0,"rejected":0,"rejected_samples":[],"status":{},"status_class_bytes":{},"top_clients":[],"top_paths":[]}"#,
        &[],
    );
    balanced(&empty);
    assert!(!empty.contains("id=\"time\"") && !empty.contains("id=\"status\""));
}

#[test]
fn long_lists_and_long_texts_are_cut() {
    let paths: Vec<String> = (0..2000)
        .map(|i| format!("[\"/p{i}\",{}]", 3000 - i))
        .collect();
    let long = "x".repeat(100_000);
    let json = format!(
        r#"{{"lines":1,"parsed":1,"rejected":0,"dropped":0,"top_paths":[["{long}",9999],{}]}}"#,
        paths.join(",")
    );
    let page = html(&json, &[]);
    balanced(&page);
    assert!(page.contains("1,501 more in summary.json"));
    assert!(page.len() < 200_000, "{} bytes", page.len());
}

#[test]
fn the_same_summary_gives_the_same_bytes() {
    let json = summary_json("");
    assert_eq!(html(&json, &[b"x"]), html(&json, &[b"x"]));
}

#[test]
fn the_dimension_keys_are_drawn_when_present() {
    let dims = r#","time_zone":"Europe/Berlin",
        "hourly":{"1995-07-01T04":{"bytes":1000,"clients":7,"requests":10},"1995-07-01T07":{"bytes":3000,"clients":9,"requests":20}},
        "daily":{"1995-07-01":{"bytes":4000,"clients":12,"requests":30}},
        "top_paths_stats":[["/index.html",{"4xx":0,"5xx":1,"bytes":777777,"hits":25}],["<script>alert(1)</script>",{"4xx":5,"5xx":0,"bytes":0,"hits":5}]],
        "top_not_found":[["/missing<b>",4]],
        "top_referrers":[["-",20],["evil.example<script>",10]],
        "top_browsers":[["Firefox",20],["<i>Bot</i>",3]],
        "top_operating_systems":[["Linux",20]],
        "top_crawlers":[["Googlebot",3]]"#;
    let page = html(&summary_json(dims), &[]);
    balanced(&page);
    for shown in [
        "id=\"notfound\"",
        "id=\"referrers\"",
        "id=\"agents\"",
        "Bytes per hour (Europe/Berlin)",
        "Distinct clients per hour (Europe/Berlin)",
        "hours, Europe/Berlin",
        "760 KiB", // the path's bytes
        "Firefox",
        "Googlebot",
        "Linux",
        "/missing&lt;b&gt;",
        "evil.example&lt;script&gt;",
        "&lt;i&gt;Bot&lt;/i&gt;",
    ] {
        assert!(page.contains(shown), "{shown} is not shown");
    }
    assert_eq!(page.matches("<script").count(), 1);
    assert!(!page.contains("id=\"more\""), "every new key has a section");
    // 4 hour bars each for requests, bytes and distinct clients.
    assert_eq!(page.matches("<rect").count(), 12);
}
