//! Framing: a 4-byte big-endian body length, then one bincode [`Message`],
//! with the length checked against the limit before any allocation and the
//! body decoded with every declared length bounded by the frame (see
//! `bounded.rs`); before authentication, only small handshake frames;
//! after it, every frame followed by its MAC tag (see `session.rs`),
//! checked before the body is decoded; plus the chunk fast paths that
//! spare the coordinator and workers a copy.

use super::bounded::{bincode_config, decode_prefix};
use super::session::{Session, TAG_LEN};
use super::{Message, ProtocolError, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME};
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// The length-prefixed bincode codec. `max_len` bounds the frame's
/// length field: the body, and after the handshake its MAC tag.
///
/// Cloning one copies its session's frame counters: a connection split in
/// a read half and a write half gives each a clone, the reader using only
/// the receiving direction and the writer only the sending one.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest frame length (body and tag) accepted or produced.
    pub max_len: usize,
    /// Only `Hello`, `Challenge` and `Proof` are accepted: the peer is not
    /// authenticated yet.
    handshake_only: bool,
    /// After the handshake: the keys and frame counters that tag every
    /// frame sent and check every frame received.
    session: Option<Box<Session>>,
}

impl FrameCodec {
    /// A codec with the given limit, without a session: frames carry no
    /// tag (the handshake installs the session; see
    /// [`with_session`](Self::with_session)).
    pub fn new(max_len: usize) -> Self {
        FrameCodec {
            max_len,
            handshake_only: false,
            session: None,
        }
    }

    /// The codec of a connection before authentication: frames of at most
    /// [`HANDSHAKE_MAX_FRAME`] bytes, and only the handshake messages,
    /// whose variant is checked before the body is even complete.
    pub fn handshake() -> Self {
        FrameCodec {
            max_len: HANDSHAKE_MAX_FRAME,
            handshake_only: true,
            session: None,
        }
    }

    /// The same codec, tagging every frame it writes and checking every
    /// frame it reads with `session`.
    pub fn with_session(self, session: Session) -> Self {
        FrameCodec {
            session: Some(Box::new(session)),
            ..self
        }
    }

    /// True while only handshake messages are accepted.
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub fn is_handshake(&self) -> bool {
        self.handshake_only
    }

