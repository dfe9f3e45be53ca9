#!/usr/bin/env python3
"""Tries to lock a parpipe dashboard out, then times a legitimate request.

Usage: dashboard_lockout.py PARPIPE [PARTIAL [FLOOD [STREAMS]]]

Starts `PARPIPE run --dashboard 0.0.0.0:PORT` (a token is then required)
on a long generated input, opens PARTIAL connections that send half a
request head and stop (default 200), FLOOD bare connections (default
2000) and STREAMS authorised /api/events streams that never read
(default 24), keeps them all open, and times an authorised GET /metrics
and a HEAD /metrics. Prints the times and status lines, then stops the run.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

TOKEN = "lockout-measure-token"


def request(method, path, token):
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Connection: close\r\n\r\n".encode()


def timed(port, method, path, deadline=120.0):
    started = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=deadline)
    s.settimeout(deadline)
    s.sendall(request(method, path, TOKEN))
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return time.monotonic() - started, f"no answer: {e}"
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return time.monotonic() - started, status or "connection closed, no answer"


def main():
    parpipe = sys.argv[1]
    partial_n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    flood_n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    streams_n = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    out = tempfile.mkdtemp()
    env = dict(os.environ, PARPIPE_TOKEN=TOKEN)
    run = subprocess.Popen(
        [parpipe, "run", "-q", "--records", "1000000000000", "--out", out,
         "--dashboard", "0.0.0.0:0"],
        env=env, stderr=subprocess.PIPE, text=True)
    port = None
    for line in run.stderr:
        m = re.match(r"parpipe: dashboard on http://[^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    held = []
    try:
        for _ in range(partial_n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            held.append(s)
        for _ in range(flood_n):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        for _ in range(streams_n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request("GET", "/api/events", TOKEN))
            held.append(s)
        print(f"holding {partial_n} partial requests, {flood_n} bare connections, "
              f"{streams_n} never-reading event streams")
        for method in ("GET", "HEAD"):
            took, status = timed(port, method, "/metrics")
            print(f"{method} /metrics with the token: {status!r} in {took:.3f} s")
    finally:
        for s in held:
            s.close()
        run.kill()
        run.wait()


if __name__ == "__main__":
    main()
