//! The MAC layer: keys per direction, implicit frame numbers, tampering,
//! truncation, and the codec around it.

use super::*;
use crate::protocol::{FrameCodec, Message, Outgoing};
use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

const NC: [u8; 32] = [1; 32];
const NW: [u8; 32] = [2; 32];

fn pair(token: &[u8]) -> (Session, Session) {
    let hello = b"hello body";
    (
        Session::derive(Side::Coordinator, token, &NC, &NW, hello),
        Session::derive(Side::Worker, token, &NC, &NW, hello),
    )
}

#[test]
fn each_direction_opens_what_the_other_end_sealed_in_order() {
    let (mut coordinator, mut worker) = pair(b"token");
    for i in 0..5u8 {
        let body = [i; 10];
        let tag = coordinator.send.seal(&body);
        worker.recv.open(&body, &tag).unwrap();
        let tag = worker.send.seal(&body);
        coordinator.recv.open(&body, &tag).unwrap();
    }
    assert_eq!(worker.recv.frames(), 5);
    assert_eq!(coordinator.recv.frames(), 5);
}

#[test]
fn a_replayed_dropped_or_reordered_frame_fails_with_its_number() {
    let (mut c, w) = pair(b"token");
    let tags: Vec<_> = (0..3u8).map(|i| (i, c.send.seal(&[i]))).collect();
    // Replay: frame 0 again where frame 1 is expected.
    let mut r = w.recv.clone();
    r.open(&[0], &tags[0].1).unwrap();
    let err = r.open(&[0], &tags[0].1).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Integrity { frame: 1 }),
        "{err}"
    );
    // Drop: frame 1 never arrives, frame 2 comes second.
    let mut r = w.recv.clone();
    r.open(&[0], &tags[0].1).unwrap();
    let err = r.open(&[2], &tags[2].1).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Integrity { frame: 1 }),
        "{err}"
    );
    // Reorder: frame 1 first.
    let mut r = w.recv.clone();
    let err = r.open(&[1], &tags[1].1).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Integrity { frame: 0 }),
        "{err}"
    );
    // A failed frame is not counted.
    assert_eq!(r.frames(), 0);
}

#[test]
fn a_flipped_bit_or_a_cut_tag_fails() {
    let (mut c, w) = pair(b"token");
    let body = b"a partial".to_vec();
    let tag = c.send.seal(&body);
    for i in 0..body.len() * 8 {
        let mut altered = body.clone();
        altered[i / 8] ^= 1 << (i % 8);
        assert!(w.recv.clone().open(&altered, &tag).is_err(), "bit {i}");
    }
    for i in 0..TAG_LEN * 8 {
        let mut altered = tag;
        altered[i / 8] ^= 1 << (i % 8);
        assert!(w.recv.clone().open(&body, &altered).is_err(), "tag bit {i}");
    }
    assert!(w.recv.clone().open(&body, &tag[..TAG_LEN - 1]).is_err());
    assert!(w.recv.clone().open(&body[..body.len() - 1], &tag).is_err());
    assert!(w.recv.clone().open(&body, &[]).is_err());
    w.recv.clone().open(&body, &tag).unwrap();
}

#[test]
fn keys_differ_by_direction_token_nonces_and_hello() {
    let (mut c, mut w) = pair(b"token");
    let body = b"Heartbeat";
    // Reflection: our own frame sent back to us does not verify.
    let tag = c.send.seal(body);
    assert!(c.recv.clone().open(body, &tag).is_err());
    let tag = w.send.seal(body);
    assert!(w.recv.clone().open(body, &tag).is_err());

    let tag = pair(b"token").0.send.seal(body);
    type Params = (&'static [u8], [u8; 32], [u8; 32], &'static [u8]);
    let others: [Params; 4] = [
        (b"other", NC, NW, b"hello body"),
        (b"token", NW, NC, b"hello body"),
        (b"token", NC, [3; 32], b"hello body"),
        (b"token", NC, NW, b"hello bodz"),
    ];
    for (i, (token, nc, nw, hello)) in others.into_iter().enumerate() {
        let mut theirs = Session::derive(Side::Coordinator, token, &nc, &nw, hello);
        let mut worker = Session::derive(Side::Worker, token, &nc, &nw, hello);
        assert!(worker.recv.clone().open(body, &tag).is_err(), "session {i}");
        worker.recv.open(body, &theirs.send.seal(body)).unwrap();
    }
}

fn codecs() -> (FrameCodec, FrameCodec) {
    let (c, w) = pair(b"token");
    (
        FrameCodec::new(1 << 16).with_session(c),
        FrameCodec::new(1 << 16).with_session(w),
    )
}

#[test]
fn the_codec_tags_every_frame_and_checks_it_before_decoding() {
    let (mut c, mut w) = codecs();
    let mut wire = BytesMut::new();
    c.encode(&Message::Heartbeat, &mut wire).unwrap();
    // Length field: a one-byte body and its tag.
    assert_eq!(&wire[..5], &[0, 0, 0, 1 + TAG_LEN as u8, 7]);
    assert_eq!(wire.len(), 4 + 1 + TAG_LEN);
    let pre = crate::protocol::encode_frame(&Message::Shutdown, 1 << 16).unwrap();
    c.encode(Outgoing::Frame(pre.into()), &mut wire).unwrap();
    assert_eq!(w.decode(&mut wire).unwrap(), Some(Message::Heartbeat));
    assert_eq!(w.decode(&mut wire).unwrap(), Some(Message::Shutdown));
    assert!(wire.is_empty());

    // An altered body: refused with the frame's number, not decoded.
    c.encode(&Message::Heartbeat, &mut wire).unwrap();
    wire[4] = 8; // Heartbeat becomes Shutdown
    let err = w.decode(&mut wire).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Integrity { frame: 2 }),
        "{err}"
    );
}

#[test]
fn a_frame_shorter_than_its_tag_is_refused_before_reading_it() {
    let (_, mut w) = codecs();
    let mut wire = BytesMut::from(&[0u8, 0, 0, 31][..]);
    let err = w.decode(&mut wire).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    // A frame cut inside its tag at the end of the stream.
    let (mut c, mut w) = codecs();
    let mut wire = BytesMut::new();
    c.encode(&Message::Heartbeat, &mut wire).unwrap();
    wire.truncate(wire.len() - 1);
    let err = w.decode_eof(&mut wire).unwrap_err();
    assert!(matches!(err, ProtocolError::Truncated(_)), "{err}");
}

#[test]
fn the_tag_counts_toward_the_frame_limit() {
    let (c, _) = pair(b"token");
    let mut codec = FrameCodec::new(1024).with_session(c);
    let fits = Message::ChunkFailed {
        seq: 0,
        error: String::new(),
        failure: None,
    };
    let mut wire = BytesMut::new();
    codec.encode(&fits, &mut wire).unwrap();
    // A body that fits the limit alone, but not with its tag.
    let body_room = 1024 - TAG_LEN;
    let too_big = Message::ChunkFailed {
        seq: 0,
        error: "x".repeat(body_room),
        failure: None,
    };
    let err = codec.encode(&too_big, &mut wire).unwrap_err();
    assert!(
        matches!(err, ProtocolError::TooLarge { max: 1024, .. }),
        "{err}"
    );
    // A sealed chunk frame leaves room for the tag.
    let mut buf = vec![0; crate::protocol::CHUNK_HEADER_ROOM];
    buf.resize(buf.len() + body_room - 4, b'x');
    let err = crate::protocol::seal_chunk_frame(buf, 0, 1, 1, 1024).unwrap_err();
    assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
}
