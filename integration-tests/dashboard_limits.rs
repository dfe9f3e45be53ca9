//! The dashboard cannot be locked out: strangers holding partial requests,
//! a flood of connections and authorised event streams that never read
//! all leave a legitimate request answered; a stream that stops reading
//! gives its place back; `HEAD` answers like `GET` on every route. Real
//! sockets against the library's server, on a board published by hand.

use parpipe::live::{Dashboard, LiveBoard, LiveStatus};
use parpipe::metrics::{ProcessStats, RunReport, StageKind, StageStats};
use parpipe::Token;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const TOKEN: &str = "lockout-test-token";

/// A status whose JSON is about `stages` × 300 bytes.
fn status(records: u64, stages: usize) -> LiveStatus {
    let mut rows = vec![StageStats::new("source", StageKind::Source)];
    rows[0].record_batch(0, records, Duration::from_millis(5));
    for i in 0..stages {
        let mut s = StageStats::new(format!("stage-{i:04}"), StageKind::Stage);
        s.record_batch(records, records, Duration::from_millis(1));
        rows.push(s);
    }
    LiveStatus {
        running: true,
        report: RunReport::new(
            "logs",
            parpipe::Mode::Pipelined,
            Duration::from_secs(1),
            &rows,
            ProcessStats::default(),
        ),
        queues: Vec::new(),
        liveness: Vec::new(),
        history: Vec::new(),
        error: None,
    }
}

/// Sends `request` on a fresh connection and reads the whole answer
/// (the request asks for `Connection: close`), within a generous deadline.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = Vec::new();
    s.read_to_end(&mut text)
        .unwrap_or_else(|e| panic!("no answer to {request:?}: {e}"));
    String::from_utf8_lossy(&text).into_owned()
}

fn request(method: &str, path: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n")
}

fn code(answer: &str) -> u16 {
    answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// (lower-cased headers, body) of an answer; `date` is left out, and the
/// value of `content-length` (a body made at each request, as the
/// metrics with this process's CPU time, may change length between two).
fn split(answer: &str) -> (Vec<String>, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut headers: Vec<String> = head
        .lines()
        .skip(1)
        .map(str::to_ascii_lowercase)
        .filter(|h| !h.starts_with("date:"))
        .map(|h| match h.split_once(':') {
            Some(("content-length", _)) => "content-length".to_string(),
            _ => h,
        })
        .collect();
    headers.sort();
    (headers, body)
}

/// The server on `0.0.0.0` (so a token is required), on a System of its
/// own thread for the test's life.
fn serve(board: LiveBoard) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let token = Token::new(TOKEN).unwrap();
            let dash = Dashboard::start("0.0.0.0:0", board, Some(token)).unwrap();
            tx.send(dash.addr().port()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    SocketAddr::from(([127, 0, 0, 1], rx.recv().unwrap()))
}

/// Descriptors this process may still open, keeping a margin.
fn spare_descriptors() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur as usize
    } else {
        1024
    };
    // The server lives in this process too: two descriptors per
    // connection it holds, and the test's own socket.
    soft.saturating_sub(200) / 3
}

