"""parpipe wire (docs/protocol.md §1-4): bincode 2 standard() varints,
frames, the handshake's proofs and the session that tags every frame after
it. Needs the `blake3` package (`pip install blake3`)."""
import hashlib
import hmac
import os
import socket
import struct

import blake3


def varint(v):
    if v < 251:
        return bytes([v])
    if v <= 0xFFFF:
        return b"\xfb" + struct.pack("<H", v)
    if v <= 0xFFFFFFFF:
        return b"\xfc" + struct.pack("<I", v)
    if v <= 0xFFFFFFFFFFFFFFFF:
        return b"\xfd" + struct.pack("<Q", v)
    return b"\xfe" + v.to_bytes(16, "little")


def bstr(b):
    return varint(len(b)) + b


def s(t):
    return bstr(t.encode())


def seq(items):
    return varint(len(items)) + b"".join(items)


def frame(body):
    return struct.pack(">I", len(body)) + body


HUGE = [2**40, 2**63, 2**64 - 1, 2**32, 2**32 - 1]

# The protocol version these scripts speak (src/protocol/mod.rs).
PROTOCOL_VERSION = 9

NAMES = ["Hello", "Challenge", "Proof", "Job", "Chunk", "ChunkDone",
         "ChunkFailed", "Heartbeat", "Shutdown", "ChunkInFiles", "Busy",
         "ChunkUnreadable"]


def valid_bodies():
    """One plausible body per variant, with every kind of field filled."""
    v = varint
    file_range = (s("/data/in.log") + v(0) + v(4096) + bstr(b"\n")
                  + v(4096) + v(1_700_000_000_000_000_000) + v(123456789))
    return [
        v(0) + v(PROTOCOL_VERSION) + v(4242) + v(2) + v(2) + seq([s("/tmp"), s("/var/log")]),
        v(1) + bstr(os.urandom(32)),
        v(2) + bstr(os.urandom(32)) + bstr(os.urandom(32)),
        v(3) + s("logs") + bstr(b"\x00\x01\x02\x03\x04\x05") + v(5000) + v(8192),
        v(4) + v(0) + v(1) + v(2) + bstr(b"GET / HTTP/1.1\nGET /x\n"),
        v(5) + v(0) + bstr(b"\x01\x02\x03\x04") + v(7)
        + seq([v(1) + v(1) + v(9), v(1) + v(1) + v(9)]) + v(99)
        + struct.pack("<d", 0.5) + v(1 << 20),
        v(6) + v(0) + s("boom") + b"\x01" + s("parse") + v(0) + v(1) + v(2) + b"\x00",
        v(7),
        v(8),
        v(9) + v(0) + v(1) + v(2) + seq([file_range]),
        v(11) + v(0) + s("/data/in.log")
        + s("cannot open: Permission denied (os error 13)"),
    ]


def hostile_frames():
    """(label, frame) pairs: the 15-byte frame, then each variant with each
    huge varint replacing each byte of its body (and appended at its end),
    once keeping the rest of the body and once cut right after the varint."""
    out = [("issue-15-byte",
            bytes.fromhex("0000000b0600fd0000000000010000"))]
    for body in valid_bodies():
        name = NAMES[body[0]]
        for pos in range(0, len(body) + 1):
            for h in HUGE:
                hv = varint(h)
                out.append((f"{name}@{pos}/{h:#x}/keep",
                            frame(body[:pos] + hv + body[pos + 1:])))
                out.append((f"{name}@{pos}/{h:#x}/cut",
                            frame(body[:pos] + hv)))
    return out


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        c = sock.recv(n - len(buf))
        if not c:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += c
    return buf


def read_frame(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, n)


def read_varint(b, i):
    x = b[i]
    if x < 251:
        return x, i + 1
    w = {251: 2, 252: 4, 253: 8, 254: 16}[x]
    return int.from_bytes(b[i + 1:i + 1 + w], "little"), i + 1 + w


def read_bytes(b, i):
    n, i = read_varint(b, i)
    return b[i:i + n], i + n


def mac(token, role, first, second):
    return hmac.new(token, role + first + second, hashlib.sha256).digest()


WORKER_ROLE = b"parpipe worker"
COORDINATOR_ROLE = b"parpipe coordinator"


# After the handshake (docs/protocol.md §4, "Integrity"): every frame is
# body ‖ BLAKE3-keyed(direction key, frame number as u64 BE ‖ body), its
# length field counting the tag; keys from BLAKE3's derive_key over
# token ‖ Nc ‖ Nw ‖ BLAKE3(hello).
TAG_LEN = 32
TO_WORKER = "parpipe protocol 8 2026-12-07 frame key, coordinator to worker"
TO_COORDINATOR = "parpipe protocol 8 2026-12-07 frame key, worker to coordinator"


def hello_body(worker_id=1, cores=1, threads=1, roots=()):
    """A Hello body of this protocol version."""
    return (varint(0) + varint(PROTOCOL_VERSION) + varint(worker_id) + varint(cores)
            + varint(threads) + seq([s(r) for r in roots]))


def derive_key(context, material):
    """BLAKE3's key derivation mode: 32 bytes."""
    return blake3.blake3(material, derive_key_context=context).digest()


class Session:
    """One end of a connection after the handshake: `side` is "worker" or
    "coordinator"; `nc`, `nw` the two nonces; `hello` the worker's Hello
    body as sent."""

    def __init__(self, side, token, nc, nw, hello):
        material = token + nc + nw + blake3.blake3(hello).digest()
        to_w = derive_key(TO_WORKER, material)
        to_c = derive_key(TO_COORDINATOR, material)
        self.send_key, self.recv_key = (to_w, to_c) if side == "coordinator" else (to_c, to_w)
        self.sent = 0
        self.received = 0

    @staticmethod
    def _tag(key, n, body):
        return blake3.blake3(struct.pack(">Q", n) + body, key=key).digest()

    def frame(self, body):
        """The next frame we send: length (body and tag), body, tag."""
        tag = self._tag(self.send_key, self.sent, body)
        self.sent += 1
        return struct.pack(">I", len(body) + TAG_LEN) + body + tag

    def open(self, tagged):
        """The body of the next frame received (`tagged`: after the length)."""
        body, tag = tagged[:-TAG_LEN], tagged[-TAG_LEN:]
        if len(tagged) < TAG_LEN or not hmac.compare_digest(
                tag, self._tag(self.recv_key, self.received, body)):
            raise ValueError(f"frame {self.received}: the tag does not verify")
        self.received += 1
        return body

    def read_frame(self, sock):
        return self.open(read_frame(sock))
