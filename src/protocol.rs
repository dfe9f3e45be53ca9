//! The wire of multiprocess mode — the one module that owns its bytes.
//!
//! A frame is a 4-byte big-endian body length followed by a bincode 2 body
//! (serde, `standard()` configuration) holding one [`Message`]. The length is
//! checked against a maximum *before* any buffer is allocated, on decode and
//! on encode ([`FrameCodec`]); a body that does not decode to exactly one
//! message (unknown variant, short body, trailing bytes) is an error.
//!
//! The handshake ([`client_handshake`] / [`server_handshake`]) is a mutual
//! challenge–response over random nonces with HMAC-SHA256 keyed by the shared
//! token; the token itself never crosses the wire:
//!
//! ```text
//! worker → coordinator  Hello { version, worker_id, cores }
//! coordinator → worker  Challenge { nonce: Nc }              (version checked first)
//! worker → coordinator  Proof { mac: H(token, "worker" Nc Nw), nonce: Nw }
//! coordinator → worker  Proof { mac: H(token, "coordinator" Nw Nc), nonce: Nc }
//! coordinator → worker  Job { spec, heartbeat_ms, batch_size }
//! ```
//!
//! Then: `Chunk` or `ChunkInFiles` (coordinator → worker; the latter only
//! to workers it started on its own machine), `ChunkDone` / `ChunkFailed`
//! (worker → coordinator), `Heartbeat` both ways, and `Shutdown` from the
//! coordinator, after which both sides half-close their write side.

use crate::pipeline::JobSpec;
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// Version of this protocol; a peer with another version is refused.
pub const PROTOCOL_VERSION: u32 = 2;
/// Default largest frame body accepted or sent: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// Bytes in a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Time a peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable a token may be read from (and through which a
/// coordinator hands it to the workers it spawns).
pub const TOKEN_ENV: &str = "PARPIPE_TOKEN";

/// Set to `1` by a coordinator in the environment of the workers it starts
/// on its own machine: only such a worker accepts `ChunkInFiles`, which
/// makes it read files named by the coordinator.
pub const LOCAL_WORKER_ENV: &str = "PARPIPE_LOCAL_WORKER";

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

/// Per-part timing of one chunk in a worker: `(records_in, records_out,
/// busy_nanos)` for each stage and then the aggregate, in pipeline order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkStats {
    /// One row per stage, then one for the aggregate.
    pub parts: Vec<(u64, u64, u64)>,
    /// Wall time the worker spent on the chunk, in nanoseconds.
    pub busy_nanos: u64,
    /// CPU seconds the worker process has used since it started.
    pub process_cpu_seconds: f64,
    /// Peak resident memory of the worker process so far.
    pub process_peak_rss: u64,
}

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First message of a worker.
    Hello {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u32,
        /// The worker's own id (its process id), for logs.
        worker_id: u64,
        /// Cores of the worker's machine.
        cores: u32,
    },
    /// The coordinator's nonce.
    Challenge {
        /// Random bytes.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// A MAC over both nonces, plus the sender's own nonce.
    Proof {
        /// HMAC-SHA256 (see the module documentation).
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
        /// The sender's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// The job to run: which pipeline, with which parameters.
    Job {
        /// Registered pipeline name and serialized parameters.
        spec: JobSpec,
        /// Heartbeat timeout the coordinator applies, in milliseconds.
        heartbeat_ms: u64,
        /// Records per batch: a worker processes a larger chunk batch by
        /// batch (see [`Source::split_chunk`](crate::Source::split_chunk)).
        batch_size: u64,
    },
    /// A chunk of input: one encoded source batch.
    Chunk {
        /// Sequence number, from 0, in input order.
        seq: u64,
        /// 1-based number of its first record.
        first_line: u64,
        /// Number of records.
        records: u64,
        /// The batch, encoded by the source. `Bytes`, so that a received
        /// chunk is a view of the read buffer rather than a copy of it.
        #[serde(with = "bytes_field")]
        payload: bytes::Bytes,
    },
    /// A chunk's encoded partial aggregate.
    ChunkDone {
        /// The chunk's sequence number.
        seq: u64,
        /// The partial, encoded by the aggregate.
        #[serde(with = "serde_bytes")]
        partial: Vec<u8>,
        /// Timings.
        stats: ChunkStats,
    },
    /// A chunk that could not be processed.
    ChunkFailed {
        /// The chunk's sequence number.
        seq: u64,
        /// What went wrong (names the stage).
        error: String,
    },
    /// "Still alive", both ways.
    Heartbeat,
    /// No more work: close the connection.
    Shutdown,
    /// A chunk given by reference: its payload is the bytes of `ranges`
    /// (see [`read_ranges`](crate::file_range::read_ranges)), which the
    /// worker reads itself. Sent only to workers the coordinator started on
    /// its own machine (see [`LOCAL_WORKER_ENV`]).
    ChunkInFiles {
        /// Sequence number, from 0, in input order.
        seq: u64,
        /// 1-based number of its first record.
        first_line: u64,
        /// Number of records.
        records: u64,
        /// Where the payload's bytes are.
        ranges: Vec<crate::file_range::FileRange>,
    },
}

impl Message {
    /// The variant's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Challenge { .. } => "Challenge",
            Message::Proof { .. } => "Proof",
            Message::Job { .. } => "Job",
            Message::Chunk { .. } => "Chunk",
            Message::ChunkDone { .. } => "ChunkDone",
            Message::ChunkFailed { .. } => "ChunkFailed",
            Message::Heartbeat => "Heartbeat",
            Message::Shutdown => "Shutdown",
            Message::ChunkInFiles { .. } => "ChunkInFiles",
        }
    }
}

