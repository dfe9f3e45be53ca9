#!/usr/bin/env python3
"""Attacks a listening `parpipe run --mode multiprocess` coordinator as a
stranger (no token) during a long run and polls its VmHWM every 20 ms.

usage: attack_coordinator.py PARPIPE OUTDIR RECORDS [--no-attack]
"""
import concurrent.futures as cf
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

import wire

PARPIPE, OUT, RECORDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
ATTACK = "--no-attack" not in sys.argv
WORK = os.path.dirname(OUT.rstrip("/")) or "."
os.makedirs(WORK, exist_ok=True)
TOKEN = os.path.join(WORK, "token")
with open(TOKEN, "w") as f:
    f.write(os.urandom(24).hex() + "\n")

log_path = OUT + ".stderr"
log = open(log_path, "wb")
cmd = [PARPIPE, "run", "--mode", "multiprocess", "--workers", "2",
       "--listen", "127.0.0.1:0", "--token-file", TOKEN,
       "--records", str(RECORDS), "--seed", "3", "--out", OUT]
t0 = time.time()
proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)

# Learn the port from the first stderr line; keep copying stderr to the log.
port = None
first = proc.stderr.readline()
log.write(first)
m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", first)
port = int(m.group(1))


def pump():
    for line in proc.stderr:
        log.write(line)
    log.flush()


threading.Thread(target=pump, daemon=True).start()

peak = {"hwm": 0, "rss_max": 0, "samples": 0}
stop = threading.Event()


def poll():
    while not stop.is_set():
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                st = f.read()
            hwm = int(re.search(r"VmHWM:\s+(\d+)", st).group(1))
            rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
            peak["hwm"] = max(peak["hwm"], hwm)
            peak["rss_max"] = max(peak["rss_max"], rss)
            peak["samples"] += 1
        except (OSError, AttributeError):
            pass
        time.sleep(0.02)


threading.Thread(target=poll, daemon=True).start()
stats = {}


def connect():
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    return c


def outcome(c, wait):
    """How the coordinator answered: 'closed' (EOF/RST) or 'open' (we gave up)."""
    c.settimeout(wait)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                return "closed"
    except socket.timeout:
        return "open"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    finally:
        c.close()


def send_frame(item):
    label, fr = item
    try:
        c = connect()
        c.sendall(fr)
        return outcome(c, 2.0)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except OSError as e:
        return f"error {e}"


def tally(name, results):
    d = {}
    for r in results:
        d[r] = d.get(r, 0) + 1
    stats[name] = d
    print(f"[{time.time() - t0:6.1f}s] {name}: {d}", flush=True)


def big_body(_):
    """Declares 64 MiB - 1 and sends it (starting like a Hello)."""
    n = (64 << 20) - 1
    sent = 0
    try:
        c = connect()
        c.sendall(n.to_bytes(4, "big") + b"\x00")
        sent = 1
        chunk = os.urandom(1 << 20)
        while sent < n:
            k = min(len(chunk), n - sent)
            c.sendall(chunk[:k])
            sent += k
        r = outcome(c, 2.0)
        return f"{r} (whole body sent)"
    except (ConnectionResetError, BrokenPipeError):
        return f"closed after {sent >> 10} KiB of body"
    except OSError as e:
        return f"error {e}"


def garbage(i):
    rnd = random.Random(i)
    data = rnd.randbytes(rnd.randint(1, 20000))
    try:
        c = connect()
        c.sendall(data)
        return outcome(c, 2.0)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except OSError as e:
        return f"error {e}"


def silent(n, hold):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect())
        except OSError:
            pass
    t = time.time()
    res = []
    with cf.ThreadPoolExecutor(n) as ex:
        res = list(ex.map(lambda c: outcome(c, hold), socks))
    return res, time.time() - t


def drip(i):
    """Sends a valid Hello one byte every 0.5 s: the whole handshake has 10 s."""
    body = (wire.varint(0) + wire.varint(5) + wire.varint(i) + wire.varint(1)
            + wire.varint(1) + wire.varint(0))
    data = wire.frame(body) * 20
    t = time.time()
    try:
        c = connect()
        for b in data:
            c.sendall(bytes([b]))
            c.settimeout(0.5)
            try:
                if not c.recv(65536):
                    return f"closed after {time.time() - t:.0f}s"
            except socket.timeout:
                pass
        return "sent everything"
    except (ConnectionResetError, BrokenPipeError):
        return f"closed after {time.time() - t:.0f}s"
    except OSError as e:
        return f"error {e}"


def round_(r):
    tag = f"round {r}: "
    tally(tag + "issue 15-byte frame", [send_frame(("15", bytes.fromhex(
        "0000000b0600fd0000000000010000")))])
    frames = wire.hostile_frames()
    with cf.ThreadPoolExecutor(16) as ex:
        tally(tag + f"{len(frames)} huge-length frames", list(ex.map(send_frame, frames)))
    with cf.ThreadPoolExecutor(32) as ex:
        tally(tag + "32 x 64 MiB-1 bodies at once", list(ex.map(big_body, range(32))))
    with cf.ThreadPoolExecutor(16) as ex:
        tally(tag + "300 garbage connections", list(ex.map(garbage, range(300))))
    with cf.ThreadPoolExecutor(10) as ex:
        dr = ex.map(drip, range(10))
        res, took = silent(100, 13.0)
        tally(tag + f"100 silent connections at once (held {took:.1f}s)", res)
        tally(tag + "10 slow-drip Hellos (1 byte / 0.5 s), alongside", list(dr))


if ATTACK:
    time.sleep(1.0)
    r = 1
    while proc.poll() is None:
        round_(r)
        r += 1
    stats["rounds"] = r - 1
    print(f"coordinator ended after {r - 1} attack rounds", flush=True)

rc = proc.wait()
stop.set()
time.sleep(0.05)
wall = time.time() - t0
log.close()
text = open(log_path, "rb").read().decode(errors="replace")
drops = re.findall(r"dropping connection: (.*)", text)
reasons = {}
for d in drops:
    k = re.sub(r"\d+", "N", d)[:140]
    reasons[k] = reasons.get(k, 0) + 1
rep = {}
try:
    rep = json.load(open(os.path.join(OUT, "report.json")))
except Exception as e:  # noqa
    rep = {"error": str(e)}
res = {
    "cmd": " ".join(cmd), "exit": rc, "wall_s": round(wall, 1),
    "vmhwm_kib": peak["hwm"], "vmhwm_mib": round(peak["hwm"] / 1024, 1),
    "vmrss_max_mib": round(peak["rss_max"] / 1024, 1), "samples": peak["samples"],
    "dropped_connections": len(drops), "drop_reasons": reasons, "attacks": stats,
}
print(json.dumps(res, indent=1))
json.dump(res, open(OUT + ".result.json", "w"), indent=1)
