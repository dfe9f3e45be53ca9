#!/usr/bin/env python3
"""A fake coordinator: each hostile frame goes to a fresh `parpipe worker`,
in three phases:
  pre   right after the worker's Hello (before any authentication),
  auth  after a genuine handshake (both proofs verified), instead of the Job,
  job   after the handshake and a genuine Job captured from a real coordinator.
After the handshake each hostile body goes out in a frame tagged with the
session's key (docs/protocol.md §4), so that it reaches the worker's decoder.
Counts exit codes and collects the workers' error messages.

usage: attack_worker.py PARPIPE WORKDIR [phase ...] [--keep-alive N]
(SEC_LIMIT=K: only about K of the frames, for a quick try)
"""
import concurrent.futures as cf
import json
import os
import re
import socket
import subprocess
import sys
import time

import wire

PARPIPE, WORK = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
KEEP = 0
if "--keep-alive" in args:
    i = args.index("--keep-alive")
    KEEP = int(args[i + 1])
    del args[i:i + 2]
PHASES = args or ["pre", "auth", "job"]
os.makedirs(WORK, exist_ok=True)
TOKEN_FILE = os.path.join(WORK, "token")
TOKEN = os.urandom(16).hex()
with open(TOKEN_FILE, "w") as f:
    f.write(TOKEN + "\n")
KEY = TOKEN.encode()


def handshake(c, hello_body):
    """The coordinator's side of the handshake; returns the session."""
    assert hello_body[0] == 0, "first message is not a Hello"
    nc = os.urandom(32)
    c.sendall(wire.frame(wire.varint(1) + wire.bstr(nc)))
    body = wire.read_frame(c)
    assert body[0] == 2, f"expected a Proof, got variant {body[0]}"
    mac, i = wire.read_bytes(body, 1)
    nw, i = wire.read_bytes(body, i)
    assert mac == wire.mac(KEY, wire.WORKER_ROLE, nc, nw), "worker proof wrong"
    mine = wire.mac(KEY, wire.COORDINATOR_ROLE, nw, nc)
    c.sendall(wire.frame(wire.varint(2) + wire.bstr(mine) + wire.bstr(nc)))
    return wire.Session("coordinator", KEY, nc, nw, hello_body)


def capture_job():
    """A genuine Job body from a real coordinator (we join it as a worker)."""
    out = os.path.join(WORK, "capture-out")
    p = subprocess.Popen([PARPIPE, "run", "--mode", "multiprocess", "--workers",
                          "0", "--listen", "127.0.0.1:0", "--token-file",
                          TOKEN_FILE, "--records", "1000", "--out", out],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    port = int(re.search(rb":(\d+)", p.stderr.readline()).group(1))
    c = socket.create_connection(("127.0.0.1", port))
    nw = os.urandom(32)
    hello = wire.hello_body()
    c.sendall(wire.frame(hello))
    body = wire.read_frame(c)
    nc, _ = wire.read_bytes(body, 1)
    c.sendall(wire.frame(wire.varint(2) + wire.bstr(wire.mac(
        KEY, wire.WORKER_ROLE, nc, nw)) + wire.bstr(nw)))
    body = wire.read_frame(c)
    assert body[0] == 2
    job = wire.Session("worker", KEY, nc, nw, hello).read_frame(c)
    assert job[0] == 3, f"expected Job, got {job[0]}"
    c.close()
    p.kill()
    p.wait()
    return job


def one(phase, label, fr, job, keep=False):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cmd = [PARPIPE, "worker", "--connect", f"127.0.0.1:{port}", "--token-file",
           TOKEN_FILE, "--connect-timeout", "5"]
    if keep:
        cmd.append("--keep-alive")
    w = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    srv.settimeout(10)
    note = ""
    try:
        c, _ = srv.accept()
        c.settimeout(10)
        hello = wire.read_frame(c)
        if phase in ("auth", "job"):
            session = handshake(c, hello)
            if phase == "job":
                c.sendall(session.frame(job))
            # The hostile body, tagged: it passes the MAC and meets the decoder.
            fr = session.frame(fr[4:])
        try:
            c.sendall(fr)
        except OSError as e:
            note = f"send: {e}"
        if keep:
            # A keep-alive worker should drop this coordinator and come back.
            c.close()
            try:
                c2, _ = srv.accept()
                c2.close()
                note += " reconnected"
            except socket.timeout:
                note += " did not reconnect"
            w.kill()
            rc = w.wait()
            err = w.stderr.read().decode(errors="replace")
            return phase, label, ("alive" if "reconnected" in note else rc), err, note
        try:
            rc = w.wait(timeout=20)
        except subprocess.TimeoutExpired:
            w.kill()
            rc = "hung (killed after 20 s)"
        c.close()
    except Exception as e:  # noqa
        w.kill()
        rc = w.wait()
        note += f" fake coordinator: {e!r}"
    srv.close()
    err = w.stderr.read().decode(errors="replace")
    return phase, label, rc, err, note


def main():
    t0 = time.time()
    job = capture_job()
    print(f"captured a genuine Job body of {len(job)} bytes", flush=True)
    frames = wire.hostile_frames()
    if os.environ.get('SEC_LIMIT'):
        frames = frames[::len(frames) // int(os.environ['SEC_LIMIT'])]
    results = {}
    samples = {}
    bad = []
    for phase in PHASES:
        codes = {}
        msgs = {}
        todo = frames if not KEEP else frames[::max(1, len(frames) // KEEP)][:KEEP]
        with cf.ThreadPoolExecutor(6) as ex:
            for ph, label, rc, err, note in ex.map(
                    lambda lf: one(phase, lf[0], lf[1], job, keep=bool(KEEP)), todo):
                codes[str(rc)] = codes.get(str(rc), 0) + 1
                last = [l for l in err.splitlines() if l.strip()]
                msg = last[-1] if last else "(no stderr)"
                key = re.sub(r"\d+", "N", msg)[:200]
                if key not in msgs:
                    msgs[key] = [0, label, msg]
                msgs[key][0] += 1
                if rc != 1 and not (KEEP and rc == "alive"):
                    bad.append((ph, label, rc, err[-500:], note))
                if "panick" in err or "memory allocation" in err:
                    bad.append((ph, label, rc, err[-500:], "PANIC/ALLOC"))
        results[phase] = {"workers": len(todo), "exit_codes": codes}
        samples[phase] = sorted(msgs.values(), reverse=True)
        print(f"[{time.time() - t0:6.1f}s] phase {phase}: {len(todo)} workers, "
              f"exit codes {codes}", flush=True)
        for n, label, msg in samples[phase]:
            print(f"    {n:5d} x  e.g. {label}: {msg}")
    out = {"results": results, "samples": samples, "not_exit_1": bad[:50],
           "not_exit_1_count": len(bad)}
    json.dump(out, open(os.path.join(WORK, "worker-result.json"), "w"), indent=1)
    print(f"not exit 1 (or panic): {len(bad)}")
    for b in bad[:20]:
        print("   ", b)


main()
