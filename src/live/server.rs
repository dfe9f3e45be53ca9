//! The dashboard's HTTP server: actix-web on the run's own actix System,
//! serving `/` (the page), `/metrics` (Prometheus), `/api/status` (JSON)
//! and `/api/events` (the same JSON as server-sent events, one per
//! publication, at most one every [`EVENT_SPACING`]) from a [`LiveBoard`].
//!
//! Access: on a loopback address anyone on the machine may read it, as
//! with `--listen`. On any other address the job's token is required, as
//! `Authorization: Bearer TOKEN` (what a Prometheus `authorization`
//! block sends) or `?token=TOKEN` (what a browser can carry; the page
//! passes it on to its own requests).
//!
//! Every route answers `GET` and `HEAD` (the same headers, no body).
//! Connections are capped per class (`limits.rs`): strangers and
//! unfinished requests, authorised connections and event streams cannot
//! take each other's places. A request head must arrive within
//! [`REQUEST_TIMEOUT`]; an idle connection is closed after
//! [`KEEP_ALIVE`]; a refused request closes its connection.

use super::limits::{Connection, Limits, StreamProgress};
use super::prometheus::{self, Format};
use super::{DashboardError, LiveBoard, LiveStatus};
use crate::protocol::Token;
use actix_web::http::{header, Method};
use actix_web::{guard, web, App, HttpRequest, HttpResponse, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Shortest time between two events of one `/api/events` stream: a
/// workload may change the board at every batch, and a reader needs no
/// more than a few updates a second.
const EVENT_SPACING: std::time::Duration = std::time::Duration::from_millis(250);

/// The page, with its CSS and JS inline.
const PAGE: &str = include_str!("page.html");

/// Connections the server holds at once, all classes together; more wait
/// in the backlog. Unproven ones are capped far below it
/// ([`super::limits::MAX_UNPROVEN`]), so the rest is left to authorised
/// clients.
const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's head after connecting.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// An idle keep-alive connection is closed after this long.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(5);

struct State {
    board: LiveBoard,
    registry: prometheus_client::registry::Registry,
    /// Required on non-loopback addresses.
    token: Option<Token>,
    limits: Limits,
}

/// A running dashboard server. [`stop`](Self::stop) it when the run ends
/// (dropping it stops it too, without waiting).
pub struct Dashboard {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Dashboard {
    /// Binds `addr` and starts serving `board`. Must be called from inside
    /// an actix `System` (the run's own). On a non-loopback address the
    /// token is required and checked on every request; on loopback it is
    /// not asked for.
    pub fn start(
        addr: &str,
        board: LiveBoard,
        token: Option<Token>,
    ) -> Result<Self, DashboardError> {
        let parsed = super::check_dashboard_address(addr, token.as_ref())?;
        let token = if parsed.ip().is_loopback() {
            None
        } else {
            token
        };
        let limits = Limits::new();
        let state = web::Data::new(State {
            registry: prometheus::registry(board.clone()),
            board,
            token,
            limits: limits.clone(),
        });
        let server = HttpServer::new(move || {
            let read = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
            App::new()
                .app_data(state.clone())
                .service(web::resource("/").route(read().to(page)))
                .service(web::resource("/metrics").route(read().to(metrics)))
                .service(web::resource("/api/status").route(read().to(status)))
                .service(web::resource("/api/events").route(read().to(events)))
        })
        .on_connect(move |conn, data| {
            if let Some(socket) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                if let Some(c) = limits.accepted(socket) {
                    data.insert(c);
                }
            }
        })
        .workers(1)
        .max_connections(MAX_CONNECTIONS)
        .client_request_timeout(REQUEST_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(parsed)
        .map_err(|error| DashboardError::Bind {
            addr: parsed,
            error,
        })?;
        let bound = server.addrs().first().copied().unwrap_or(parsed);
        let running = server.run();
        let handle = running.handle();
        actix::spawn(async move {
            if let Err(e) = running.await {
                tracing::warn!("dashboard server stopped: {e}");
            }
        });
        Ok(Dashboard {
            addr: bound,
            handle,
        })
    }

    /// Starts the dashboard `config.dashboard` asks for (none when unset)
    /// on the board `config.live`, made when unset, and announces its
    /// address as `config.announce_listen` says. `config.dashboard` is then
    /// cleared, so that a run with this config starts no second server:
    /// the caller stops this one (or [`linger`s](Self::linger)) after the
    /// run. Must be called from inside an actix `System`.
    pub fn start_for(config: &mut crate::RunConfig) -> Result<Option<Self>, DashboardError> {
        let Some(addr) = config.dashboard.take() else {
            return Ok(None);
        };
        let board = config.live.get_or_insert_with(LiveBoard::new).clone();
        let dash = Dashboard::start(&addr, board, config.token.clone())?;
        if config.announce_listen {
            // The machine-readable line scripts and tests wait for.
            eprintln!("parpipe: dashboard on http://{}", dash.addr());
        } else {
            tracing::info!(addr = %dash.addr(), "dashboard");
        }
        Ok(Some(dash))
    }

    /// The address it is bound to (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server, letting requests in progress finish (up to a second).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }

    /// Keeps serving for `time` (the run having ended, so that its final
    /// state can be scraped), or until SIGINT, SIGTERM or SIGHUP comes,
    /// whichever is first; then stops. Returns whether a signal ended it.
    pub async fn linger(self, time: Duration) -> bool {
        use tokio::signal::unix::{signal, SignalKind};
        let signalled = if time.is_zero() {
            false
        } else {
            let kinds = [
                SignalKind::interrupt(),
                SignalKind::terminate(),
                SignalKind::hangup(),
            ];
            let mut streams: Vec<_> = kinds.into_iter().filter_map(|k| signal(k).ok()).collect();
            if streams.is_empty() {
                tokio::time::sleep(time).await;
                false
            } else {
                let any = futures_util::future::select_all(
                    streams.iter_mut().map(|s| Box::pin(s.recv())),
                );
                tokio::select! {
                    _ = tokio::time::sleep(time) => false,
                    _ = any => true,
                }
            }
        };
        self.stop().await;
        signalled
    }
}

/// Constant-time equality, so that the token cannot be guessed byte by byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(req: &HttpRequest, state: &State) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    let expected = token.expose();
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        if let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") {
            return same_secret(given, expected);
        }
    }
    req.query_string()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("token="))
        .any(|given| same_secret(given.as_bytes(), expected))
}

