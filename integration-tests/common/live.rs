//! The live dashboard from outside: a `--follow` run that serves it, and a
//! plain HTTP/1.1 `GET` against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `parpipe run -q --follow` over `input` in `--log-format format`,
/// writing to `out`, with the dashboard on a free loopback port and no
/// linger; returns the child and the address it announced. Its stderr is
/// drained on a thread after the announcement, so it never blocks.
pub fn follow_with_dashboard(input: &Path, out: &Path, format: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(super::bin())
        .args(["run", "-q", "--follow", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--log-format", format])
        .args(["--dashboard", "127.0.0.1:0", "--linger", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start parpipe");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("parpipe exited before announcing the dashboard")
            .unwrap();
        if let Some(rest) = line.strip_prefix("parpipe: dashboard on http://") {
            break rest.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// `GET path` on the dashboard at `addr`: (status code, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}
