//! The codec: byte literals, round trips, the chunk fast path, limits,
//! and the pre-authentication codec.

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
        let sealed = seal_chunk_frame(buf, seq, first_line, records, DEFAULT_MAX_FRAME).unwrap();
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
    // Hello = variant 0; version 1, worker_id 5, cores 2, threads 3 as
    // varints, then one root: its length 2 and "/d".
    let bytes = [0u8, 0, 0, 9, 0, 1, 5, 2, 3, 1, 2, b'/', b'd'];
    let msgs = decode_all(&bytes, 1024).unwrap();
    assert_eq!(
        msgs,
        vec![Message::Hello {
            version: 1,
            worker_id: 5,
            cores: 2,
            threads: 3,
            allowed_roots: vec!["/d".into()],
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

/// One message of each variant.
pub(crate) fn one_of_each() -> Vec<Message> {
    vec![
        Message::Hello {
            version: 2,
            worker_id: 1,
            cores: 1,
            threads: 1,
            allowed_roots: vec!["/data".into(), "/srv/logs".into()],
        },
        Message::Challenge { nonce: vec![1; 32] },
        Message::Proof {
            mac: vec![2; 32],
            nonce: vec![3; 32],
        },
        Message::Job {
            spec: crate::pipeline::JobSpec {
                pipeline: "logs".into(),
                params: vec![1, 2, 3],
            },
            heartbeat_ms: 1000,
            batch_size: 10,
            hold: false,
        },
        Message::Flush,
        Message::Unhold,
        Message::Held {
            seqs: vec![3, 1, 2],
            partial: vec![7; 9],
        },
        Message::ChunkHeld {
            seq: 4,
            stats: super::super::ChunkStats {
                records: 2,
                parts: vec![(2, 2, 5)],
                busy_nanos: 9,
                process_cpu_seconds: 0.5,
                process_peak_rss: 4096,
            },
        },
        Message::Chunk {
            seq: 1,
            first_line: 1,
            records: 1,
            payload: bytes::Bytes::from_static(b"x\n"),
        },
        Message::ChunkDone {
            seq: 1,
            partial: vec![0; 3],
            stats: super::super::ChunkStats::default(),
        },
        Message::ChunkFailed {
            seq: 1,
            error: "bad".into(),
            failure: Some(super::super::ChunkFailure {
                stage: "parse".into(),
                batch: crate::BatchInfo {
                    seq: 1,
                    first_line: 9,
                    records: 4,
                },
                panicked: false,
            }),
        },
        Message::Heartbeat,
        Message::Shutdown,
        Message::ChunkInFiles {
            seq: 1,
            first_line: 1,
            records: 1,
            ranges: vec![],
        },
        Message::Busy {
            retry_after_ms: 250,
            reason: "busy".into(),
        },
        Message::ChunkUnreadable {
            seq: 1,
            input: "/data/in.log".into(),
            reason: "cannot open: Permission denied (os error 13)".into(),
        },
    ]
}

#[test]
fn variant_names_follow_the_encoding() {
    for msg in one_of_each() {
        let frame = encode_frame(&msg, 1024).unwrap();
        assert_eq!(variant_name(frame[4]), Some(msg.kind()));
    }
    assert_eq!(variant_name(16), None);
}

/// The frame of the attack report: a `ChunkFailed` whose error string
/// declares 2^40 bytes, 15 bytes in all.
const CHUNK_FAILED_2_40: [u8; 15] = [0, 0, 0, 0x0b, 6, 0, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

#[test]
fn the_15_byte_frame_is_refused_before_and_after_authentication() {
    let err = decode_all(&CHUNK_FAILED_2_40, 1 << 20).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    let mut codec = FrameCodec::handshake();
    let mut buf = BytesMut::from(&CHUNK_FAILED_2_40[..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            ProtocolError::Unexpected {
                got: "ChunkFailed",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn before_authentication_only_small_handshake_frames_pass() {
    for msg in one_of_each() {
        let frame = encode_frame(&msg, 1024).unwrap();
        let mut codec = FrameCodec::handshake();
        // The variant is judged from the first body byte alone.
        let mut head = BytesMut::from(&frame[..5]);
        let early = codec.decode(&mut head);
        let mut whole = BytesMut::from(&frame[..]);
        let got = codec.decode(&mut whole);
        match msg.kind() {
            "Hello" | "Challenge" | "Proof" | "Busy" => {
                assert!(matches!(early, Ok(None)), "{}", msg.kind());
                assert_eq!(got.unwrap(), Some(msg));
            }
            kind => {
                let err = early.unwrap_err().to_string();
                assert!(err.contains(kind) && err.contains("handshake"), "{err}");
                assert!(got.is_err());
            }
        }
    }
    let mut codec = FrameCodec::handshake();
    let mut buf = BytesMut::from(&((HANDSHAKE_MAX_FRAME + 1) as u32).to_be_bytes()[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(ProtocolError::TooLarge { .. })
    ));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert!(codec.decode(&mut buf).is_err(), "an empty body");
    let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0xff, 0, 0][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn a_hello_of_another_version_that_does_not_decode_names_its_version() {
    // Variant 0 (Hello), version 4, then fields this build does not expect
    // (an older hello had fewer): too short to decode as version 5's.
    let body = [0u8, 4, 7];
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut codec = FrameCodec::handshake();
    match codec.decode(&mut frame) {
        Err(ProtocolError::Version { got: 4 }) => {}
        other => panic!("expected a version error, got {other:?}"),
    }
    let text = ProtocolError::Version { got: 4 }.to_string();
    assert!(text.contains("protocol version 4"), "{text}");
    // The same bytes with this build's version are just malformed.
    let body = [0u8, crate::protocol::PROTOCOL_VERSION as u8, 7];
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    assert!(matches!(
        FrameCodec::handshake().decode(&mut frame),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn hello_is_the_byte_literal_docs_protocol_md_shows() {
    let hello = Message::Hello {
        version: 9,
        worker_id: 5,
        cores: 2,
        threads: 2,
        allowed_roots: vec![],
    };
    let frame = encode_frame(&hello, 1024).unwrap();
    assert_eq!(&frame[..], &[0, 0, 0, 6, 0, 9, 5, 2, 2, 0]);
}
