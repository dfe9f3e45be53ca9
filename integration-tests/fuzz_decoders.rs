//! The wire's fuzz target set, run by `cargo test`: property tests over
//! the frame codec, `decode_body`, both sides of the handshake (over
//! `tokio::io::duplex`), every partial, parameter and batch decoder, and
//! the checked merges — valid encodings, then the same with declared
//! lengths overwritten by huge values at every position, random bytes and
//! truncations. A counting global allocator (this binary's own) records
//! the largest single allocation made while decoding, which must stay
//! within the documented bound of `docs/protocol.md` (§5, Decoding):
//! `ALLOC_FACTOR × body length + ALLOC_SLACK` for a decoded body, the
//! pre-authentication frame limit (plus the read buffer) for a handshake.
//! A panic fails the test; an abort (what an unbounded allocation did)
//! kills it.
//!
//! The default case count keeps this to a few seconds. A long run:
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz_decoders -- --nocapture`
//! (each test prints how many inputs it decoded and the largest
//! allocation it saw relative to its input).

use parpipe::file_range::FileRange;
use parpipe::protocol::{
    client_handshake, decode_body, decode_whole, encode_frame, server_handshake, ChunkFailure,
    ChunkStats, FrameCodec, Message, PeerHello, HANDSHAKE_MAX_FRAME,
};
use parpipe::sources::lines::input::InputSpec;
use parpipe::workloads::logs::counts::Counts;
use parpipe::workloads::logs::metrics::LogsPartial;
use parpipe::workloads::logs::{LogsInput, LogsParams, SnapshotPlan};
use parpipe::workloads::matrix::{MatrixParams, MatrixPartial};
use parpipe::JobSpec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

// ---- the counting allocator -------------------------------------------

/// Records the largest allocation of the current thread while armed.
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest allocation it made.
fn measured<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|m| m.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, LARGEST.with(Cell::get))
}

/// The documented bound (`docs/protocol.md`, §5, Decoding): decoding `n` bytes of
/// parpipe's own wire types makes no allocation above `ALLOC_FACTOR * n +
/// ALLOC_SLACK`. Strings and byte buffers take at most `n`; the factor is
/// the widest native form per encoded byte of an element of a collection,
/// doubled by a `Vec`'s growth: an `InputSpec::Stdin` is one byte on the
/// wire and 24 in memory (48 n, the worst), a `FileRange` 6 and 96 (32 n),
/// a small hash-map entry about 20 n. The slack covers the smallest
/// buffers (a hash table's first buckets).
const ALLOC_FACTOR: usize = 64;
const ALLOC_SLACK: usize = 1024;

fn bound(n: usize) -> usize {
    ALLOC_FACTOR * n + ALLOC_SLACK
}

/// Per-test tallies, printed at the end of each test.
struct Tally {
    name: &'static str,
    inputs: AtomicU64,
    largest: AtomicUsize,
    /// Largest allocation over input length, in thousandths.
    worst_ratio_milli: AtomicUsize,
}

impl Tally {
    const fn new(name: &'static str) -> Self {
        Tally {
            name,
            inputs: AtomicU64::new(0),
            largest: AtomicUsize::new(0),
            worst_ratio_milli: AtomicUsize::new(0),
        }
    }

    /// Counts one decoded input of `n` bytes whose largest allocation was
    /// `largest`, and checks it against `limit`.
    fn check(&self, n: usize, largest: usize, limit: usize) -> Result<(), TestCaseError> {
        self.inputs.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(largest, Ordering::Relaxed);
        let beyond = largest.saturating_sub(ALLOC_SLACK);
        self.worst_ratio_milli
            .fetch_max(beyond * 1000 / n.max(1), Ordering::Relaxed);
        prop_assert!(
            largest <= limit,
            "an allocation of {} bytes while decoding {} bytes (limit {})",
            largest,
            n,
            limit
        );
        Ok(())
    }

