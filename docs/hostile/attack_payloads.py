#!/usr/bin/env python3
"""Hostile bytes one level down, inside well-formed frames, from a peer that
holds the token:
  A. a fake coordinator sends a real worker genuine `matrix` Job and then
     Chunk frames whose bincode payload has a huge varint at each position;
  B. a fake worker answers a real coordinator's chunk with a ChunkDone whose
     `logs` partial (captured from a real worker) has a huge varint at each
     position.
usage: attack_payloads.py PARPIPE WORKDIR
"""
import concurrent.futures as cf
import json
import os
import re
import socket
import subprocess
import sys

import wire

PARPIPE, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
TOKEN_FILE = os.path.join(WORK, "token")
TOKEN = os.urandom(16).hex()
open(TOKEN_FILE, "w").write(TOKEN + "\n")
KEY = TOKEN.encode()
v = wire.varint


def as_worker(c):
    """Worker side of the handshake; returns the Job body and the session
    (every frame after the handshake is tagged: docs/protocol.md §4)."""
    nw = os.urandom(32)
    hello = wire.hello_body()
    c.sendall(wire.frame(hello))
    body = wire.read_frame(c)
    nc, _ = wire.read_bytes(body, 1)
    c.sendall(wire.frame(v(2) + wire.bstr(wire.mac(KEY, wire.WORKER_ROLE, nc, nw))
                         + wire.bstr(nw)))
    assert wire.read_frame(c)[0] == 2
    session = wire.Session("worker", KEY, nc, nw, hello)
    job = session.read_frame(c)
    assert job[0] == 3
    return job, session


def as_coordinator(c):
    """Coordinator side of the handshake; returns the session."""
    hello = wire.read_frame(c)
    assert hello[0] == 0
    nc = os.urandom(32)
    c.sendall(wire.frame(v(1) + wire.bstr(nc)))
    body = wire.read_frame(c)
    mac, i = wire.read_bytes(body, 1)
    nw, _ = wire.read_bytes(body, i)
    assert mac == wire.mac(KEY, wire.WORKER_ROLE, nc, nw)
    c.sendall(wire.frame(v(2) + wire.bstr(wire.mac(KEY, wire.COORDINATOR_ROLE, nw, nc))
                         + wire.bstr(nc)))
    return wire.Session("coordinator", KEY, nc, nw, hello)


def coordinator(extra, wait="0.5"):
    global OUTDIR
    import threading
    OUTDIR = os.path.join(WORK, f"out-{threading.get_ident()}")
    p = subprocess.Popen([PARPIPE, "run", "--mode", "multiprocess", "--workers", "0",
                          "--listen", "127.0.0.1:0", "--token-file", TOKEN_FILE,
                          "--worker-wait-timeout", wait, "--heartbeat-timeout", "2",
                          "--out", OUTDIR,
                          "-q"] + extra,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         env=dict(os.environ, RUST_LOG="warn"))
    while True:
        line = p.stderr.readline()
        m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if m or not line:
            break
    return p, int(m.group(1))


def next_work(c, session):
    """Skips heartbeats; returns the next other frame body."""
    while True:
        b = session.read_frame(c)
        if b[0] != 7:
            return b


def capture(extra):
    p, port = coordinator(extra, wait="5")
    c = socket.create_connection(("127.0.0.1", port))
    job, session = as_worker(c)
    chunk = next_work(c, session)
    assert chunk[0] == 4, f"expected Chunk, got {chunk[0]}"
    c.close()
    p.kill()
    p.wait()
    return job, chunk