    /// The session, once the handshake has installed one.
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_deref()
    }

    /// Bytes a frame adds after its body: the tag, with a session.
    fn tag_len(&self) -> usize {
        if self.session.is_some() {
            TAG_LEN
        } else {
            0
        }
    }

    /// Writes the frame of `body` (already in `dst` from `start + 4`, its
    /// length field reserved at `start`): the length, and the tag.
    fn finish_frame(&mut self, dst: &mut BytesMut, start: usize) {
        let body_len = dst.len() - start - 4;
        let len = body_len + self.tag_len();
        dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        if let Some(session) = self.session.as_mut() {
            let tag = session.send.seal(&dst[start + 4..]);
            dst.extend_from_slice(&tag);
        }
    }

    /// Checks a body's length plus its tag against the limit.
    fn check_len(&self, body_len: usize) -> Result<(), ProtocolError> {
        let len = body_len.saturating_add(self.tag_len());
        if len > self.max_len {
            return Err(ProtocolError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        Ok(())
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

/// The name of the message whose variant index a body starts with (a
/// variant index below 251 is its own one-byte varint), if any.
fn variant_name(first: u8) -> Option<&'static str> {
    const NAMES: [&str; 16] = [
        "Hello",
        "Challenge",
        "Proof",
        "Job",
        "Chunk",
        "ChunkDone",
        "ChunkFailed",
        "Heartbeat",
        "Shutdown",
        "ChunkInFiles",
        "Busy",
        "ChunkUnreadable",
        "Flush",
        "Held",
        "ChunkHeld",
        "Unhold",
    ];
    NAMES.get(first as usize).copied()
}

/// Refuses, from its first byte, a body that is not a handshake message.
fn check_handshake_variant(first: u8) -> Result<(), ProtocolError> {
    match variant_name(first) {
        Some("Hello" | "Challenge" | "Proof" | "Busy") => Ok(()),
        Some(name) => Err(ProtocolError::Unexpected {
            got: name,
            during: "the handshake (only Hello, Challenge, Proof and Busy are accepted before it)",
        }),
        None => Err(ProtocolError::Malformed(format!(
            "unknown message variant (first byte {first:#04x})"
        ))),
    }
}

/// Decodes a `Chunk` body without copying its payload, which is most of
/// the bytes a worker receives: the header is read as bincode would read
/// it, and the payload is a view of `body`. Accepts and refuses exactly
/// what [`decode_body`] does (a test checks this).
fn decode_chunk_body(body: bytes::Bytes) -> Result<Message, ProtocolError> {
    // Integers only: nothing here is allocated from a declared length.
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

/// Decodes one frame body into exactly one message. No length the body
/// declares is allocated beyond the body's own length (see `bounded.rs`).
pub fn decode_body(body: &[u8]) -> Result<Message, ProtocolError> {
    let (msg, used): (Message, usize) =
        decode_prefix(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
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
        if self.handshake_only {
            match src.get(4) {
                Some(&first) => check_handshake_variant(first)?,
                None if len == 0 => {
                    return Err(ProtocolError::Malformed("empty frame body".into()))
                }
                None => return Ok(None),
            }
        }
        let tag_len = self.tag_len();
        if len < tag_len {
            return Err(ProtocolError::Malformed(format!(
                "frame of {len} bytes, shorter than its {tag_len}-byte tag"
            )));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut body = src.split_to(len);
        // The tag is checked before a byte of the body is decoded.
        if let Some(session) = self.session.as_mut() {
            let tag = body.split_off(len - tag_len);
            session.recv.open(&body, &tag)?;
        }
        // A variant index below 251 is its own one-byte varint.
        if body.first() == Some(&(CHUNK_VARIANT as u8)) {
            return decode_chunk_body(body.freeze()).map(Some);
        }
        match decode_body(&body) {
            // A hello this build cannot read may come from another
            // version: say which, rather than "malformed".
            Err(ProtocolError::Malformed(why)) if self.handshake_only => {
                Err(match hello_version(&body) {
                    Some(got) if got != super::PROTOCOL_VERSION => ProtocolError::Version { got },
                    _ => ProtocolError::Malformed(why),
                })
            }
            other => other.map(Some),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match self.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::Truncated(src.len())),
        }
    }
}

/// `Message::Hello`'s variant index (its place in the enum).
const HELLO_VARIANT: u32 = 0;

/// The protocol version a `Hello` body starts with (its variant index,
/// then the version, both varints), read without decoding the rest:
/// every version's hello starts that way.
fn hello_version(body: &[u8]) -> Option<u32> {
    let (variant, used): (u32, usize) = decode_prefix(body).ok()?;
    if variant != HELLO_VARIANT {
        return None;
    }
    let (version, _): (u32, usize) = decode_prefix(&body[used..]).ok()?;
    Some(version)
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
        self.check_len(len)?;
        dst.reserve(4 + len + self.tag_len());
        let start = dst.len();
        dst.put_u32(0);
        bincode::serde::encode_into_writer(msg, BufWriter(dst), bincode_config())
            .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        self.finish_frame(dst, start);
        Ok(())
    }
}

/// What a writer sends: a message, or a frame encoded earlier (a chunk
/// encoded once by the coordinator and kept for a possible re-send).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A message to encode.
    Message(Message),
    /// A complete untagged frame (length prefix included), as
    /// [`encode_frame`] or [`seal_chunk_frame`] make it: the writer's
    /// session tags it as it goes out (its length field then counts the tag).
    Frame(bytes::Bytes),
}

impl Encoder<Outgoing> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match item {
            Outgoing::Message(m) => self.encode(&m, dst),
            Outgoing::Frame(f) => {
                let body = f.get(4..).ok_or(ProtocolError::Truncated(f.len()))?;
                self.check_len(body.len())?;
                dst.reserve(4 + body.len() + self.tag_len());
                let start = dst.len();
                dst.put_u32(0);
                dst.extend_from_slice(body);
                self.finish_frame(dst, start);
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
/// worker waits on, one or two copies of each chunk. The frame is sent
/// after the handshake, where its tag ([`TAG_LEN`] bytes) counts toward
/// `max_len`: a body that leaves no room for it is refused here.
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
    if len.saturating_add(TAG_LEN) > max_len {
        return Err(ProtocolError::TooLarge {
            len: len.saturating_add(TAG_LEN),
            max: max_len,
        });
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

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