    fn report(&self) {
        if self.largest.load(Ordering::Relaxed) == 0 {
            // A merge test: nothing measured but the inputs.
            eprintln!(
                "{}: {} inputs, no panic",
                self.name,
                self.inputs.load(Ordering::Relaxed)
            );
            return;
        }
        eprintln!(
            "{}: {} inputs, no panic; largest allocation {} bytes; largest beyond the \
             {ALLOC_SLACK}-byte slack: {:.2}x its input",
            self.name,
            self.inputs.load(Ordering::Relaxed),
            self.largest.load(Ordering::Relaxed),
            self.worst_ratio_milli.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- values -----------------------------------------------------------

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn file_range() -> impl Strategy<Value = FileRange> {
    (
        "[a-z/]{0,20}",
        any::<u64>(),
        any::<u64>(),
        bytes(4),
        any::<u64>(),
        any::<u128>(),
        any::<u64>(),
    )
        .prop_map(
            |(path, offset, len, suffix, file_len, modified_nanos, fingerprint)| FileRange {
                path: path.into(),
                offset,
                len,
                suffix,
                file_len,
                modified_nanos,
                fingerprint,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec("[a-z/]{0,12}", 0..3)
        )
            .prop_map(|(version, worker_id, cores, threads, allowed_roots)| {
                Message::Hello {
                    version,
                    worker_id,
                    cores,
                    threads,
                    allowed_roots,
                }
            }),
        bytes(40).prop_map(|nonce| Message::Challenge { nonce }),
        (bytes(40), bytes(40)).prop_map(|(mac, nonce)| Message::Proof { mac, nonce }),
        (
            "[a-z]{0,10}",
            bytes(60),
            any::<u64>(),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(
                |(pipeline, params, heartbeat_ms, batch_size, hold)| Message::Job {
                    spec: JobSpec { pipeline, params },
                    heartbeat_ms,
                    batch_size,
                    hold,
                }
            ),
        (any::<u64>(), any::<u64>(), any::<u64>(), bytes(80)).prop_map(
            |(seq, first_line, records, payload)| Message::Chunk {
                seq,
                first_line,
                records,
                payload: payload.into(),
            }
        ),
        (
            any::<u64>(),
            bytes(80),
            prop::collection::vec(any::<(u64, u64, u64)>(), 0..5),
            any::<(u64, f64, u64)>()
        )
            .prop_map(|(seq, partial, parts, (busy_nanos, cpu, rss))| {
                Message::ChunkDone {
                    seq,
                    partial,
                    stats: ChunkStats {
                        records: busy_nanos % 1000,
                        parts,
                        busy_nanos,
                        process_cpu_seconds: cpu,
                        process_peak_rss: rss,
                    },
                }
            }),
        (any::<u64>(), ".{0,30}", any::<Option<(u64, u64, bool)>>()).prop_map(
            |(seq, error, at)| Message::ChunkFailed {
                seq,
                error,
                failure: at.map(|(first_line, records, panicked)| ChunkFailure {
                    stage: "stage".into(),
                    batch: parpipe::BatchInfo {
                        seq,
                        first_line,
                        records,
                    },
                    panicked,
                }),
            }
        ),
        Just(Message::Heartbeat),
        Just(Message::Shutdown),
        Just(Message::Flush),
        Just(Message::Unhold),
        (any::<u64>(), any::<u64>()).prop_map(|(seq, records)| Message::ChunkHeld {
            seq,
            stats: ChunkStats {
                records,
                ..ChunkStats::default()
            },
        }),
        (prop::collection::vec(any::<u64>(), 0..6), bytes(80))
            .prop_map(|(seqs, partial)| Message::Held { seqs, partial }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(file_range(), 0..3)
        )
            .prop_map(|(seq, first_line, records, ranges)| Message::ChunkInFiles {
                seq,
                first_line,
                records,
                ranges,
            }),
    ]
}

fn counts() -> impl Strategy<Value = Counts> {
    // Distinct keys: counting one key twice here would overflow in the test itself.
    prop::collection::btree_map("[a-z/.]{0,12}", count(), 0..8).prop_map(|entries| {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes(), *v))
            .collect::<Counts>()
    })
}

/// A count: small, or near the top of u64 so that merges overflow.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1000, (u64::MAX - 1000)..=u64::MAX, any::<u64>()]
}

/// A partial whose status table has up to `status` entries.
fn logs_partial_with(status: usize) -> impl Strategy<Value = LogsPartial> {
    (
        (
            count(),
            count(),
            count(),
            prop::collection::vec(any::<u64>(), 0..7),
        ),
        (
            any::<u128>(),
            count(),
            prop::collection::vec(count(), 0..status),
            count(),
        ),
        prop::array::uniform10(any::<u128>()),
        (counts(), counts(), counts()),
        prop::collection::vec((any::<i64>(), count()), 0..6),
        (bytes(30), bytes(30)),
    )
        .prop_map(
            |(
                (lines, parsed, rejected, rejected_samples),
                (bytes, bots, status, dropped),
                status_class_bytes,
                (methods, paths, clients),
                hours,
                (records_out, rejects_out),
            )| LogsPartial {
                lines,
                parsed,
                dropped,
                rejected,
                rejected_samples,
                bytes,
                bots,
                status,
                status_class_bytes,
                methods,
                paths,
                clients,
                hours: hours.into_iter().collect(),
                records_out,
                rejects_out,
                ..LogsPartial::default()
            },
        )
}

fn logs_partial() -> impl Strategy<Value = LogsPartial> {
    // Past 1000 entries, a worker's table is refused at merge time.
    logs_partial_with(1002)
}

fn matrix_partial() -> impl Strategy<Value = MatrixPartial> {
    (count(), prop::collection::vec(any::<(f64, f64)>(), 0..6))
        .prop_map(|(tasks, values)| MatrixPartial { tasks, values })
}

fn logs_params() -> impl Strategy<Value = LogsParams> {
    (
        prop_oneof![
            (any::<u64>(), any::<u64>())
                .prop_map(|(records, seed)| LogsInput::Generate { records, seed }),
            prop::collection::vec(
                prop_oneof![
                    Just(InputSpec::Stdin),
                    "[a-z/]{0,16}".prop_map(|p| InputSpec::File(p.into())),
                    "[a-z/]{0,16}".prop_map(|p| InputSpec::Follow(p.into()))
                ],
                0..3
            )
            .prop_map(LogsInput::Files),
        ],
        "[a-z/]{0,16}",
        any::<bool>(),
        proptest::option::of(("[a-z/]{0,16}", any::<u64>(), any::<bool>())),
        any::<u64>(),
    )
        .prop_map(|(input, out, emit_records, snapshot, delay)| LogsParams {
            input,
            out_dir: out.into(),
            emit_records,
            snapshot: snapshot.map(|(dir, every_ms, trailing)| SnapshotPlan {
                dir: dir.into(),
                every_ms,
                trailing,
            }),
            max_batch_delay_ms: delay,
            format: Default::default(),
            max_rejected_ppm: 900_000,
            dimensions: Default::default(),
        })
}

fn matrix_params() -> impl Strategy<Value = MatrixParams> {
    (any::<u64>(), any::<usize>(), any::<u64>(), "[a-z/]{0,16}").prop_map(
        |(tasks, n, seed, out)| MatrixParams {
            tasks,
            n,
            seed,
            out_dir: out.into(),
        },
    )
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap()
}

// ---- mutations ----------------------------------------------------------

/// Huge declared lengths, as bincode varints: 2^40 (the attack), values
/// past `isize::MAX` ("capacity overflow") and `u64::MAX`, and the largest
/// two- and four-byte forms.
fn huge_varints() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in [1u64 << 40, isize::MAX as u64 + 1, u64::MAX, 1 << 32] {
        let mut b = vec![0xfd];
        b.extend_from_slice(&v.to_le_bytes());
        out.push(b);
    }
    let mut b = vec![0xfc];
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    out.push(b);
    out.push(vec![0xfb, 0xff, 0xff]);
    out.push(vec![250]);
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    /// The byte at a position becomes a huge varint (a declared length or
    /// count there, whatever field it was).
    Huge(Index, usize),
    /// One byte set to anything.
    Byte(Index, u8),
    /// Cut at a position.
    Truncate(Index),
    /// Random bytes inserted.
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0..huge_varints().len()).prop_map(|(i, v)| Mutation::Huge(i, v)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), bytes(12)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Huge(i, v) => {
            let i = i.index(bytes.len());
            bytes.splice(i..=i, huge_varints()[*v].clone());
        }
        Mutation::Byte(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.splice(i..i, b.iter().copied());
        }
    }
}