/// Why a connection was dropped.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A length prefix above the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced (or encoded) length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A body that is not one valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stream ended inside a frame.
    #[error("connection closed inside a frame ({0} bytes pending)")]
    Truncated(usize),
    /// The stream ended where a message was required.
    #[error("connection closed during {0}")]
    Closed(&'static str),
    /// A valid message at the wrong moment.
    #[error("unexpected {got} during {during}")]
    Unexpected {
        /// The message received.
        got: &'static str,
        /// What was expected.
        during: &'static str,
    },
    /// The peer speaks another protocol version.
    #[error("protocol version {got}, expected {PROTOCOL_VERSION}")]
    Version {
        /// The peer's version.
        got: u32,
    },
    /// The peer's proof did not verify (wrong token).
    #[error("authentication failed (wrong token?)")]
    Auth,
    /// The peer did not answer in time.
    #[error("timed out during {0}")]
    Timeout(&'static str),
}

/// The length-prefixed bincode codec. `max_len` bounds the body.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    /// Largest body length accepted or produced.
    pub max_len: usize,
}

impl FrameCodec {
    /// A codec with the given limit.
    pub fn new(max_len: usize) -> Self {
        FrameCodec { max_len }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Serde for a `Bytes` field: the same bytes on the wire as `serde_bytes`
/// on a `Vec<u8>`.
mod bytes_field {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bytes::Bytes, D::Error> {
        let v: serde_bytes::ByteBuf = serde::Deserialize::deserialize(d)?;
        Ok(bytes::Bytes::from(v.into_vec()))
    }
}

/// Decodes a `Chunk` body without copying its payload, which is most of
/// the bytes a worker receives: the header is read as bincode would read
/// it, and the payload is a view of `body`. Accepts and refuses exactly
/// what [`decode_body`] does (a test checks this).
fn decode_chunk_body(body: bytes::Bytes) -> Result<Message, ProtocolError> {
    let ((variant, seq, first_line, records, len), used): ((u32, u64, u64, u64, u64), usize) =
        bincode::decode_from_slice(&body, bincode_config())
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    debug_assert_eq!(variant, CHUNK_VARIANT);
    let rest = (body.len() - used) as u64;
    if rest < len {
        return Err(ProtocolError::Malformed(format!(
            "chunk payload of {len} bytes, only {rest} in the frame"
        )));
    }
    if rest > len {
        return Err(ProtocolError::Malformed(format!(
            "{} trailing bytes after a Chunk",
            rest - len
        )));
    }
    Ok(Message::Chunk {
        seq,
        first_line,
        records,
        payload: body.slice(used..),
    })
}

/// Decodes one frame body into exactly one message.
pub fn decode_body(body: &[u8]) -> Result<Message, ProtocolError> {
    let (msg, used): (Message, usize) = bincode::serde::decode_from_slice(body, bincode_config())
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(ProtocolError::Malformed(format!(
            "{} trailing bytes after a {}",
            body.len() - used,
            msg.kind()
        )));
    }
    Ok(msg)
}

impl Decoder for FrameCodec {
    type Item = Message;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        // The limit is checked before anything is reserved for the body.
        if len > self.max_len {
            return Err(ProtocolError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        // A variant index below 251 is its own one-byte varint.
        if body.first() == Some(&(CHUNK_VARIANT as u8)) {
            return decode_chunk_body(body.freeze()).map(Some);
        }
        decode_body(&body).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match self.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::Truncated(src.len())),
        }
    }
}

