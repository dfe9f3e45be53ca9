//! Integrity after the handshake: every frame either side sends once both
//! proofs have verified carries a keyed-BLAKE3 tag under a key of its
//! direction, over an implicit frame counter and the body.
//!
//! - **Keys.** BLAKE3 in its key-derivation mode (`derive_key`), with a
//!   context string naming parpipe, the protocol version and the direction
//!   (`"parpipe protocol 8 2026-12-07 frame key, coordinator to worker"`,
//!   and `…, worker to coordinator`), over the key material `token ‖ Nc ‖ Nw ‖
//!   BLAKE3(hello)`: the token, both handshake nonces (32 bytes each,
//!   checked by the handshake) and the hash of the worker's `Hello` body.
//!   All but the token have fixed lengths, so the material splits one way
//!   only. Fresh nonces make the keys of every connection new; distinct
//!   contexts keep a frame of one direction from verifying in the other
//!   (reflection); the hello's hash binds what the worker announced
//!   (threads, roots) to the keys, so a hello altered on the way leaves the
//!   two sides with different keys and the first frame after the handshake
//!   fails.
//! - **Frames.** The tag is `BLAKE3-keyed(key, n ‖ body)` (32 bytes), `n`
//!   the frame's number in its direction (0 for the first frame after the
//!   handshake) as 8 big-endian bytes. `n` is never sent: each side counts
//!   the frames it sends and receives, so a frame replayed, dropped or
//!   moved makes the next tag fail. The tag follows the body and counts in
//!   the frame's length (and so toward the frame limit).
//! - **Checking.** The tag is compared in constant time (`blake3::Hash`'s
//!   equality), before the body is decoded. A frame that fails ends the
//!   connection ([`ProtocolError::Integrity`]).
//!
//! Why BLAKE3 rather than HMAC-SHA256: every byte of every chunk is
//! hashed by both ends, on the coordinator's one thread; BLAKE3 uses the
//! CPU's vector units over many 1 KiB blocks at once and runs several
//! times faster than SHA-256 even with SHA extensions (docs/protocol.md
//! §5, "The cost of the per-frame MAC").

use super::ProtocolError;

/// Bytes of a frame's tag (keyed BLAKE3, default output length).
pub const TAG_LEN: usize = blake3::OUT_LEN;

/// The `derive_key` context of the key of frames from the coordinator to
/// a worker.
const TO_WORKER: &str = "parpipe protocol 8 2026-12-07 frame key, coordinator to worker";
/// The `derive_key` context of the key of frames from a worker to the
/// coordinator.
const TO_COORDINATOR: &str = "parpipe protocol 8 2026-12-07 frame key, worker to coordinator";

/// Which end of a connection a party is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The coordinator (it listens).
    Coordinator,
    /// A worker (it connects).
    Worker,
}

/// One direction of a session: its key and the number of the next frame.
#[derive(Clone)]
pub struct FrameMac {
    /// The direction's BLAKE3 key.
    key: [u8; blake3::KEY_LEN],
    /// Number of the next frame in this direction.
    next: u64,
}

impl std::fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMac")
            .field("key", &"<redacted>")
            .field("next", &self.next)
            .finish()
    }
}

impl FrameMac {
    /// A direction keyed with `key`, at frame 0.
    fn new(key: [u8; blake3::KEY_LEN]) -> Self {
        FrameMac { key, next: 0 }
    }

    fn mac(&self, body: &[u8]) -> blake3::Hash {
        let mut m = blake3::Hasher::new_keyed(&self.key);
        m.update(&self.next.to_be_bytes());
        m.update(body);
        m.finalize()
    }

    /// The tag of the next frame sent, whose body is `body`; counts it.
    pub fn seal(&mut self, body: &[u8]) -> [u8; TAG_LEN] {
        let tag = self.mac(body).into();
        self.next += 1;
        tag
    }

    /// Checks, in constant time, that `tag` is the next received frame's
    /// for `body`, and counts it. Fails with the frame's number.
    pub fn open(&mut self, body: &[u8], tag: &[u8]) -> Result<(), ProtocolError> {
        // `Hash == [u8]` compares in constant time (a tag of another
        // length is simply unequal).
        if self.mac(body) != *tag {
            return Err(ProtocolError::Integrity { frame: self.next });
        }
        self.next += 1;
        Ok(())
    }

    /// Frames sealed or opened so far in this direction.
    pub fn frames(&self) -> u64 {
        self.next
    }
}

/// Both directions of one connection, as one end sees them.
#[derive(Clone, Debug)]
pub struct Session {
    /// Frames this end sends.
    pub send: FrameMac,
    /// Frames this end receives.
    pub recv: FrameMac,
}

impl Session {
    /// The session of `side` after a handshake with coordinator nonce
    /// `nc`, worker nonce `nw` and the worker's hello body `hello` (its
    /// bincode encoding, as [`hello_body`](super::hello_body) gives it).
    pub fn derive(side: Side, token: &[u8], nc: &[u8], nw: &[u8], hello: &[u8]) -> Self {
        let hello_hash = blake3::hash(hello);
        let mut material = Vec::with_capacity(token.len() + nc.len() + nw.len() + TAG_LEN);
        for part in [token, nc, nw, hello_hash.as_bytes()] {
            material.extend_from_slice(part);
        }
        let key = |context: &str| FrameMac::new(blake3::derive_key(context, &material));
        let (to_worker, to_coordinator) = (key(TO_WORKER), key(TO_COORDINATOR));
        match side {
            Side::Coordinator => Session {
                send: to_worker,
                recv: to_coordinator,
            },
            Side::Worker => Session {
                send: to_coordinator,
                recv: to_worker,
            },
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
