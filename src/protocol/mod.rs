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
//! worker → coordinator  Hello { version, worker_id, cores, threads, allowed_roots }
//! coordinator → worker  Challenge { nonce: Nc }              (version checked first)
//! worker → coordinator  Proof { mac: H(token, "worker" Nc Nw), nonce: Nw }
//! coordinator → worker  Proof { mac: H(token, "coordinator" Nw Nc), nonce: Nc }
//! coordinator → worker  Job { spec, heartbeat_ms, batch_size, hold }
//! ```
//!
//! Then: `Chunk` or `ChunkInFiles` (coordinator → worker; the latter only
//! for files under a root the worker announced), `ChunkDone` / `ChunkFailed`
//! / `ChunkUnreadable` (worker → coordinator; the last for a `ChunkInFiles`
//! whose files it could not read, whose bytes the coordinator then sends), `Heartbeat` both ways, and `Shutdown` from the
//! coordinator, after which both sides half-close their write side. A
//! worker whose job says `hold` folds its chunks, from its second on, into
//! one partial of its own and answers each such chunk with `ChunkHeld`; it
//! sends what it holds as `Held` when the coordinator says `Flush`, or
//! `Unhold` (after which it answers each chunk with its own partial).
//!
//! Integrity: every frame after the handshake (the `Job` included) carries
//! a keyed-BLAKE3 tag under a per-direction session key derived from the
//! token, both nonces and the worker's hello, over an implicit frame
//! counter and the body (see [`Session`]); a frame whose tag fails ends
//! the connection with [`ProtocolError::Integrity`]. Nothing is encrypted.
//!
//! Trust: until the handshake has authenticated the peer, a connection
//! accepts only `Hello`, `Challenge` and `Proof`, in frames of at most
//! [`HANDSHAKE_MAX_FRAME`] bytes, and the whole handshake must finish
//! within [`HANDSHAKE_TIMEOUT`]; a coordinator holds at most
//! [`MAX_PENDING_HANDSHAKES`] unauthenticated connections at a time. Every
//! body — and every partial, chunk or parameter set decoded from one — is
//! decoded with [`decode_prefix`] / [`decode_whole`], which never allocate
//! a length the bytes declare before checking it against the bytes in hand.
//!
//! Files: this one (constants, [`Message`], [`ProtocolError`]), `codec.rs`
//! (framing: [`FrameCodec`], the zero-copy chunk frames, read/write
//! helpers), `bounded.rs` (bounded bincode decoding), `handshake.rs`
//! ([`Token`], the HMAC challenge–response) and `session.rs` (the session
//! keys and the per-frame MAC).

mod bounded;
mod codec;
mod handshake;
mod session;

// `decode_prefix` is the codec's (public only with `internals`).
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use bounded::{decode_prefix, decode_whole};
pub use codec::*;
pub use handshake::*;
pub use session::{FrameMac, Session, Side, TAG_LEN};

use crate::pipeline::JobSpec;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Version of this protocol; a peer with another version is refused.
pub const PROTOCOL_VERSION: u32 = 10;
/// Most chunks one worker may process at once (`parpipe worker
/// --threads`): a coordinator gives a worker `inflight` credits per thread
/// and reads ahead twice its workers' credits, so this bounds what one
/// peer's hello can make it hold.
pub const MAX_WORKER_THREADS: u32 = 256;
/// Default largest frame body accepted or sent: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// Bytes in a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Time a peer has to complete the whole handshake (all its messages).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame body accepted before the peer is authenticated: the
/// handshake messages take well under 100 bytes.
pub const HANDSHAKE_MAX_FRAME: usize = 4096;
/// Most connections a coordinator keeps in the handshake at once; more are
/// closed as soon as they are accepted. With [`HANDSHAKE_MAX_FRAME`], all
/// strangers together hold at most a few MiB.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// The environment variable a token may be read from (and through which a
/// coordinator hands it to the workers it spawns).
pub const TOKEN_ENV: &str = "PARPIPE_TOKEN";

/// Per-part timing of one chunk in a worker: `(records_in, records_out,
/// busy_nanos)` for each stage and then the aggregate, in pipeline order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkStats {
    /// Records in the chunk, as the worker counted them (the coordinator
    /// learns a chunk's size from it when it sent the chunk uncounted).
    pub records: u64,
    /// One row per stage, then one for the aggregate.
    pub parts: Vec<(u64, u64, u64)>,
    /// Wall time the worker spent on the chunk, in nanoseconds.
    pub busy_nanos: u64,
    /// CPU seconds the worker process has used since it started.
    pub process_cpu_seconds: f64,
    /// Peak resident memory of the worker process so far.
    pub process_peak_rss: u64,
}

