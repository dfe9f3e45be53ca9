//! Integrity after the handshake: every frame either side sends once both
//! proofs have verified carries an HMAC-SHA256 tag under a key of its
//! direction, over an implicit frame counter and the body.
//!
//! - **Keys.** HKDF-SHA256 (RFC 5869) with the token as input key
//!   material, the salt `Nc ‖ Nw` (both handshake nonces) and, as info, a
//!   label naming the direction followed by SHA-256 of the worker's
//!   `Hello` body: `"parpipe 7 coordinator to worker" ‖ H(hello)` and
//!   `"parpipe 7 worker to coordinator" ‖ H(hello)`, 32 bytes each. Fresh
//!   nonces make the keys of every connection new; distinct labels keep a
//!   frame of one direction from verifying in the other (reflection); the
//!   hello's hash binds what the worker announced (threads, roots) to the
//!   keys, so a hello altered on the way leaves the two sides with
//!   different keys and the first frame after the handshake fails.
//! - **Frames.** The tag is `HMAC(key, n ‖ body)`, `n` the frame's number
//!   in its direction (0 for the first frame after the handshake) as 8
//!   big-endian bytes. `n` is never sent: each side counts the frames it
//!   sends and receives, so a frame replayed, dropped or moved makes the
//!   next tag fail. The tag follows the body and counts in the frame's
//!   length (and so toward the frame limit).
//! - **Checking.** The tag is checked in constant time (`verify_slice`),
//!   before the body is decoded. A frame that fails ends the connection
//!   ([`ProtocolError::Integrity`]).

use super::ProtocolError;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Bytes of a frame's tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;

/// The HKDF info label of frames from the coordinator to a worker.
const TO_WORKER: &[u8] = b"parpipe 7 coordinator to worker";
/// The HKDF info label of frames from a worker to the coordinator.
const TO_COORDINATOR: &[u8] = b"parpipe 7 worker to coordinator";

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
    /// HMAC keyed once; each frame's MAC starts from a copy.
    keyed: Hmac<Sha256>,
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
    fn new(key: &[u8]) -> Self {
        FrameMac {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
            next: 0,
        }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut m = self.keyed.clone();
        m.update(&self.next.to_be_bytes());
        m.update(body);
        m
    }

    /// The tag of the next frame sent, whose body is `body`; counts it.
    pub fn seal(&mut self, body: &[u8]) -> [u8; TAG_LEN] {
        let tag = self.mac(body).finalize().into_bytes().into();
        self.next += 1;
        tag
    }

    /// Checks, in constant time, that `tag` is the next received frame's
    /// for `body`, and counts it. Fails with the frame's number.
    pub fn open(&mut self, body: &[u8], tag: &[u8]) -> Result<(), ProtocolError> {
        self.mac(body)
            .verify_slice(tag)
            .map_err(|_| ProtocolError::Integrity { frame: self.next })?;
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
        let mut salt = Vec::with_capacity(nc.len() + nw.len());
        salt.extend_from_slice(nc);
        salt.extend_from_slice(nw);
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), token);
        let hello_hash = Sha256::digest(hello);
        let key = |label: &[u8]| {
            let mut okm = [0u8; 32];
            hk.expand_multi_info(&[label, &hello_hash], &mut okm)
                .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
            FrameMac::new(&okm)
        };
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
