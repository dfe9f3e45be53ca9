//! The handshake: proofs, versions, its deadline, the codec it leaves
//! behind, and a hello altered on the way.

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

/// A relay without the token that raises the worker's announced
/// threads: both proofs still verify (they do not cover the hello),
/// but the keys differ, and the coordinator's first frame fails at the
/// worker.
#[tokio::test]
async fn a_hello_altered_on_the_way_breaks_the_first_frame() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (worker_end, relay_w) = tokio::io::duplex(1 << 16);
    let (relay_c, coordinator_end) = tokio::io::duplex(1 << 16);
    let relay = tokio::spawn(async move {
        let (mut wr, mut ww) = tokio::io::split(relay_w);
        let (mut cr, mut cw) = tokio::io::split(relay_c);
        let mut len = [0u8; 4];
        wr.read_exact(&mut len).await?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        wr.read_exact(&mut body).await?;
        // Hello: variant, version, worker_id, cores, threads (one byte each here).
        assert_eq!(body[4], 1, "threads");
        body[4] = 200;
        cw.write_all(&len).await?;
        cw.write_all(&body).await?;
        let up = tokio::io::copy(&mut wr, &mut cw);
        let down = tokio::io::copy(&mut cr, &mut ww);
        let _ = tokio::join!(up, down);
        Ok::<_, std::io::Error>(())
    });
    let server = tokio::spawn(async move {
        let mut f = Framed::new(coordinator_end, FrameCodec::new(1 << 20));
        let hello = server_handshake(&mut f, b"token").await?;
        write_frame(&mut f, Message::Heartbeat).await?;
        Ok::<_, ProtocolError>(hello)
    });
    let mut f = Framed::new(worker_end, FrameCodec::new(1 << 20));
    let hello = PeerHello {
        worker_id: 1,
        cores: 1,
        threads: 1,
        allowed_roots: Vec::new(),
    };
    client_handshake(&mut f, b"token", &hello).await.unwrap();
    assert_eq!(server.await.unwrap().unwrap().threads, 200);
    let err = read_frame(&mut f).await.unwrap_err();
    assert!(
        matches!(err, ProtocolError::Integrity { frame: 0 }),
        "{err}"
    );
    drop(f);
    relay.abort();
}

#[tokio::test]
async fn the_full_codec_is_back_after_a_successful_handshake() {
    let (a, b) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        let mut f = Framed::new(a, FrameCodec::new(1 << 20));
        server_handshake(&mut f, b"token")
            .await
            .map(|_| f.codec().clone())
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
    for codec in [f.codec().clone(), server.await.unwrap().unwrap()] {
        assert!(!codec.is_handshake());
        assert_eq!(codec.max_len, 1 << 20);
        assert!(codec.session().is_some());
    }
}
