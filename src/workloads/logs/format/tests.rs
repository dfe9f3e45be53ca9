//! Each format against lines written from its server's documentation.

use super::*;

fn parsed<'a>(format: &str, line: &'a [u8]) -> Fields<'a> {
    match LogFormat::parse(format).unwrap().parse_line(line) {
        Outcome::Parsed(f) => f,
        other => panic!("{format}: {other:?} for {}", String::from_utf8_lossy(line)),
    }
}

fn rejected(format: &str, line: &[u8]) -> bool {
    LogFormat::parse(format).unwrap().parse_line(line) == Outcome::Rejected
}

const T: i64 = 971_211_336; // 2000-10-10T20:55:36Z

#[test]
fn common_and_vcombined() {
    let f = parsed("common", b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?x=1 HTTP/1.0\" 200 2326");
    assert_eq!(
        (&f.client[..], &f.method[..], &f.path[..]),
        (&b"127.0.0.1"[..], &b"GET"[..], &b"/apache_pb.gif"[..])
    );
    assert_eq!((f.status, f.bytes, f.utc), (200, 2326, T));
    assert!(rejected(
        "common",
        b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 2000 1"
    ));
    let f = parsed("vcombined", b"www.example.com:443 192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 404 12 \"https://r.example/\" \"curl/8.0\"");
    assert_eq!(f.vhost.as_deref(), Some(&b"www.example.com"[..]));
    assert_eq!(f.client.as_ref(), b"192.0.2.7");
    assert_eq!(f.referer.as_deref(), Some(&b"https://r.example/"[..]));
    assert_eq!(f.user_agent.as_deref(), Some(&b"curl/8.0"[..]));
    assert!(rejected("combined", b"www.example.com:443 192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 404 12 \"-\" \"-\""));
}

#[test]
fn nginx_and_apache_configuration_lines() {
    let nginx = "nginx:'$remote_addr - $remote_user [$time_local] \"$request\" ' '$status $body_bytes_sent \"$http_referer\" ' '\"$http_user_agent\" $request_time $upstream_response_time'";
    let f = parsed(nginx, b"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /api?q=1 HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\" 0.125 0.120");
    assert_eq!((f.latency_us, &f.path[..]), (Some(125_000), &b"/api"[..]));
    let upstream = "nginx:$remote_addr [$time_local] $status $upstream_response_time \"$request\"";
    let f = parsed(
        upstream,
        b"::1 [10/Oct/2000:13:55:36 -0700] 502 0.004, 0.002 : 0.010 \"GET / HTTP/1.1\"",
    );
    assert_eq!(f.latency_us, Some(16_000));
    let f = parsed(
        upstream,
        b"::1 [10/Oct/2000:13:55:36 -0700] 502 - \"GET / HTTP/1.1\"",
    );
    assert_eq!(f.latency_us, None);
    let apache = r#"apache:%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D"#;
    let f = parsed(apache, b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"POST /login HTTP/1.1\" 302 - \"-\" \"Mozilla\" 2500");
    assert_eq!(
        (&f.method[..], f.bytes, f.latency_us),
        (&b"POST"[..], 0, Some(2_500))
    );
    assert!(
        LogFormat::parse("nginx:$remote_addr $status").is_err(),
        "no time"
    );
    assert!(
        LogFormat::parse("nginx:$remote_addr$status [$time_local]").is_err(),
        "fields touch"
    );
    assert!(LogFormat::parse("apache:%h %{%d/%m}t %s").is_err());
    assert!(LogFormat::parse("bogus").is_err());
}