#[test]
fn partial_requests_a_flood_and_stalled_streams_leave_a_legitimate_request_answered() {
    let board = LiveBoard::new();
    board.publish(status(1_000, 4));
    let addr = serve(board.clone());

    // Strangers: partial request heads, held open.
    let partial: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // A flood of bare connections on top (as many as this process may open).
    let flood_size = spare_descriptors().min(2_000);
    let flood: Vec<TcpStream> = (0..flood_size)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    // Authorised event streams that never read (more than may stream).
    let streams: Vec<TcpStream> = (0..24)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request("GET", "/api/events", Some(TOKEN)).as_bytes())
                .unwrap();
            s
        })
        .collect();
    // Statuses keep coming, as in a run, filling what the streams do not read.
    for i in 0..20 {
        board.publish(status(2_000 + i, 64));
    }

    let started = Instant::now();
    let answer = exchange(addr, &request("GET", "/metrics", Some(TOKEN)));
    assert_eq!(code(&answer), 200, "{answer}");
    assert!(answer.contains("parpipe_records_total"), "{answer}");
    let answer = exchange(addr, &request("GET", "/api/status", Some(TOKEN)));
    assert_eq!(code(&answer), 200, "{answer}");
    eprintln!(
        "answered with {} partial, {} flooding and {} stalled-stream connections held, in {:?}",
        partial.len(),
        flood.len(),
        streams.len(),
        started.elapsed()
    );
    // A stranger's complete request is answered and its connection closed.
    let answer = exchange(addr, &request("GET", "/metrics", None));
    assert_eq!(code(&answer), 401, "{answer}");
    drop((partial, flood, streams));
}

#[test]
fn a_stream_that_stops_reading_gives_its_place_back() {
    let board = LiveBoard::new();
    board.publish(status(1_000, 4));
    let addr = serve(board.clone());
    // Every place taken by a stream that stops reading after its status line.
    let stalled: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(request("GET", "/api/events", Some(TOKEN)).as_bytes())
                .unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head[9..12], b"200");
            s
        })
        .collect();
    let full = exchange(addr, &request("GET", "/api/events", Some(TOKEN)));
    assert_eq!(code(&full), 503, "{full}");
    assert!(
        full.to_ascii_lowercase().contains("retry-after: 5"),
        "{full}"
    );
    // Other requests are not held up by the streams.
    let answer = exchange(addr, &request("GET", "/api/status", Some(TOKEN)));
    assert_eq!(code(&answer), 200, "{answer}");
    // Statuses keep coming until a place frees up: the server closes a
    // stream whose reader has left an event untaken for 10 s.
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        board.publish(status(1_000 + n, 128));
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request("GET", "/api/events", Some(TOKEN)).as_bytes())
            .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        if &head[9..12] == b"200" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no place freed in 90 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("a place freed after {:?}", started.elapsed());
    drop(stalled);
}

#[test]
fn head_answers_like_get_on_every_route() {
    let board = LiveBoard::new();
    board.publish(status(1_000, 4));
    let addr = serve(board.clone());
    for path in ["/", "/metrics", "/api/status"] {
        let get = exchange(addr, &request("GET", path, Some(TOKEN)));
        let head = exchange(addr, &request("HEAD", path, Some(TOKEN)));
        assert_eq!(code(&get), 200, "GET {path}: {get}");
        let (get_headers, get_body) = split(&get);
        let (head_headers, head_body) = split(&head);
        assert_eq!(code(&head), 200, "HEAD {path}: {head}");
        assert_eq!(head_headers, get_headers, "HEAD {path}");
        assert!(!get_body.is_empty(), "GET {path}");
        assert!(
            head_body.is_empty(),
            "HEAD {path} has a body: {head_body:?}"
        );
    }
    // The event stream: the same headers, and no stream.
    let head = exchange(addr, &request("HEAD", "/api/events", Some(TOKEN)));
    assert_eq!(code(&head), 200, "{head}");
    let (headers, body) = split(&head);
    assert!(headers.contains(&"content-type: text/event-stream".to_string()));
    assert!(body.is_empty(), "{body:?}");
    board.publish(LiveStatus {
        running: false,
        ..status(2_000, 4)
    });
    let get = exchange(addr, &request("GET", "/api/events", Some(TOKEN)));
    let (get_headers, _) = split(&get);
    assert_eq!(headers, get_headers);
    // Without the token, HEAD is refused as GET is.
    let head = exchange(addr, &request("HEAD", "/metrics", None));
    assert_eq!(code(&head), 401, "{head}");
    // Other methods are not allowed.
    let post = exchange(addr, &request("POST", "/metrics", Some(TOKEN)));
    assert_eq!(code(&post), 405, "{post}");
}
