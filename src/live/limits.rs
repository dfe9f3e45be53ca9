//! What keeps the dashboard answering whoever else connects: connections
//! are sorted into classes, each with its own cap, so that no class can
//! take the places of another.
//!
//! - **Unproven** connections (every connection until a request on it was
//!   authorised: partial requests, strangers without the token): at most
//!   [`MAX_UNPROVEN`] at once. A new one past the cap evicts the *oldest*
//!   (its socket is shut down), so a flood only ever costs its own
//!   connections their places; a legitimate request, which completes in
//!   milliseconds, is served before it could become the oldest. A request
//!   head must also arrive within the server's request timeout.
//! - **Authorised** connections: no longer counted against strangers;
//!   an idle one is closed by the keep-alive timeout.
//! - **Event streams** (`/api/events`): at most [`MAX_STREAMS`] at once
//!   (more get 503 at once, and the page polls instead). Each stream
//!   writes into a small socket send buffer ([`STREAM_SEND_BUFFER`]); one
//!   whose reader has not taken an event for [`STREAM_STALL`] is shut
//!   down, freeing its place.
//!
//! Sockets are shut down through a duplicate of their descriptor taken
//! while the connection is alive and held until it ends, so the number
//! can never name another file.

use socket2::SockRef;
use std::collections::BTreeMap;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Unproven connections held at once (the oldest is evicted past it).
pub(crate) const MAX_UNPROVEN: usize = 128;
/// Event streams served at once.
pub(crate) const MAX_STREAMS: usize = 16;
/// A stream whose reader takes nothing for this long is closed.
pub(crate) const STREAM_STALL: Duration = Duration::from_secs(10);
/// Socket send buffer of an event stream's connection, in bytes (the
/// kernel doubles it): what a reader that stops reading can make the
/// server hold, beyond one event.
pub(crate) const STREAM_SEND_BUFFER: usize = 32 << 10;

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Unproven connections, oldest first.
    unproven: BTreeMap<u64, Arc<OwnedFd>>,
}

/// The connection classes of one server (shared by its workers).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    inner: Arc<Mutex<Inner>>,
    /// Places for event streams.
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
}

impl Limits {
    pub(crate) fn new() -> Self {
        Limits {
            inner: Arc::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection was accepted: it joins the unproven, evicting the
    /// oldest past the cap. `None` when its descriptor cannot be
    /// duplicated (out of descriptors): it is then shut down at once.
    pub(crate) fn accepted(&self, socket: &impl AsFd) -> Option<Connection> {
        let fd = match socket.as_fd().try_clone_to_owned() {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                tracing::warn!("dashboard: refusing a connection: {e}");
                let _ = SockRef::from(socket).shutdown(Shutdown::Both);
                return None;
            }
        };
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        inner.unproven.insert(id, fd.clone());
        while inner.unproven.len() > MAX_UNPROVEN {
            if let Some((_, oldest)) = inner.unproven.pop_first() {
                let _ = SockRef::from(&*oldest).shutdown(Shutdown::Both);
            }
        }
        drop(inner);
        Some(Connection {
            id,
            fd,
            limits: self.clone(),
        })
    }
}

/// One accepted connection (kept in the connection's data: dropped when
/// it closes).
#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
    fd: Arc<OwnedFd>,
    limits: Limits,
}

impl Connection {
    /// A request on it was authorised: it leaves the unproven class.
    pub(crate) fn proven(&self) {
        self.limits.lock().unproven.remove(&self.id);
    }

    /// Shrinks its send buffer and watches `stall` (an event stream's
    /// state): once the reader has left an event untaken for
    /// [`STREAM_STALL`], the socket is shut down. The watch ends with the
    /// stream.
    pub(crate) fn watch_stream(&self, stall: &Arc<StreamProgress>) {
        let _ = SockRef::from(&*self.fd).set_send_buffer_size(STREAM_SEND_BUFFER);
        let fd = self.fd.clone();
        let stall = Arc::downgrade(stall);
        actix::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(progress) = stall.upgrade() else {
                    return;
                };
                if progress.stalled_for() >= STREAM_STALL {
                    tracing::info!("dashboard: closing an event stream whose reader stopped");
                    let _ = SockRef::from(&*fd).shutdown(Shutdown::Both);
                    return;
                }
            }
        });
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.limits.lock().unproven.remove(&self.id);
    }
}

/// Whether an event stream's reader keeps up: the server polls the stream
/// for its next event only once the previous one was written out, so an
/// event handed over and not followed by a poll is one the reader has
/// not made room for.
#[derive(Debug, Default)]
pub(crate) struct StreamProgress {
    handed: Mutex<Option<Instant>>,
}

impl StreamProgress {
    /// An event was handed to the server.
    pub(crate) fn handed(&self) {
        *self.handed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// The server asked for the next event: the previous one is out.
    pub(crate) fn polled(&self) {
        *self.handed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn stalled_for(&self) -> Duration {
        self.handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(Duration::ZERO, |t| t.elapsed())
    }
}