// ---- decoders under test ------------------------------------------------

/// A decoder under test: true when the bytes decoded.
type Decode = fn(&[u8]) -> bool;

/// Every decoder of bytes from a peer or a file, by name.
fn decoders() -> Vec<(&'static str, Decode)> {
    vec![
        ("message body", |b| decode_body(b).is_ok()),
        ("logs partial", |b| {
            decode_whole::<LogsPartial>(b, "partial").is_ok()
        }),
        ("matrix partial", |b| {
            decode_whole::<MatrixPartial>(b, "partial").is_ok()
        }),
        ("logs parameters", |b| {
            decode_whole::<LogsParams>(b, "parameters").is_ok()
        }),
        ("matrix parameters", |b| {
            decode_whole::<MatrixParams>(b, "parameters").is_ok()
        }),
        ("matrix batch", |b| {
            parpipe::stage::decode_batch::<Vec<u64>>(b).is_ok()
        }),
        ("matrix stage output", |b| {
            parpipe::stage::decode_batch::<Vec<(f64, f64)>>(b).is_ok()
        }),
    ]
}

/// Decodes `bytes` with decoder `which`, checking the allocation bound.
fn decode_checked(tally: &Tally, which: usize, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let (name, decode) = decoders()[which];
    let (ok, largest) = measured(|| decode(bytes));
    tally
        .check(bytes.len(), largest, bound(bytes.len()))
        .map_err(|e| TestCaseError::fail(format!("{name}: {e} (input {bytes:?})")))?;
    Ok(ok)
}

