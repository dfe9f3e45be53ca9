//! The live view of a run: what a run publishes while it goes on
//! ([`LiveStatus`], through a [`LiveBoard`]), and the dashboard server that
//! shows it (`Dashboard`): a self-contained page at `/`, Prometheus
//! metrics at `/metrics`, and the status as JSON at `/api/status`.
//!
//! The engine (any mode) publishes a fresh [`LiveStatus`] a few times a
//! second; every request reads the latest one. The server never waits on
//! the pipeline and the pipeline never waits on the server: publishing is
//! one short lock, and a scrape or a page load costs the run nothing else.
//!
//! - `status.rs`: [`LiveStatus`] and its parts, [`LiveBoard`].
//! - `traffic.rs`: [`Traffic`], what a workload shows in the traffic
//!   panels (the `logs` sink sets it), and its rate history.
//! - `server.rs`: the actix-web server (`Dashboard`), access control,
//!   lingering after the run.
//! - `limits.rs`: connection classes and their caps, so that no one can
//!   lock the dashboard out.
//! - `publisher.rs`: what each mode holds to publish its numbers.
//! - `prometheus.rs`, `prometheus/`: the `/metrics` exposition
//!   (prometheus-client).
//! - `page.html`: the page, with its CSS and JS inline (no external assets).

#[cfg(feature = "dashboard")]
mod limits;
#[cfg(feature = "dashboard")]
mod prometheus;
pub(crate) mod publisher;
#[cfg(feature = "dashboard")]
mod server;
mod status;
mod traffic;

#[cfg(feature = "dashboard")]
pub use server::Dashboard;
pub use status::{LiveBoard, LiveStatus, QueueFill, RatePoint, WorkerLiveness};
pub use traffic::{
    cut_text, LatencyHistogram, Traffic, TrafficPoint, TrafficView, LATENCY_BOUNDS_US,
    TRAFFIC_HISTORY, TRAFFIC_HOURS, TRAFFIC_PATHS, TRAFFIC_TEXT_BYTES,
};

use crate::protocol::Token;
use std::net::SocketAddr;

/// A worker's name in metrics: `HOST/PID`. The host is this machine's
/// name for a worker on it, else the address it connects from (`peer`,
/// `IP:PORT`, without the port); PID is what its hello announced.
pub(crate) fn worker_name(peer: &str, same_host: bool, pid: u64) -> String {
    let host = if same_host {
        sysinfo::System::host_name().filter(|h| !h.is_empty())
    } else {
        None
    };
    let host = host.unwrap_or_else(|| {
        peer.parse::<SocketAddr>()
            .map_or_else(|_| peer.to_string(), |a| a.ip().to_string())
    });
    format!("{host}/{pid}")
}

/// Writes the board's latest status as Prometheus text (format 0.0.4)
/// to `path`, atomically (a temporary file renamed into place), for
/// node_exporter's textfile collector: the final metrics of a run that
/// has ended. The `process_*` families are left out (node_exporter has
/// its own, and the process is gone).
pub fn write_metrics_file(board: &LiveBoard, path: &std::path::Path) -> Result<(), String> {
    #[cfg(feature = "dashboard")]
    {
        let text =
            prometheus::final_text(board).map_err(|_| "cannot encode the metrics".to_string())?;
        crate::outputs::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "dashboard"))]
    {
        let _ = (board, path);
        Err(DashboardError::NotBuilt.to_string())
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The address is not `IP:PORT`.
    #[error("--dashboard '{addr}' is not an IP:PORT address: {error}")]
    BadAddress {
        /// What was given.
        addr: String,
        /// Why it does not parse.
        error: std::net::AddrParseError,
    },
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the dashboard on non-loopback address {0} without a token \
         (give --token-file FILE or set PARPIPE_TOKEN)"
    )]
    NeedsToken(SocketAddr),
    /// Binding failed (address in use, no permission, …).
    #[error("cannot serve the dashboard on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        error: std::io::Error,
    },
    /// This build has no dashboard server.
    #[error("this build of parpipe has no dashboard (build it with the `dashboard` feature)")]
    NotBuilt,
}

/// Checks that `addr` may be served with `token` (a non-loopback address
/// needs one), and parses it.
pub fn check_dashboard_address(
    addr: &str,
    token: Option<&Token>,
) -> Result<SocketAddr, DashboardError> {
    if !cfg!(feature = "dashboard") {
        return Err(DashboardError::NotBuilt);
    }
    let parsed: SocketAddr = addr.parse().map_err(|error| DashboardError::BadAddress {
        addr: addr.to_string(),
        error,
    })?;
    if !parsed.ip().is_loopback() && token.is_none() {
        return Err(DashboardError::NeedsToken(parsed));
    }
    Ok(parsed)
}

#[cfg(all(test, feature = "dashboard"))]
mod tests;
