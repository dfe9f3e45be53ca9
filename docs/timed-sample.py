#!/usr/bin/env python3
"""Writes a deterministic nginx access log with a virtual host and request
times, as nginx writes it with

    log_format timed '$host $remote_addr - $remote_user [$time_local] "$request" '
                     '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
                     '$request_time $upstream_response_time';

for the report and dashboard screenshots (docs/screenshots.sh).

usage: timed-sample.py LINES [SEED] [--follow SECONDS]  (to standard output)

With --follow, writes the lines over SECONDS, flushing as it goes, with
the current time as the log time (a server writing live).
"""
import random
import sys
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
lines = int(args[0]) if args else 50000
rng = random.Random(int(args[1]) if len(args) > 1 else 7)
follow = None
if "--follow" in sys.argv:
    follow = float(sys.argv[sys.argv.index("--follow") + 1])

hosts = ["www.example.com", "api.example.com", "static.example.com"]
paths = [
    ("/", 0.04), ("/index.html", 0.03), ("/api/v1/orders", 0.12), ("/api/v1/search", 0.25),
    ("/api/v1/login", 0.08), ("/static/app.js", 0.005), ("/static/style.css", 0.004),
    ("/images/logo.png", 0.003), ("/products/42", 0.06), ("/cart", 0.09), ("/checkout", 0.4),
    ("/wp-login.php", 0.01), ("/health", 0.001), ("/feed.xml", 0.02),
]
weights = [30, 10, 14, 12, 5, 20, 15, 18, 9, 6, 3, 2, 8, 4]
agents = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
referers = ["-", "https://www.google.com/", "https://news.ycombinator.com/item?id=1", "https://www.example.com/"]
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
start = 1702900000  # 2023-12-18
out = sys.stdout


def stamp(t):
    g = time.gmtime(t)
    return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (g.tm_mday, months[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)


for i in range(lines):
    if follow is not None:
        t = time.time()
    else:
        # Two days, busier by day than by night.
        t = start + int(i * 172800 / lines)
    k = rng.choices(range(len(paths)), weights)[0]
    path, base = paths[k]
    status = rng.choices([200, 304, 301, 404, 500, 502, 503], [80, 8, 2, 6, 1.5, 1, 0.5])[0]
    if path == "/wp-login.php":
        status = 404
    size = 0 if status in (304, 301) else int(rng.lognormvariate(8, 1.2))
    rt = base * rng.lognormvariate(0, 0.6) * (3 if status >= 500 else 1)
    method = "POST" if path in ("/api/v1/login", "/checkout") else rng.choices(["GET", "HEAD"], [97, 3])[0]
    client = "198.51.100.%d" % rng.randint(1, 254) if rng.random() < 0.8 else "2001:db8::%x" % rng.randint(1, 4000)
    line = '%s %s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" %.3f %.3f' % (
        hosts[k % 3], client, stamp(t), method, path, status, size,
        rng.choice(referers), rng.choice(agents), rt, rt * 0.9)
    if i == lines // 2:
        # A hostile line: markup in the path and the user agent.
        line = '%s 203.0.113.66 - - [%s] "GET /<script>alert(1)</script> HTTP/1.1" 404 0 "-" "<img src=x onerror=alert(2)>" 0.001 0.001' % (hosts[0], stamp(t))
    if i in (lines // 3, lines // 3 + 1):
        line = "\x16\x03\x01 garbage from a TLS client on the plain port"
    out.write(line + "\n")
    if follow is not None:
        out.flush()
        time.sleep(follow / lines)
