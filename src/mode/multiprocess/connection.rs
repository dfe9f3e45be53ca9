//! The per-worker actor: owns one authenticated socket, reads frames as a
//! stream (`add_stream(FramedRead)`), writes through actix's `FramedWrite`,
//! registers with the coordinator in `started` and deregisters in
//! `stopping`, exchanges heartbeats with `run_interval`, and drops the
//! connection — with a logged reason — on any malformed, oversized or
//! unexpected frame or a missed heartbeat.

use super::coordinator::{
    ChunkDoneMsg, ChunkFailedMsg, ChunkUnreadableMsg, Coordinator, Heard, HeldMsg, Joined, Left,
};
use crate::protocol::{FrameCodec, Message, Outgoing, PeerHello, ProtocolError};
use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use std::time::{Duration, Instant};

/// How often a connection tells the coordinator its worker is alive.
const HEARD_EVERY: Duration = Duration::from_millis(250);
use tokio::net::tcp::OwnedWriteHalf;

/// One connected worker.
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) peer: String,
    /// The peer connected from this machine (see [`Joined::same_host`]).
    pub(crate) same_host: bool,
    pub(crate) hello: PeerHello,
    /// It was told to hold its partial (`Job.hold`).
    pub(crate) holds: bool,
    /// `Flush`es and `Unhold`s sent and not answered with `Held` yet: a `Held`
    /// the coordinator did not ask for drops the connection.
    pub(crate) flushes: u32,
    pub(crate) coordinator: Addr<Coordinator>,
    pub(crate) writer: Option<FramedWrite<Outgoing, OwnedWriteHalf, FrameCodec>>,
    pub(crate) last_heard: Instant,
    /// When a heartbeat was last passed on to the coordinator (for the
    /// live view's "last heard"; at most every [`HEARD_EVERY`]).
    pub(crate) heard_forwarded: Option<Instant>,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) closing: bool,
    pub(crate) reason: Option<String>,
}

/// Send this pre-encoded chunk frame.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SendFrame(pub(crate) bytes::Bytes);

/// Ask the worker for the partial it holds: `Flush`, or `Unhold` when it
/// is to hold no more after it. Either is answered with `Held`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AskHeld {
    pub(crate) unhold: bool,
}

/// Say `Shutdown`, half-close, and stop once the worker closes too.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Close;

impl Connection {
    /// Drops the connection, logging why.
    fn drop_with(&mut self, ctx: &mut Context<Self>, reason: String) {
        if self.reason.is_none() {
            tracing::warn!(
                peer = %self.peer,
                worker = self.id,
                "dropping worker connection: {reason}"
            );
            self.reason = Some(reason);
        }
        ctx.stop();
    }

    fn write(&mut self, item: Outgoing) {
        if let Some(w) = self.writer.as_mut() {
            w.write(item);
        }
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Bounded: one message per connection lifetime.
        self.coordinator.do_send(Joined {
            id: self.id,
            addr: ctx.address(),
            peer: self.peer.clone(),
            same_host: self.same_host,
            hello: self.hello.clone(),
            holds: self.holds,
        });
        let every = (self.heartbeat_timeout / 4).max(Duration::from_millis(25));
        ctx.run_interval(every, |act, ctx| {
            if act.last_heard.elapsed() > act.heartbeat_timeout {
                let reason = format!("missed heartbeats for {:?}", act.heartbeat_timeout);
                act.drop_with(ctx, reason);
            } else if !act.closing {
                act.write(Outgoing::Message(Message::Heartbeat));
            }
        });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        // Bounded: one message per connection lifetime.
        self.coordinator.do_send(Left {
            id: self.id,
            reason: self
                .reason
                .clone()
                .unwrap_or_else(|| "connection closed".to_string()),
        });
        Running::Stop
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for Connection {
    fn handle(&mut self, item: Result<Message, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match item {
            // Bounded: passed on at most every HEARD_EVERY, however fast a
            // peer sends heartbeats.
            Ok(Message::Heartbeat) => {
                if self
                    .heard_forwarded
                    .is_none_or(|t| t.elapsed() >= HEARD_EVERY)
                {
                    self.heard_forwarded = Some(Instant::now());
                    self.coordinator.do_send(Heard { id: self.id });
                }
            }
            // Bounded by credits: a worker answers only the chunks it was sent
            // (a worker answering more is a protocol error caught by the scheduler).
            Ok(Message::ChunkDone {
                seq,
                partial,
                stats,
            }) => self.coordinator.do_send(ChunkDoneMsg {
                id: self.id,
                seq,
                partial,
                stats,
                held: false,
            }),
            // Bounded by credits, as `ChunkDone`; only from a worker told
            // it may hold.
            Ok(Message::ChunkHeld { seq, stats }) if self.holds => {
                self.coordinator.do_send(ChunkDoneMsg {
                    id: self.id,
                    seq,
                    partial: Vec::new(),
                    stats,
                    held: true,
                })
            }
            Ok(Message::ChunkFailed {
                seq,
                error,
                failure,
            }) => self.coordinator.do_send(ChunkFailedMsg {
                id: self.id,
                seq,
                error,
                failure,
            }),
            Ok(Message::ChunkUnreadable { seq, input, reason }) => {
                self.coordinator.do_send(ChunkUnreadableMsg {
                    id: self.id,
                    seq,
                    input,
                    reason,
                })
            }
            // Bounded: one per `Flush` or `Unhold` this connection sent.
            Ok(Message::Held { seqs, partial }) if self.flushes > 0 => {
                self.flushes -= 1;
                self.coordinator.do_send(HeldMsg {
                    id: self.id,
                    seqs,
                    partial,
                })
            }
            Ok(other) => self.drop_with(ctx, format!("unexpected {} message", other.kind())),
            Err(e) => self.drop_with(ctx, e.to_string()),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            self.reason.get_or_insert_with(|| "shut down".to_string());
            ctx.stop();
        } else {
            self.drop_with(ctx, "the worker closed the connection".to_string());
        }
    }
}

impl WriteHandler<ProtocolError> for Connection {
    fn error(&mut self, err: ProtocolError, ctx: &mut Context<Self>) -> Running {
        self.drop_with(ctx, format!("write failed: {err}"));
        Running::Stop
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The writer closed after `Close`: dropping it (on the next turn: it
        // is borrowed right now) shuts down our write half, a clean
        // half-close; we stop when the worker closes its side.
        ctx.run_later(Duration::ZERO, |act, _| act.writer = None);
    }
}

impl Handler<SendFrame> for Connection {
    type Result = ();

    fn handle(&mut self, msg: SendFrame, _ctx: &mut Context<Self>) {
        self.write(Outgoing::Frame(msg.0));
    }
}

impl Handler<AskHeld> for Connection {
    type Result = ();

    fn handle(&mut self, ask: AskHeld, _ctx: &mut Context<Self>) {
        if self.closing || !self.holds {
            return;
        }
        self.flushes += 1;
        let msg = match ask.unhold {
            true => Message::Unhold,
            false => Message::Flush,
        };
        self.write(Outgoing::Message(msg));
    }
}

impl Handler<Close> for Connection {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.write(Outgoing::Message(Message::Shutdown));
        if let Some(w) = self.writer.as_mut() {
            w.close();
        }
        // A worker that never closes its side is cut off after a grace period.
        ctx.run_later(Duration::from_secs(2), |act, ctx| {
            act.reason
                .get_or_insert_with(|| "shut down (timeout)".to_string());
            ctx.stop();
        });
    }
}
