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
//! - `server.rs`: the actix-web server (`Dashboard`), access control.
//! - `publisher.rs`: what each mode holds to publish its numbers.
//! - `prometheus.rs`: the `/metrics` exposition (prometheus-client).
//! - `page.html`: the page, with its CSS and JS inline (no external assets).
//!
//! The server and the exposition need the `dashboard` feature (on with
//! `cli`); the status and its publishing are always there.

#[cfg(feature = "dashboard")]
mod prometheus;
pub(crate) mod publisher;
#[cfg(feature = "dashboard")]
mod server;
mod status;

#[cfg(feature = "dashboard")]
pub use server::{check_address as check_dashboard_address, Dashboard, DashboardError};
pub use status::{LiveBoard, LiveStatus, QueueFill, RatePoint, WorkerLiveness};

#[cfg(all(test, feature = "dashboard"))]
mod tests;
