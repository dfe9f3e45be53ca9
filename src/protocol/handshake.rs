//! Authentication: the shared [`Token`] and the mutual HMAC-SHA256
//! challenge–response over random nonces (the token never crosses the
//! wire), which ends by installing the connection's [`Session`]: from then
//! on every frame is tagged and checked (see `session.rs`).

use super::bounded::bincode_config;
use super::session::{Session, Side};
use super::{
    read_frame, write_frame, FrameCodec, Message, ProtocolError, HANDSHAKE_TIMEOUT,
    MAX_WORKER_THREADS, NONCE_LEN, PROTOCOL_VERSION, TOKEN_ENV,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

/// The shared secret of a job. Its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from text (surrounding whitespace removed). Empty text is refused.
    pub fn new(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(t.to_string()))
    }

    /// A fresh random token (64 hex digits).
    pub fn random() -> Self {
        Token(
            random_bytes(32)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// Reads a token from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read token file '{}': {e}", path.display()))?;
        Token::new(&text).map_err(|e| format!("token file '{}': {e}", path.display()))
    }

    /// The token in [`TOKEN_ENV`], if set.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(TOKEN_ENV) {
            Ok(v) => Token::new(&v)
                .map(Some)
                .map_err(|e| format!("{TOKEN_ENV}: {e}")),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(format!("{TOKEN_ENV}: {e}")),
        }
    }

    /// The secret's bytes (the HMAC key).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Random bytes for a nonce or a token.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if getrandom::fill(&mut buf).is_err() {
        // No OS randomness: fall back to time and address entropy (never expected on Linux).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (&buf as *const _ as u64);
        let mut x = seed;
        for b in &mut buf {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
    buf
}

fn mac(token: &[u8], role: &[u8], first: &[u8], second: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(token)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(role);
    m.update(first);
    m.update(second);
    m
}

/// The proof a party with `role` sends over (`theirs`, `mine`) nonces.
pub fn proof(token: &[u8], role: &[u8], theirs: &[u8], mine: &[u8]) -> Vec<u8> {
    mac(token, role, theirs, mine)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Checks a proof in constant time.
pub fn verify(token: &[u8], role: &[u8], theirs: &[u8], mine: &[u8], tag: &[u8]) -> bool {
    mac(token, role, theirs, mine).verify_slice(tag).is_ok()
}

const WORKER_ROLE: &[u8] = b"parpipe worker";
const COORDINATOR_ROLE: &[u8] = b"parpipe coordinator";

/// The next message of the handshake; the stream ending is an error.
async fn next<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    during: &'static str,
) -> Result<Message, ProtocolError> {
    read_frame(framed)
        .await?
        .ok_or(ProtocolError::Closed(during))
}

/// Switches `framed` to the pre-authentication codec (small frames,
/// handshake messages only); returns the connection's own codec.
fn enter<T>(framed: &mut Framed<T, FrameCodec>) -> FrameCodec {
    std::mem::replace(framed.codec_mut(), FrameCodec::handshake())
}

/// One deadline for the whole handshake, writes included.
async fn finish_steps<R>(
    steps: impl std::future::Future<Output = Result<R, ProtocolError>>,
) -> Result<R, ProtocolError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, steps)
        .await
        .unwrap_or(Err(ProtocolError::Timeout("the handshake")))
}

/// Puts the connection's own codec back, with the session the handshake
/// derived, only after a handshake that succeeded.
fn restore<T, R>(
    framed: &mut Framed<T, FrameCodec>,
    full: FrameCodec,
    result: Result<(R, Session), ProtocolError>,
) -> Result<R, ProtocolError> {
    let (value, session) = result?;
    *framed.codec_mut() = full.with_session(session);
    Ok(value)
}

/// The bytes of the `Hello` body `hello` is sent as (bincode, as the
/// codec writes it): both sides hash it into the session keys, so a hello
/// altered on the way leaves them with different keys.
pub fn hello_body(hello: &PeerHello) -> Vec<u8> {
    let msg = Message::Hello {
        version: PROTOCOL_VERSION,
        worker_id: hello.worker_id,
        cores: hello.cores,
        threads: hello.threads,
        allowed_roots: hello.allowed_roots.clone(),
    };
    // Plain data into a vector: encoding cannot fail.
    bincode::serde::encode_to_vec(&msg, bincode_config()).unwrap_or_default()
}

/// What a worker says of itself in its hello, and the coordinator learns
/// in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// The worker's own id.
    pub worker_id: u64,
    /// Its cores.
    pub cores: u32,
    /// Chunks it processes at once, `1..=`[`MAX_WORKER_THREADS`] (a
    /// coordinator clamps what a peer announces into that range).
    pub threads: u32,
    /// The directories it reads chunks from itself (see
    /// [`Message::Hello`]).
    pub allowed_roots: Vec<String>,
}