/// A valid encoding for decoder `which`.
fn valid_for(which: usize) -> BoxedStrategy<Vec<u8>> {
    valid_for_sized(which, 1002)
}

/// A valid encoding for decoder `which`, status tables of at most `status` entries.
fn valid_for_sized(which: usize, status: usize) -> BoxedStrategy<Vec<u8>> {
    match which {
        0 => message()
            .prop_map(|m| encode_frame(&m, 1 << 20).unwrap()[4..].to_vec())
            .boxed(),
        1 => logs_partial_with(status).prop_map(|p| encode(&p)).boxed(),
        2 => matrix_partial().prop_map(|p| encode(&p)).boxed(),
        3 => logs_params().prop_map(|p| encode(&p)).boxed(),
        4 => matrix_params().prop_map(|p| encode(&p)).boxed(),
        5 => prop::collection::vec(any::<u64>(), 0..50)
            .prop_map(|v| encode(&v))
            .boxed(),
        _ => prop::collection::vec(any::<(f64, f64)>(), 0..20)
            .prop_map(|v| encode(&v))
            .boxed(),
    }
}

fn any_decoder_input() -> impl Strategy<Value = (usize, Vec<u8>, Vec<Mutation>)> {
    (0..decoders().len()).prop_flat_map(|which| {
        (
            Just(which),
            valid_for(which),
            prop::collection::vec(mutation(), 0..4),
        )
    })
}