/// Counts the bytes bincode would write.
struct SizeCounter(usize);

impl bincode::enc::write::Writer for SizeCounter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// Appends to a `BytesMut`.
struct BufWriter<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for BufWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode(&msg, dst)
    }
}

impl Encoder<&Message> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        // First pass: the size only, so that the limit is checked before allocating.
        let mut size = SizeCounter(0);
        bincode::serde::encode_into_writer(msg, &mut size, bincode_config())
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let len = size.0;
        if len > self.max_len {
            return Err(ProtocolError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        dst.reserve(4 + len);
        dst.put_u32(len as u32);
        bincode::serde::encode_into_writer(msg, BufWriter(dst), bincode_config())
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        Ok(())
    }
}

/// What a writer sends: a message, or a frame encoded earlier (a chunk
/// encoded once by the coordinator and kept for a possible re-send).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A message to encode.
    Message(Message),
    /// A complete frame (length prefix included), already checked.
    Frame(bytes::Bytes),
}

impl Encoder<Outgoing> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match item {
            Outgoing::Message(m) => self.encode(&m, dst),
            Outgoing::Frame(f) => {
                dst.extend_from_slice(&f);
                Ok(())
            }
        }
    }
}

/// Bytes a chunk's frame buffer keeps free in front of the payload for
/// [`seal_chunk_frame`]: the length prefix plus the largest `Chunk` header
/// (variant index and four varint integers; a bincode varint takes at most
/// 5 bytes for a u32 and 9 for a u64).
pub const CHUNK_HEADER_ROOM: usize = 4 + 5 + 4 * 9;

/// `Message::Chunk`'s variant index (checked by a test).
const CHUNK_VARIANT: u32 = 4;

/// Turns `buf` — [`CHUNK_HEADER_ROOM`] bytes of any value, then a chunk's
/// payload — into the frame of `Message::Chunk { seq, first_line, records,
/// payload }`, byte for byte what [`FrameCodec`] would write, without
/// copying the payload: the header is written just in front of it and the
/// unused room is sliced off. This spares the coordinator, which every
/// worker waits on, one or two copies of each chunk.
pub fn seal_chunk_frame(
    mut buf: Vec<u8>,
    seq: u64,
    first_line: u64,
    records: u64,
    max_len: usize,
) -> Result<bytes::Bytes, ProtocolError> {
    let payload_len = buf.len().checked_sub(CHUNK_HEADER_ROOM).ok_or_else(|| {
        ProtocolError::Malformed("chunk buffer without room for its header".into())
    })?;
    let header = (CHUNK_VARIANT, seq, first_line, records, payload_len as u64);
    let mut head = [0u8; CHUNK_HEADER_ROOM - 4];
    let head_len = bincode::encode_into_slice(header, &mut head, bincode_config())
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let len = head_len + payload_len;
    if len > max_len {
        return Err(ProtocolError::TooLarge { len, max: max_len });
    }
    let start = CHUNK_HEADER_ROOM - head_len - 4;
    buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    buf[start + 4..CHUNK_HEADER_ROOM].copy_from_slice(&head[..head_len]);
    Ok(bytes::Bytes::from(buf).slice(start..))
}