fn refused() -> HttpResponse {
    // The connection closes: a stranger keeps no place after its answer.
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .force_close()
        .body(
            "this dashboard needs the job's token (Authorization: Bearer TOKEN or ?token=TOKEN)\n",
        )
}

/// Lets an authorised request through (its connection then leaves the
/// unproven class: `None`); any other gets the 401 to answer.
fn refusal(req: &HttpRequest, state: &State) -> Option<HttpResponse> {
    if !authorized(req, state) {
        return Some(refused());
    }
    if let Some(c) = req.conn_data::<Connection>() {
        c.proven();
    }
    None
}

async fn page(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    // Every "<" as \u003c (the same string in JSON): no "</script>" or
    // "<!--" from a log can end or confuse the script element.
    let initial = status_json(&state.board, state.board.latest()).replace('<', "\\u003c");
    let page = PAGE.replacen("/*INITIAL_STATUS*/null", &initial, 1);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page)
}

async fn status(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    let body = status_json(&state.board, state.board.latest());
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// The status as served: its keys, plus `traffic` when the workload
/// reports some (see [`super::Traffic`]).
#[derive(serde::Serialize)]
struct Served<'a> {
    #[serde(flatten)]
    status: &'a LiveStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<super::TrafficView>,
}

fn status_json(board: &LiveBoard, status: Option<LiveStatus>) -> String {
    match status {
        Some(s) => serde_json::to_string(&Served {
            status: &s,
            traffic: board.traffic(),
        })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        None => "{\"running\":true,\"starting\":true}".to_string(),
    }
}

/// Server-sent events: the status at once, then at every publication,
/// until the final one (the stream then ends, so that stopping the server
/// waits for no one, and a page sees the final state however the run ends).
///
/// At most [`super::limits::MAX_STREAMS`] streams at once (more get 503);
/// a stream whose reader stops taking events is closed (see `limits.rs`).
async fn events(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    let mut ok = HttpResponse::Ok();
    ok.content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if req.method() == Method::HEAD {
        // The same headers as a stream, and no stream to keep going.
        let none = futures_util::stream::empty::<Result<web::Bytes, std::convert::Infallible>>();
        return ok.streaming(none);
    }
    let Ok(permit) = state.limits.streams.clone().try_acquire_owned() else {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .body("too many event streams; poll /api/status instead\n");
    };
    let progress = Arc::new(StreamProgress::default());
    if let Some(c) = req.conn_data::<Connection>() {
        c.watch_stream(&progress);
    }
    let board = state.board.clone();
    let mut changes = board.subscribe();
    changes.mark_changed();
    let start = (changes, permit, progress, None::<tokio::time::Instant>);
    let stream = futures_util::stream::unfold(Some(start), move |held| {
        let board = board.clone();
        async move {
            let (mut changes, permit, progress, last) = held?;
            // Asked for the next event: the last one was written out.
            progress.polled();
            // However often the board changes, a stream carries at most
            // one event per EVENT_SPACING, with the latest status.
            if let Some(last) = last {
                tokio::time::sleep_until(last + EVENT_SPACING).await;
            }
            // An error means the board is gone: the stream ends.
            changes.changed().await.ok()?;
            let latest = board.latest();
            let done = latest.as_ref().is_some_and(|s| !s.running);
            let event = format!("data: {}\n\n", status_json(&board, latest));
            progress.handed();
            let sent = Some(tokio::time::Instant::now());
            let next = (!done).then_some((changes, permit, progress, sent));
            Some((
                Ok::<_, std::convert::Infallible>(web::Bytes::from(event)),
                next,
            ))
        }
    });
    ok.streaming(stream)
}

/// The exposition in the format the `Accept` header prefers
/// (OpenMetrics or text 0.0.4; see [`Format::negotiate`]).
async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match prometheus::render(&state.registry, format) {
        Ok(text) => HttpResponse::Ok()
            .content_type(format.content_type())
            .insert_header((header::VARY, "Accept"))
            .body(text),
        Err(_) => HttpResponse::InternalServerError().body("cannot encode the metrics\n"),
    }
}
