//! The dashboard's HTTP server: actix-web on the run's own actix System,
//! serving `/` (the page), `/metrics` (Prometheus), `/api/status` (JSON)
//! and `/api/events` (the same JSON as server-sent events, one per
//! publication) from a [`LiveBoard`].
//!
//! Access: on a loopback address anyone on the machine may read it, as
//! with `--listen`. On any other address the job's token is required, as
//! `Authorization: Bearer TOKEN` (what a Prometheus `authorization`
//! block sends) or `?token=TOKEN` (what a browser can carry; the page
//! passes it on to its own requests).

use super::prometheus;
use super::{DashboardError, LiveBoard, LiveStatus};
use crate::protocol::Token;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::net::SocketAddr;

/// The page, with its CSS and JS inline.
const PAGE: &str = include_str!("page.html");

/// Connections the server holds at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 64;

struct State {
    board: LiveBoard,
    registry: prometheus_client::registry::Registry,
    /// Required on non-loopback addresses.
    token: Option<Token>,
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
        let state = web::Data::new(State {
            registry: prometheus::registry(board.clone()),
            board,
            token,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/", web::get().to(page))
                .route("/metrics", web::get().to(metrics))
                .route("/api/status", web::get().to(status))
                .route("/api/events", web::get().to(events))
        })
        .workers(1)
        .max_connections(MAX_CONNECTIONS)
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

    /// The address it is bound to (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server, letting requests in progress finish (up to a second).
    pub async fn stop(self) {
        self.handle.stop(true).await;
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
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .body(
            "this dashboard needs the job's token (Authorization: Bearer TOKEN or ?token=TOKEN)\n",
        )
}

async fn page(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorized(&req, &state) {
        return refused();
    }
    // "</" would end the script element early; "<\/" is the same string in JS.
    let initial = status_json(state.board.latest()).replace("</", "<\\/");
    let page = PAGE.replacen("/*INITIAL_STATUS*/null", &initial, 1);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page)
}

async fn status(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorized(&req, &state) {
        return refused();
    }
    let body = status_json(state.board.latest());
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn status_json(status: Option<LiveStatus>) -> String {
    match status {
        Some(s) => serde_json::to_string(&s).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        None => "{\"running\":true,\"starting\":true}".to_string(),
    }
}

/// Server-sent events: the status at once, then at every publication,
/// until the final one (the stream then ends, so that stopping the server
/// waits for no one, and a page sees the final state however the run ends).
async fn events(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorized(&req, &state) {
        return refused();
    }
    let board = state.board.clone();
    let mut changes = board.subscribe();
    changes.mark_changed();
    let stream = futures_util::stream::unfold(Some(changes), move |changes| {
        let board = board.clone();
        async move {
            let mut changes = changes?;
            // An error means the board is gone: the stream ends.
            changes.changed().await.ok()?;
            let latest = board.latest();
            let done = latest.as_ref().is_some_and(|s| !s.running);
            let event = format!("data: {}\n\n", status_json(latest));
            let next = (!done).then_some(changes);
            Some((
                Ok::<_, std::convert::Infallible>(web::Bytes::from(event)),
                next,
            ))
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(stream)
}

async fn metrics(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorized(&req, &state) {
        return refused();
    }
    match prometheus::render(&state.registry) {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().body("cannot encode the metrics\n"),
    }
}