/// Runs `test` on `cases` inputs of `strategy`, then prints `tally`.
fn run<S: Strategy>(
    tally: &Tally,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let result = runner.run(&strategy, test);
    tally.report();
    if let Err(e) = result {
        panic!("{}: {e}", tally.name);
    }
}

/// Valid encodings decode; mutated ones decode or fail, never panic,
/// never allocate past the bound.
#[test]
fn every_decoder_stays_bounded_on_mutated_input() {
    let tally = Tally::new("decoders, mutated valid encodings");
    run(
        &tally,
        any_decoder_input(),
        |(which, mut bytes, mutations)| {
            let valid = mutations.is_empty();
            for m in &mutations {
                apply(&mut bytes, m);
            }
            let ok = decode_checked(&tally, which, &bytes)?;
            if valid {
                prop_assert!(ok, "{} refused a valid encoding", decoders()[which].0);
            }
            Ok(())
        },
    );
}

/// Random bytes, for every decoder.
#[test]
fn every_decoder_stays_bounded_on_random_bytes() {
    let tally = Tally::new("decoders, random bytes");
    run(&tally, bytes(300), |b| {
        for which in 0..decoders().len() {
            decode_checked(&tally, which, &b)?;
        }
        Ok(())
    });
}

/// A byte stream cut anywhere into reads: the codec (after or before
/// authentication) gives the messages or an error, and allocates no more
/// than the frames it was given call for.
#[test]
fn the_codec_stays_bounded() {
    let tally = Tally::new("frame codec (relative to the frame limit)");
    let input = (
        prop::collection::vec(message(), 0..4),
        prop::collection::vec(mutation(), 0..3),
        prop::collection::vec(any::<Index>(), 0..4),
        any::<bool>(),
    );
    run(&tally, input, |(msgs, mutations, cuts, handshake)| {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend(encode_frame(m, 1 << 20).unwrap());
        }
        for m in &mutations {
            apply(&mut stream, m);
        }
        let max = 1 << 16;
        let mut codec = if handshake {
            FrameCodec::handshake()
        } else {
            FrameCodec::new(max)
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let (decoded, largest) = measured(|| {
            use tokio_util::codec::Decoder;
            let mut buf = bytes::BytesMut::new();
            let mut out = Vec::new();
            let mut from = 0;
            for &to in &cuts {
                buf.extend_from_slice(&stream[from..to]);
                from = to;
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(m)) => out.push(m),
                        Ok(None) => break,
                        Err(_) => return out,
                    }
                }
            }
            let _ = codec.decode_eof(&mut buf);
            out
        });
        // Reading a declared frame reserves its length (at most the limit),
        // the buffer growing at most twice over; decoding one is bounded.
        // (Reported relative to the frame limit, which is what bounds it.)
        let limit = 2 * (4 + codec.max_len) + bound(stream.len());
        tally.check(4 + codec.max_len, largest, limit)?;
        if mutations.is_empty() && !handshake {
            prop_assert_eq!(decoded, msgs);
        }
        Ok(())
    });
}

/// A script a hostile peer plays: bytes to send, cut into writes.
fn hostile_script() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop::collection::vec(message(), 1..4).prop_map(|msgs| {
        msgs.iter()
            .flat_map(|m| encode_frame(m, 1 << 20).unwrap())
            .collect::<Vec<u8>>()
    });
    prop_oneof![
        (valid, prop::collection::vec(mutation(), 0..3)).prop_map(|(mut b, ms)| {
            for m in &ms {
                apply(&mut b, m);
            }
            b
        }),
        bytes(200),
    ]
}

