//! Framing: a 4-byte big-endian body length, then one bincode [`Message`],
//! with the length checked against the limit before any allocation; plus the
//! chunk fast paths that spare the coordinator and workers a copy.

use super::{Message, ProtocolError, DEFAULT_MAX_FRAME};
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed};

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
}
