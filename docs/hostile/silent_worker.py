#!/usr/bin/env python3
"""A worker that holds the token, announces 256 threads, heartbeats and
never answers a chunk (docs/protocol.md §3-4): what a coordinator must
survive without waiting for it. Prints how many chunks it was sent.

usage: silent_worker.py HOST:PORT TOKEN_FILE
"""
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    token = open(sys.argv[2], "rb").read().strip()
    c = socket.create_connection((host, int(port)))
    # Hello {version, worker_id, cores, threads: 256, allowed_roots: []}
    hello = wire.hello_body(worker_id=os.getpid(), cores=256, threads=256)
    c.sendall(wire.frame(hello))
    body = wire.read_frame(c)
    assert body[0] == 1, f"expected a Challenge, got {wire.NAMES[body[0]]}"
    nc, _ = wire.read_bytes(body, 1)
    nw = os.urandom(32)
    proof = wire.mac(token, wire.WORKER_ROLE, nc, nw)
    c.sendall(wire.frame(bytes([2]) + wire.bstr(proof) + wire.bstr(nw)))
    body = wire.read_frame(c)
    assert body[0] == 2, "the coordinator did not prove itself"
    # From here on every frame is tagged (docs/protocol.md, "Integrity").
    session = wire.Session("worker", token, nc, nw, hello)
    received = 0
    last_beat = 0.0
    while True:
        if time.monotonic() - last_beat > 0.2:
            c.sendall(session.frame(bytes([7])))
            last_beat = time.monotonic()
        ready, _, _ = select.select([c], [], [], 0.2)
        if not ready:
            continue
        try:
            body = session.read_frame(c)
        except (EOFError, ConnectionError):
            break
        if body[0] in (4, 9):  # Chunk, ChunkInFiles: kept, never answered
            received += 1
        elif body[0] == 8:  # Shutdown
            break
    print(f"silent worker: sent {received} chunks, answered none", flush=True)


if __name__ == "__main__":
    main()
