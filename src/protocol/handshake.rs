//! Authentication: the shared [`Token`] and the mutual HMAC-SHA256
//! challenge–response over random nonces (the token never crosses the wire).

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

/// Puts the connection's own codec back, only after a handshake that succeeded.
fn restore<T, R>(
    framed: &mut Framed<T, FrameCodec>,
    full: FrameCodec,
    result: Result<R, ProtocolError>,
) -> Result<R, ProtocolError> {
    if result.is_ok() {
        *framed.codec_mut() = full;
    }
    result
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
) -> Result<PeerHello, ProtocolError> {
    let hello = match next(framed, "hello").await? {
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
            PeerHello {
                worker_id,
                cores,
                threads: threads.clamp(1, MAX_WORKER_THREADS),
                allowed_roots,
            }
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
    match next(framed, "proof").await? {
        Message::Proof { mac, nonce } => {
            if nonce.len() != NONCE_LEN || !verify(token, WORKER_ROLE, &ours, &nonce, &mac) {
                return Err(ProtocolError::Auth);
            }
            let answer = proof(token, COORDINATOR_ROLE, &nonce, &ours);
            write_frame(
                framed,
                Message::Proof {
                    mac: answer,
                    nonce: ours,
                },
            )
            .await?;
        }
        other => {
            return Err(ProtocolError::Unexpected {
                got: other.kind(),
                during: "proof",
            })
        }
    }
    Ok(hello)
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
) -> Result<(), ProtocolError> {
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
            Ok(())
        }
        Message::Proof { .. } => Err(ProtocolError::Auth),
        other => Err(ProtocolError::Unexpected {
            got: other.kind(),
            during: "coordinator proof",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn proofs_need_the_token() {
        let (a, b) = (random_bytes(NONCE_LEN), random_bytes(NONCE_LEN));
        let tag = proof(b"secret", WORKER_ROLE, &a, &b);
        assert!(verify(b"secret", WORKER_ROLE, &a, &b, &tag));
        assert!(!verify(b"other", WORKER_ROLE, &a, &b, &tag));
        assert!(!verify(b"secret", COORDINATOR_ROLE, &a, &b, &tag));
        assert!(!verify(b"secret", WORKER_ROLE, &b, &a, &tag));
    }

    async fn pair(
        worker_token: &'static [u8],
        version_ok: bool,
    ) -> (Result<PeerHello, ProtocolError>, Result<(), ProtocolError>) {
        let (a, b) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut f = Framed::new(a, FrameCodec::default());
            server_handshake(&mut f, b"token").await
        });
        let client = tokio::spawn(async move {
            let mut f = Framed::new(b, FrameCodec::default());
            if version_ok {
                client_handshake(
                    &mut f,
                    worker_token,
                    &PeerHello {
                        worker_id: 9,
                        cores: 4,
                        threads: 2,
                        allowed_roots: Vec::new(),
                    },
                )
                .await
            } else {
                write_frame(
                    &mut f,
                    Message::Hello {
                        version: 99,
                        worker_id: 9,
                        cores: 4,
                        threads: 1,
                        allowed_roots: Vec::new(),
                    },
                )
                .await?;
                match read_frame(&mut f).await? {
                    None => Err(ProtocolError::Closed("test")),
                    Some(m) => Err(ProtocolError::Unexpected {
                        got: m.kind(),
                        during: "test",
                    }),
                }
            }
        });
        (server.await.unwrap(), client.await.unwrap())
    }

    #[tokio::test]
    async fn handshake_succeeds_with_the_same_token() {
        let (s, c) = pair(b"token", true).await;
        assert_eq!(
            s.unwrap(),
            PeerHello {
                worker_id: 9,
                cores: 4,
                threads: 2,
                allowed_roots: Vec::new(),
            }
        );
        c.unwrap();
    }

    #[tokio::test]
    async fn handshake_fails_with_a_wrong_token() {
        let (s, c) = pair(b"wrong", true).await;
        assert!(matches!(s, Err(ProtocolError::Auth)), "{s:?}");
        assert!(c.is_err());
    }

    #[tokio::test]
    async fn handshake_refuses_another_version() {
        let (s, _c) = pair(b"token", false).await;
        assert!(
            matches!(s, Err(ProtocolError::Version { got: 99 })),
            "{s:?}"
        );
    }

    /// A peer that spends 6 s before each of its messages: each wait is
    /// under the timeout, the two together are not.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_covers_the_whole_handshake() {
        let (a, b) = tokio::io::duplex(4096);
        let slow_worker = tokio::spawn(async move {
            let mut f = Framed::new(b, FrameCodec::default());
            tokio::time::sleep(Duration::from_secs(6)).await;
            let hello = Message::Hello {
                version: PROTOCOL_VERSION,
                worker_id: 1,
                cores: 1,
                threads: 1,
                allowed_roots: Vec::new(),
            };
            write_frame(&mut f, hello).await?;
            let _challenge = read_frame(&mut f).await?;
            tokio::time::sleep(Duration::from_secs(6)).await;
            let proof = Message::Proof {
                mac: vec![0; 32],
                nonce: vec![0; NONCE_LEN],
            };
            write_frame(&mut f, proof).await
        });
        let mut f = Framed::new(a, FrameCodec::default());
        let started = tokio::time::Instant::now();
        let err = server_handshake(&mut f, b"token").await.unwrap_err();
        assert!(
            matches!(err, ProtocolError::Timeout("the handshake")),
            "{err}"
        );
        assert_eq!(started.elapsed(), HANDSHAKE_TIMEOUT);
        let _ = slow_worker.await;
    }

    /// Before the coordinator has proven itself, a worker takes nothing but
    /// handshake messages, in small frames; after, the connection's own
    /// codec is back.
    #[tokio::test]
    async fn a_worker_refuses_other_messages_before_the_coordinator_proof() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let fake = tokio::spawn(async move {
            let mut f = Framed::new(a, FrameCodec::default());
            let _hello = read_frame(&mut f).await;
            write_frame(&mut f, Message::Heartbeat).await
        });
        let mut f = Framed::new(b, FrameCodec::new(1 << 20));
        let err = client_handshake(
            &mut f,
            b"token",
            &PeerHello {
                worker_id: 1,
                cores: 1,
                threads: 1,
                allowed_roots: Vec::new(),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Unexpected {
                    got: "Heartbeat",
                    ..
                }
            ),
            "{err}"
        );
        assert!(f.codec().is_handshake());
        fake.await.unwrap().unwrap();

        let (s, c) = pair(b"token", true).await;
        s.unwrap();
        c.unwrap();
    }

    #[tokio::test]
    async fn the_full_codec_is_back_after_a_successful_handshake() {
        let (a, b) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut f = Framed::new(a, FrameCodec::new(1 << 20));
            server_handshake(&mut f, b"token").await.map(|_| *f.codec())
        });
        let mut f = Framed::new(b, FrameCodec::new(1 << 20));
        client_handshake(
            &mut f,
            b"token",
            &PeerHello {
                worker_id: 1,
                cores: 1,
                threads: 1,
                allowed_roots: Vec::new(),
            },
        )
        .await
        .unwrap();
        for codec in [*f.codec(), server.await.unwrap().unwrap()] {
            assert!(!codec.is_handshake());
            assert_eq!(codec.max_len, 1 << 20);
        }
    }
}