/// Either side of the handshake against a peer that sends anything: an
/// error (the bytes cannot hold a valid proof), no panic, and no
/// allocation beyond the pre-authentication frame limit and the
/// connection's read buffer.
#[test]
fn the_handshake_refuses_hostile_peers_within_bounds() {
    let tally = Tally::new("handshake, both sides");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    run(
        &tally,
        (hostile_script(), any::<bool>()),
        |(script, server_side)| {
            let (result, largest) = runtime.block_on(async {
                let (ours, mut theirs) = tokio::io::duplex(16 << 10);
                let peer = async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let _ = theirs.write_all(&script).await;
                    let _ = theirs.shutdown().await;
                    // Drain what the side under test writes, until it hangs up.
                    let mut sink = [0u8; 256];
                    while matches!(theirs.read(&mut sink).await, Ok(n) if n > 0) {}
                };
                let peer = tokio::spawn(peer);
                let mut framed = tokio_util::codec::Framed::new(ours, FrameCodec::new(1 << 20));
                LARGEST.with(|m| m.set(0));
                ARMED.with(|a| a.set(true));
                let result = if server_side {
                    server_handshake(&mut framed, b"token").await.map(drop)
                } else {
                    client_handshake(
                        &mut framed,
                        b"token",
                        &PeerHello {
                            worker_id: 1,
                            cores: 1,
                            threads: 1,
                            allowed_roots: Vec::new(),
                        },
                    )
                    .await
                };
                ARMED.with(|a| a.set(false));
                drop(framed);
                let _ = peer.await;
                (result, LARGEST.with(Cell::get))
            });
            prop_assert!(result.is_err(), "a hostile script passed the handshake");
            // Framed's first read buffer is 8 KiB; one frame is at most the
            // pre-authentication limit.
            tally.check(
                HANDSHAKE_MAX_FRAME,
                largest,
                8192 + 2 * (4 + HANDSHAKE_MAX_FRAME),
            )
        },
    );
}