def worker_answer(job, chunk):
    """Runs a real worker under a fake coordinator: its reply to the chunk."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    w = subprocess.Popen([PARPIPE, "worker", "--connect",
                          f"127.0.0.1:{srv.getsockname()[1]}", "--token-file",
                          TOKEN_FILE, "--threads", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    srv.settimeout(10)
    reply, rc = None, None
    try:
        c, _ = srv.accept()
        c.settimeout(15)
        session = as_coordinator(c)
        c.sendall(session.frame(job) + session.frame(chunk))
        reply = next_work(c, session)
        c.sendall(session.frame(v(8)))
        c.shutdown(socket.SHUT_WR)
        rc = w.wait(timeout=15)
        c.close()
    except Exception as e:  # noqa
        reply = f"fake coordinator: {e!r}".encode()
        w.kill()
        rc = w.wait()
    srv.close()
    return reply, rc, w.stderr.read().decode(errors="replace")


def split_chunk(b):
    i = 1
    seq, i = wire.read_varint(b, i)
    first, i = wire.read_varint(b, i)
    recs, i = wire.read_varint(b, i)
    payload, i = wire.read_bytes(b, i)
    return seq, first, recs, payload


def mutations(data):
    for pos in range(len(data) + 1):
        for h in wire.HUGE:
            yield f"@{pos}/{h:#x}/keep", data[:pos] + v(h) + data[pos + 1:]
            yield f"@{pos}/{h:#x}/cut", data[:pos] + v(h)


def reply_text(r):
    if isinstance(r, bytes) and r[:1] == b"\x06":
        _, i = wire.read_varint(r, 1)
        e, _ = wire.read_bytes(r, i)
        return "ChunkFailed: " + e.decode(errors="replace")
    if isinstance(r, bytes) and r[:1] == b"\x05":
        return "ChunkDone"
    return repr(r)[:200]


def tally(name, rows):
    codes, kinds = {}, {}
    for label, rc, txt in rows:
        codes[str(rc)] = codes.get(str(rc), 0) + 1
        k = re.sub(r"\d+", "N", txt)[:220]
        kinds.setdefault(k, [0, label, txt[:300]])[0] += 1
    print(f"{name}: {len(rows)} cases, exit codes {codes}")
    for n, label, txt in sorted(kinds.values(), reverse=True):
        print(f"    {n:5d} x  e.g. {label}: {txt}")
    return {"cases": len(rows), "exit_codes": codes,
            "kinds": sorted(kinds.values(), reverse=True)}


out = {}
# A. matrix chunks with hostile bincode payloads, to a real worker.
mjob, mchunk = capture(["--workload", "matrix", "--records", "4", "--batch-size", "4"])
seq, first, recs, payload = split_chunk(mchunk)
print(f"matrix chunk: seq {seq}, {recs} records, payload {len(payload)} bytes: {payload[:40].hex()}")
base, rc, _ = worker_answer(mjob, mchunk)
print(f"unmutated matrix chunk -> {reply_text(base)}, worker exit {rc}")


def a_case(item):
    label, p = item
    body = v(4) + v(seq) + v(first) + v(recs) + wire.bstr(p)
    r, rc, err = worker_answer(mjob, body)
    bad = "panick" in err or "memory allocation" in err
    return label, rc, ("PANIC " if bad else "") + reply_text(r)


with cf.ThreadPoolExecutor(4) as ex:
    out["A_matrix_payload_to_worker"] = tally(
        "A. matrix Chunk payload mutations -> real worker",
        list(ex.map(a_case, mutations(payload))))

# B. logs partials with hostile bytes, to a real coordinator.
ljob, lchunk = capture(["--records", "1000"])
real, rc, _ = worker_answer(ljob, lchunk)
assert real[0] == 5, reply_text(real)
_, i = wire.read_varint(real, 1)
partial, j = wire.read_bytes(real, i)
stats = real[j:]
print(f"real logs partial: {len(partial)} bytes; stats {len(stats)} bytes")


def b_case(item):
    label, p = item
    co, port = coordinator(["--records", "1000"])
    try:
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(15)
        _, session = as_worker(c)
        ch = next_work(c, session)
        s, *_ = split_chunk(ch)
        c.sendall(session.frame(v(5) + v(s) + wire.bstr(p) + stats))
        rc = co.wait(timeout=30)
        c.close()
    except Exception as e:  # noqa
        co.kill()
        rc = f"{co.wait()} ({e!r})"
    err = co.stderr.read().decode(errors="replace").strip().splitlines()
    txt = err[-1] if err else "(no stderr)"
    if any("panick" in l or "memory allocation" in l for l in err):
        txt = "PANIC " + txt
    return label, rc, txt


items = list(mutations(partial))
# every position of the first 64 bytes; then every 97th position, the
# varint replacing the byte ("keep"), so the rest of the partial follows.
def pos_of(it):
    return int(it[0][1:].split("/")[0])
items = [it for it in items if pos_of(it) < 64
         or (pos_of(it) % 97 == 0 and it[0].endswith("keep"))]
print(f"B: {len(items)} cases", flush=True)
with cf.ThreadPoolExecutor(3) as ex:
    out["B_logs_partial_to_coordinator"] = tally(
        "B. logs ChunkDone.partial mutations -> real coordinator",
        list(ex.map(b_case, items)))
json.dump(out, open(os.path.join(WORK, "payload-result.json"), "w"), indent=1)