/// Encodes one message as a whole frame (length prefix included).
pub fn encode_frame(msg: &Message, max_len: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = BytesMut::new();
    FrameCodec::new(max_len).encode(msg, &mut buf)?;
    Ok(buf.to_vec())
}

/// Reads the next message; `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
) -> Result<Option<Message>, ProtocolError> {
    framed.next().await.transpose()
}

/// Writes one message and flushes it.
pub async fn write_frame<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    msg: Message,
) -> Result<(), ProtocolError> {
    framed.send(msg).await
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

async fn next_within<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    during: &'static str,
) -> Result<Message, ProtocolError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(framed)).await {
        Err(_) => Err(ProtocolError::Timeout(during)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(None)) => Err(ProtocolError::Closed(during)),
        Ok(Ok(Some(m))) => Ok(m),
    }
}

/// What the coordinator learns of a worker in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHello {
    /// The worker's own id.
    pub worker_id: u64,
    /// Its cores.
    pub cores: u32,
}

/// The coordinator's side: check version and proof, prove ourselves.
pub async fn server_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
) -> Result<PeerHello, ProtocolError> {
    let hello = match next_within(framed, "hello").await? {
        Message::Hello {
            version,
            worker_id,
            cores,
        } => {
            if version != PROTOCOL_VERSION {
                return Err(ProtocolError::Version { got: version });
            }
            PeerHello { worker_id, cores }
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
    match next_within(framed, "proof").await? {
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

/// The worker's side: say hello, answer the challenge, check the coordinator's proof.
pub async fn client_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    token: &[u8],
    worker_id: u64,
    cores: u32,
) -> Result<(), ProtocolError> {
    write_frame(
        framed,
        Message::Hello {
            version: PROTOCOL_VERSION,
            worker_id,
            cores,
        },
    )
    .await?;
    let theirs = match next_within(framed, "challenge").await? {
        Message::Challenge { nonce } if nonce.len() == NONCE_LEN => nonce,
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
    match next_within(framed, "coordinator proof").await? {
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

    #[test]
    fn sealed_chunk_frames_match_the_codec() {
        for (seq, first_line, records, len) in [
            (0, 1, 0, 0),
            (7, 250, 250, 250),
            (251, 65_536, 8192, 1 << 16),
            (u64::MAX, u64::MAX - 1, 1 << 40, 3),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut buf = vec![0xAA; CHUNK_HEADER_ROOM];
            buf.extend_from_slice(&payload);
            let sealed =
                seal_chunk_frame(buf, seq, first_line, records, DEFAULT_MAX_FRAME).unwrap();
            let msg = Message::Chunk {
                seq,
                first_line,
                records,
                payload: payload.into(),
            };
            assert_eq!(
                &sealed[..],
                &encode_frame(&msg, DEFAULT_MAX_FRAME).unwrap()[..]
            );
        }
        let mut buf = vec![0; CHUNK_HEADER_ROOM];
        buf.extend_from_slice(&[1; 2000]);
        assert!(matches!(
            seal_chunk_frame(buf, 0, 1, 1, 1024),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert!(seal_chunk_frame(vec![0; 3], 0, 1, 1, 1024).is_err());
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Message>, ProtocolError> {
        let mut codec = FrameCodec::new(max);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = codec.decode_eof(&mut buf)? {
            out.push(m);
        }
        Ok(out)
    }

    #[test]
    fn heartbeat_is_a_fixed_byte_literal() {
        // Variant index 7 (Heartbeat) is one varint byte; the body is 1 byte long.
        let frame = encode_frame(&Message::Heartbeat, 1024).unwrap();
        assert_eq!(frame, [0, 0, 0, 1, 7]);
        assert_eq!(decode_all(&frame, 1024).unwrap(), vec![Message::Heartbeat]);
        assert_eq!(
            decode_all(&[0, 0, 0, 1, 8], 1024).unwrap(),
            vec![Message::Shutdown]
        );
    }

    #[test]
    fn hello_byte_literal_round_trips() {
        // Hello = variant 0; version 1, worker_id 5, cores 2 as varints.
        let bytes = [0u8, 0, 0, 4, 0, 1, 5, 2];
        let msgs = decode_all(&bytes, 1024).unwrap();
        assert_eq!(
            msgs,
            vec![Message::Hello {
                version: 1,
                worker_id: 5,
                cores: 2
            }]
        );
        assert_eq!(encode_frame(&msgs[0], 1024).unwrap(), bytes);
    }

    #[test]
    fn chunk_round_trips() {
        let msg = Message::Chunk {
            seq: 3,
            first_line: 1001,
            records: 2,
            payload: bytes::Bytes::from_static(b"ab\ncd"),
        };
        let frame = encode_frame(&msg, 1024).unwrap();
        assert_eq!(decode_all(&frame, 1024).unwrap(), vec![msg]);
    }

    #[test]
    fn chunk_fast_path_agrees_with_the_serde_decoder() {
        let msg = Message::Chunk {
            seq: 300,
            first_line: 70_000,
            records: 2,
            payload: bytes::Bytes::from(vec![b'x'; 300]),
        };
        let frame = encode_frame(&msg, 1 << 20).unwrap();
        let body = &frame[4..];
        let fast = |b: &[u8]| decode_chunk_body(bytes::Bytes::copy_from_slice(b));
        assert_eq!(fast(body).unwrap(), msg);
        assert_eq!(decode_body(body).unwrap(), msg);
        // Every truncation, and trailing bytes, are refused by both.
        for cut in 1..body.len() {
            assert!(fast(&body[..cut]).is_err(), "cut {cut}");
            assert!(decode_body(&body[..cut]).is_err(), "cut {cut}");
        }
        let mut long = body.to_vec();
        long.push(0);
        assert!(fast(&long).is_err());
        assert!(decode_body(&long).is_err());
        // Through the codec (which takes the fast path).
        assert_eq!(decode_all(&frame, 1 << 20).unwrap(), vec![msg]);
    }

    #[test]
    fn truncated_frame_is_an_error_at_eof() {
        // Announces 4 bytes, carries 2.
        let err = decode_all(&[0, 0, 0, 4, 0, 1], 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Truncated(6)), "{err}");
        // A partial length prefix too.
        let err = decode_all(&[0, 0], 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Truncated(2)), "{err}");
        // A partial frame is not an error while the stream is open.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 0][..]);
        assert!(FrameCodec::new(1024).decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        let capacity = buf.capacity();
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::TooLarge {
                    len: 0xffff_ffff,
                    max: 1024
                }
            ),
            "{err}"
        );
        assert_eq!(buf.capacity(), capacity, "nothing was reserved");
        // Encoding checks the same limit.
        let big = Message::Chunk {
            seq: 0,
            first_line: 1,
            records: 1,
            payload: vec![0; 2000].into(),
        };
        assert!(matches!(
            encode_frame(&big, 1024),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_variant_is_malformed() {
        let err = decode_all(&[0, 0, 0, 1, 9], 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
        let err = decode_all(&[0, 0, 0, 1, 0xfa], 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let err = decode_all(&[0, 0, 0, 2, 7, 7], 1024).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn garbage_is_malformed_or_oversized() {
        let err = decode_all(b"GET / HTTP/1.1\r\n\r\n", 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
        let err = decode_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff], 1024).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    }

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
                client_handshake(&mut f, worker_token, 9, 4).await
            } else {
                write_frame(
                    &mut f,
                    Message::Hello {
                        version: 99,
                        worker_id: 9,
                        cores: 4,
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
                cores: 4
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
}