/// The coordinator's side: check version and proof, prove ourselves.
/// Until the worker's proof verifies, only small handshake frames are
/// accepted, and the whole exchange has [`HANDSHAKE_TIMEOUT`].
pub async fn server_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
) -> Result<PeerHello, ProtocolError> {
    let full = enter(framed);
    let result = finish_steps(server_steps(framed, token)).await;
    restore(framed, full, result)
}

async fn server_steps<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
) -> Result<(PeerHello, Session), ProtocolError> {
    // The hello as sent (threads not yet clamped): what the keys bind.
    let (sent, hello) = match next(framed, "hello").await? {
        Message::Hello {
            version,
            worker_id,
            cores,
            threads,
            allowed_roots,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(ProtocolError::Version { got: version });
            }
            let sent = PeerHello {
                worker_id,
                cores,
                threads,
                allowed_roots,
            };
            let hello = PeerHello {
                threads: threads.clamp(1, MAX_WORKER_THREADS),
                ..sent.clone()
            };
            (sent, hello)
        }
        other => {
            return Err(ProtocolError::Unexpected {
                got: other.kind(),
                during: "hello",
            })
        }
    };
    let ours = random_bytes(NONCE_LEN);
    write_frame(
        framed,
        Message::Challenge {
            nonce: ours.clone(),
        },
    )
    .await?;
    let theirs = match next(framed, "proof").await? {
        Message::Proof { mac, nonce } => {
            if nonce.len() != NONCE_LEN || !verify(token, WORKER_ROLE, &ours, &nonce, &mac) {
                return Err(ProtocolError::Auth);
            }
            let answer = proof(token, COORDINATOR_ROLE, &nonce, &ours);
            write_frame(
                framed,
                Message::Proof {
                    mac: answer,
                    nonce: ours.clone(),
                },
            )
            .await?;
            nonce
        }
        other => {
            return Err(ProtocolError::Unexpected {
                got: other.kind(),
                during: "proof",
            })
        }
    };
    let session = Session::derive(Side::Coordinator, token, &ours, &theirs, &hello_body(&sent));
    Ok((hello, session))
}

/// The worker's side: say hello, answer the challenge, check the
/// coordinator's proof. Until that proof verifies, only small handshake
/// frames are accepted from the coordinator, and the whole exchange has
/// [`HANDSHAKE_TIMEOUT`].
pub async fn client_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
    hello: &PeerHello,
) -> Result<(), ProtocolError> {
    let full = enter(framed);
    let result = finish_steps(client_steps(framed, token, hello)).await;
    restore(framed, full, result)
}

async fn client_steps<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
    hello: &PeerHello,
) -> Result<((), Session), ProtocolError> {
    write_frame(
        framed,
        Message::Hello {
            version: PROTOCOL_VERSION,
            worker_id: hello.worker_id,
            cores: hello.cores,
            threads: hello.threads,
            allowed_roots: hello.allowed_roots.clone(),
        },
    )
    .await?;
    // A coordinator that cannot accept our hello (another parpipe version
    // reads it as malformed) hangs up without a word.
    let challenge = next(
        framed,
        "the challenge (the coordinator refused our hello: \
                                  another parpipe version? its log says why)",
    )
    .await?;
    let theirs = match challenge {
        Message::Challenge { nonce } if nonce.len() == NONCE_LEN => nonce,
        Message::Busy {
            retry_after_ms,
            reason,
        } => {
            return Err(ProtocolError::Busy {
                retry_after_ms,
                reason,
            })
        }
        other => {
            return Err(ProtocolError::Unexpected {
                got: other.kind(),
                during: "challenge",
            })
        }
    };
    let ours = random_bytes(NONCE_LEN);
    let mac = proof(token, WORKER_ROLE, &theirs, &ours);
    write_frame(
        framed,
        Message::Proof {
            mac,
            nonce: ours.clone(),
        },
    )
    .await?;
    match next(framed, "coordinator proof").await? {
        Message::Proof { mac, .. } if verify(token, COORDINATOR_ROLE, &ours, &theirs, &mac) => {
            let session = Session::derive(Side::Worker, token, &theirs, &ours, &hello_body(hello));
            Ok(((), session))
        }
        Message::Proof { .. } => Err(ProtocolError::Auth),
        other => Err(ProtocolError::Unexpected {
            got: other.kind(),
            during: "coordinator proof",
        }),
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