#[test]
fn traefik_alb_cloudfront_w3c_caddy_json() {
    let f = parsed("traefik", b"192.0.2.9 - - [10/Oct/2000:13:55:36 -0700] \"GET /whoami HTTP/1.1\" 200 410 \"-\" \"curl/7.68.0\" 12 \"whoami@docker\" \"http://172.18.0.3:80\" 3ms");
    assert_eq!((f.status, f.latency_us), (200, Some(3_000)));
    let f = parsed("alb", b"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 \"GET https://www.example.com:443/index.html?a=1 HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 1 2018-07-02T22:22:48.364000Z \"authenticate,forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" TID_1234");
    assert_eq!(
        (&f.client[..], &f.path[..], f.bytes),
        (&b"192.168.131.39"[..], &b"/index.html"[..], 57)
    );
    assert_eq!(
        (f.latency_us, f.vhost.as_deref()),
        (Some(171_000), Some(&b"www.example.com"[..]))
    );
    let f = parsed("alb", b"http 2018-07-02T22:23:00.186641Z app/lb/1 192.168.131.39:2817 - -1 -1 -1 503 - 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - - \"Root=1\" \"-\" \"-\" 0 x");
    assert_eq!((f.status, f.latency_us), (503, None));
    let f = parsed("cloudfront", b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-");
    assert_eq!(
        (f.bytes, f.status, f.latency_us, f.referer.is_none()),
        (392, 200, Some(1_000), true)
    );
    let cf = LogFormat::parse("cloudfront").unwrap();
    assert_eq!(cf.parse_line(b"#Version: 1.0"), Outcome::Directive);
    let iis = "w3c:date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";
    let f = parsed(iis, b"2000-10-10 20:55:36 10.0.0.5 GET /default.htm - 80 - 192.0.2.33 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 15");
    assert_eq!(
        (f.utc, f.latency_us, &f.path[..]),
        (T, Some(15_000), &b"/default.htm"[..])
    );
    assert!(rejected(iis, b"2000-10-10 20:55:36 10.0.0.5 GET"));
    assert!(LogFormat::parse("w3c:c-ip cs-method").is_err());
    assert!(LogFormat::parse("w3c").unwrap().needs_w3c_fields());
    let f = parsed("caddy", br#"{"level":"info","ts":971211336.5241024,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"41342","client_ip":"127.0.0.1","proto":"HTTP/2.0","method":"GET","host":"localhost","uri":"/a?b=1","headers":{"User-Agent":["curl/7.82.0"]}},"bytes_read":0,"duration":0.000929675,"size":10900,"status":200}"#);
    assert_eq!(
        (f.utc, f.latency_us, &f.path[..], f.bytes),
        (T, Some(929), &b"/a"[..], 10900)
    );
    assert_eq!(f.user_agent.as_deref(), Some(&b"curl/7.82.0"[..]));
    let f = parsed("json", br#"{"time_local":"10/Oct/2000:13:55:36 -0700","remote_addr":"192.0.2.1","request":"GET /x HTTP/1.1","status":"404","body_bytes_sent":"0","request_time":"0.010","http_user_agent":"Go-http-client/1.1"}"#);
    assert_eq!(
        (f.status, f.latency_us, &f.path[..]),
        (404, Some(10_000), &b"/x"[..])
    );
    let traefik_json = "json:client=ClientHost,time=StartUTC,method=RequestMethod,uri=RequestPath,status=DownstreamStatus,bytes=DownstreamContentSize,duration_ns=Duration,user_agent=request_User-Agent";
    let f = parsed(traefik_json, br#"{"ClientHost":"192.0.2.4","StartUTC":"2000-10-10T20:55:36.1Z","RequestMethod":"GET","RequestPath":"/","DownstreamStatus":200,"DownstreamContentSize":5,"Duration":2500000}"#);
    assert_eq!((f.utc, f.latency_us, f.bytes), (T, Some(2_500), 5));
    assert!(rejected("json", b"not json"));
    assert!(rejected("json", br#"{"status":200}"#), "no time");
    assert!(LogFormat::parse("json:nope=x").is_err());
}

#[test]
fn combined_is_the_contract_parser() {
    let line = b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5 \"-\" \"Googlebot/2.1\" \"-\"";
    let f = parsed("combined", line);
    let p = crate::workloads::logs::parse::parse_line(line).unwrap();
    assert_eq!(
        (f.utc, f.status, f.user_agent.as_deref()),
        (p.utc, p.status, p.user_agent)
    );
    assert_eq!(LogFormat::default(), LogFormat::parse("combined").unwrap());
    for name in BUILT_IN {
        assert!(LogFormat::built_in(name).is_some(), "{name}");
    }
}