/// Each decoder's valid sample, with a huge varint at every byte position:
/// the deterministic half of "each message variant with a huge declared
/// length at every field position".
#[test]
fn huge_declared_lengths_at_every_position() {
    let tally = Tally::new("huge declared length at every position");
    let mut samples: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for which in 0..decoders().len() {
        for _ in 0..2 {
            let tree = valid_for_sized(which, 12).new_tree(&mut runner).unwrap();
            samples.push((which, tree.current()));
        }
    }
    // Every message variant, with every field holding something.
    for m in [
        Message::ChunkFailed {
            seq: 1,
            error: "x".repeat(20),
            failure: Some(ChunkFailure {
                stage: "y".repeat(20),
                batch: parpipe::BatchInfo {
                    seq: 1,
                    first_line: 2,
                    records: 3,
                },
                panicked: true,
            }),
        },
        Message::Job {
            spec: JobSpec {
                pipeline: "logs".into(),
                params: vec![7; 20],
            },
            heartbeat_ms: 1,
            batch_size: 1,
            hold: true,
        },
        Message::Held {
            seqs: vec![1, 2, 3],
            partial: vec![1; 10],
        },
        Message::ChunkHeld {
            seq: 1,
            stats: ChunkStats {
                parts: vec![(1, 2, 3); 3],
                ..ChunkStats::default()
            },
        },
        Message::ChunkInFiles {
            seq: 1,
            first_line: 1,
            records: 1,
            ranges: vec![FileRange {
                path: "/a/b".into(),
                offset: 1,
                len: 2,
                suffix: vec![b'\n'],
                file_len: 3,
                modified_nanos: 4,
                fingerprint: 5,
            }],
        },
        Message::ChunkDone {
            seq: 1,
            partial: vec![1; 10],
            stats: ChunkStats {
                parts: vec![(1, 2, 3); 3],
                ..ChunkStats::default()
            },
        },
        Message::Proof {
            mac: vec![1; 32],
            nonce: vec![2; 32],
        },
        Message::Chunk {
            seq: 1,
            first_line: 1,
            records: 1,
            payload: vec![b'a'; 10].into(),
        },
    ] {
        samples.push((0, encode_frame(&m, 1 << 20).unwrap()[4..].to_vec()));
    }
    for (which, sample) in &samples {
        for at in 0..sample.len() {
            for huge in huge_varints() {
                let mut bytes = sample.clone();
                bytes.splice(at..=at, huge);
                decode_checked(&tally, *which, &bytes).unwrap();
            }
        }
    }
    // The attack's frame body.
    let frame = [0u8, 0, 0, 0x0b, 6, 0, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    assert!(!decode_checked(&tally, 0, &frame[4..]).unwrap());
    tally.report();
}

/// The widest valid input of parpipe's types: a thousand `Stdin` inputs,
/// one byte each on the wire, 24 bytes each in memory. Within the bound.
#[test]
fn the_widest_valid_input_stays_within_the_bound() {
    let tally = Tally::new("widest valid input");
    let params = LogsParams {
        input: LogsInput::Files(vec![InputSpec::Stdin; 1000]),
        out_dir: "out".into(),
        emit_records: false,
        snapshot: None,
        max_batch_delay_ms: 200,
        format: Default::default(),
        max_rejected_ppm: 900_000,
        dimensions: Default::default(),
    };
    let bytes = encode(&params);
    assert!(decode_checked(&tally, 3, &bytes).unwrap());
    tally.report();
}

fn checked_sum(values: &[u64]) -> Option<u64> {
    values.iter().try_fold(0u64, |a, &b| a.checked_add(b))
}

/// A worker's partial merged with checked arithmetic: an overflow is an
/// error, never a panic or a wrapped total; a merge that succeeds has
/// exact totals; the summary never panics.
#[test]
fn logs_merges_are_checked() {
    let tally = Tally::new("logs partial merges");
    run(&tally, (logs_partial(), logs_partial()), |(a, b)| {
        tally.inputs.fetch_add(1, Ordering::Relaxed);
        let mut acc = LogsPartial::default();
        let first = acc.try_merge(a.clone());
        let second = first.is_ok().then(|| acc.try_merge(b.clone()));
        let _ = acc.summary();
        let valid = |p: &LogsPartial| {
            p.status.len() <= 1000 && p.hours.keys().all(|h| h.checked_mul(3600).is_some())
        };
        match (first, second) {
            (Ok(()), Some(Ok(()))) => {
                prop_assert!(valid(&a) && valid(&b));
                prop_assert_eq!(Some(acc.lines), checked_sum(&[a.lines, b.lines]));
                prop_assert_eq!(Some(acc.bots), checked_sum(&[a.bots, b.bots]));
                prop_assert_eq!(Some(acc.bytes), a.bytes.checked_add(b.bytes));
                for (code, &n) in acc.status.iter().enumerate() {
                    let theirs =
                        [a.status.get(code), b.status.get(code)].map(|c| c.copied().unwrap_or(0));
                    prop_assert_eq!(Some(n), checked_sum(&theirs));
                }
            }
            (Err(e), _) | (Ok(()), Some(Err(e))) => {
                let overflow = e.contains("overflows");
                prop_assert!(overflow || !valid(&a) || !valid(&b), "{}", e);
            }
            (Ok(()), None) => unreachable!(),
        }
        Ok(())
    });
}

/// The decoded (flat) form of counts merges with the same checks.
#[test]
fn counts_merges_are_checked() {
    let tally = Tally::new("counts merges");
    run(&tally, (counts(), counts()), |(a, b)| {
        tally.inputs.fetch_add(1, Ordering::Relaxed);
        let flat: Counts = decode_whole(&encode(&b), "counts").unwrap();
        let mut acc = a.clone();
        match acc.try_merge(flat) {
            Ok(()) => {
                for (k, v) in acc.iter() {
                    let all: Vec<u64> = a
                        .iter()
                        .chain(b.iter())
                        .filter(|e| e.0 == k)
                        .map(|e| e.1)
                        .collect();
                    prop_assert_eq!(Some(v), checked_sum(&all));
                }
            }
            Err(e) => prop_assert!(e.contains("overflows"), "{}", e),
        }
        Ok(())
    });
}