/// Where in a chunk a worker's stage failed (in `ChunkFailed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkFailure {
    /// The stage's (or the aggregate's) name.
    pub stage: String,
    /// The part of the chunk it failed on.
    pub batch: crate::stage::BatchInfo,
    /// It panicked (`error` holds the panic message).
    pub panicked: bool,
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
        /// Chunks the worker processes at once (its `--threads`); the
        /// coordinator clamps it to `1..=`[`MAX_WORKER_THREADS`].
        threads: u32,
        /// Directories (canonical, absolute) the worker reads chunks from
        /// itself (`--allow-read`): a chunk cut as ranges of files under
        /// one of them is sent as `ChunkInFiles`, any other as bytes.
        allowed_roots: Vec<String>,
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
        /// Records per batch: a worker decodes a larger chunk in parts of
        /// at most this many records, or fewer where the source's decoder
        /// caps them (see [`ChunkDecoder::batch_records`](crate::ChunkDecoder::batch_records)).
        batch_size: u64,
        /// Fold the chunks, from the second on, into one partial the
        /// worker keeps (sent to a worker of one thread, for a fold that
        /// commutes): a chunk so folded is answered with `ChunkHeld`, and
        /// the partial held goes back as `Held` when the coordinator sends
        /// `Flush` or `Unhold` (see `docs/protocol.md`, "Held partials").
        hold: bool,
    },
    /// A chunk of input: one encoded source batch.
    Chunk {
        /// Sequence number, from 0, in input order.
        seq: u64,
        /// 1-based number of its first record.
        first_line: u64,
        /// Number of records; 0 when the coordinator cut the chunk by bytes
        /// and did not count them: the worker counts them itself, numbers
        /// them from `first_line` (then 1) and says how many in
        /// [`ChunkStats::records`], and the coordinator moves the partial's
        /// record numbers to their place when it merges it.
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
        /// What went wrong (the user code's message when `failure` is set).
        error: String,
        /// The stage it failed in and on which part of the chunk, when it
        /// reached one.
        failure: Option<ChunkFailure>,
    },
    /// "Still alive", both ways.
    Heartbeat,
    /// No more work: close the connection.
    Shutdown,
    /// A chunk given by reference: its payload is the bytes of `ranges`
    /// (see [`read_ranges`](crate::file_range::read_ranges)), which the
    /// worker reads itself. Sent only for files under a root the worker
    /// announced in its `Hello`; the worker checks each path against its
    /// own roots again before reading
    /// ([`AllowedRoots`](crate::file_range::AllowedRoots)).
    ChunkInFiles {
        /// Sequence number, from 0, in input order.
        seq: u64,
        /// 1-based number of its first record.
        first_line: u64,
        /// Number of records; 0 when the coordinator cut the chunk by bytes
        /// and did not count them: the worker counts them itself, numbers
        /// them from `first_line` (then 1) and says how many in
        /// [`ChunkStats::records`], and the coordinator moves the partial's
        /// record numbers to their place when it merges it.
        records: u64,
        /// Where the payload's bytes are.
        ranges: Vec<crate::file_range::FileRange>,
    },
    /// The coordinator cannot take this connection now (too many in the
    /// handshake): sent instead of the challenge, before the connection is
    /// closed. The worker says why and connects again after a while.
    Busy {
        /// The least time to wait before connecting again, in milliseconds.
        retry_after_ms: u64,
        /// Why, for the worker's log.
        reason: String,
    },
    /// A `ChunkInFiles` the worker could not read (refused by its roots,
    /// cannot open, missing, changed, a read error): not a failure of the
    /// chunk's data. The coordinator sends the chunk's bytes instead, and
    /// sends every later chunk of `input` to this worker as bytes.
    ChunkUnreadable {
        /// The chunk's sequence number.
        seq: u64,
        /// The file it could not read, as the chunk's ranges name it.
        input: String,
        /// Why (the operating system's error among it).
        reason: String,
    },
    /// Coordinator → a worker that holds its partial: send it now (every
    /// chunk sent before this one is answered first), and start a new one.
    Flush,
    /// A holding worker's partial, after `Flush`.
    Held {
        /// The chunks whose records it holds, in the order they were run.
        seqs: Vec<u64>,
        /// The partial, encoded by the aggregate.
        #[serde(with = "serde_bytes")]
        partial: Vec<u8>,
    },
    /// Worker → coordinator, told to `hold`: chunk `seq` is done and its
    /// records are in the partial the worker holds (sent as `Held`).
    ChunkHeld {
        /// The chunk's sequence number.
        seq: u64,
        /// What processing it cost, as for `ChunkDone`.
        stats: ChunkStats,
    },
    /// Coordinator → a worker told to `hold`: holding does not pay for
    /// this job (its partials hardly overlap); send what you hold as
    /// `Held` (after every chunk sent before this), then answer each chunk
    /// with its own partial.
    Unhold,
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
            Message::Busy { .. } => "Busy",
            Message::ChunkUnreadable { .. } => "ChunkUnreadable",
            Message::Flush => "Flush",
            Message::Held { .. } => "Held",
            Message::ChunkHeld { .. } => "ChunkHeld",
            Message::Unhold => "Unhold",
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
    #[error(
        "the peer speaks protocol version {got}, this build speaks {PROTOCOL_VERSION}: \
         run the same parpipe version on the coordinator and the workers"
    )]
    Version {
        /// The peer's version.
        got: u32,
    },
    /// The peer's proof did not verify (wrong token).
    #[error("authentication failed (wrong token?)")]
    Auth,
    /// A frame after the handshake whose tag does not verify: altered,
    /// replayed, reordered, dropped or reflected on the way, or not sent
    /// by this session's peer.
    #[error(
        "frame {frame} after the handshake failed its integrity check (its MAC does not \
         verify: altered, replayed, reordered or dropped on the way, or not from this \
         session's peer)"
    )]
    Integrity {
        /// The frame's number in its direction, from 0 after the handshake.
        frame: u64,
    },
    /// The peer did not answer in time.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The coordinator refused the connection for now (`Message::Busy`).
    #[error("the coordinator is busy ({reason}); retry after {retry_after_ms} ms")]
    Busy {
        /// The least time to wait before connecting again, in milliseconds.
        retry_after_ms: u64,
        /// Why.
        reason: String,
    },
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
