//! Reaching the coordinator: the connection attempts, retried with a
//! growing delay up to a timeout, and the backoff before coming back to a
//! coordinator that said it is busy.

use super::WorkerConfig;
use crate::error::RunError;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Longest wait between two connection attempts.
pub(super) const MAX_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Longest wait before connecting again to a coordinator that said it is
/// busy.
const MAX_BUSY_DELAY: Duration = Duration::from_secs(5);

/// The waits before connecting again to a busy coordinator: what it
/// asks, doubled at each refusal in a row up to [`MAX_BUSY_DELAY`], plus
/// up to half as much again at random, so that refused workers do not all
/// come back at once.
#[derive(Default)]
pub(super) struct Backoff {
    refusals: u32,
}

impl Backoff {
    pub(super) fn next(&mut self, asked: Duration) -> Duration {
        let base = asked
            .max(Duration::from_millis(50))
            .saturating_mul(1 << self.refusals.min(8))
            .min(MAX_BUSY_DELAY);
        self.refusals += 1;
        let random = crate::protocol::random_bytes(2);
        let jitter = u32::from(u16::from_le_bytes([random[0], random[1]]));
        base + base / 2 * jitter / u32::from(u16::MAX)
    }
}

/// Connects to the coordinator, retrying with a growing delay for up to
/// `timeout` (`None`: forever); `None` when it refused and
/// [`WorkerConfig::done_if_refused`] says that means its job is over.
pub(super) async fn connect(
    config: &WorkerConfig,
    timeout: Option<Duration>,
) -> Result<Option<TcpStream>, RunError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match TcpStream::connect(&config.connect).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(Some(s));
            }
            Err(e)
                if config.done_if_refused && e.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                return Ok(None)
            }
            Err(e) => {
                if timeout.is_some_and(|t| started.elapsed() >= t) {
                    return Err(RunError::Runtime(format!(
                        "cannot connect to coordinator {}: {e}",
                        config.connect
                    )));
                }
                tracing::debug!("connect {}: {e}; retrying", config.connect);
                tokio::time::sleep(delay).await;
                // At most 0.1 s apart: a refused connection costs both sides
                // next to nothing, and a keep-alive worker waiting for its
                // next job joins within 0.1 s of the coordinator listening
                // (with 0.5 s, short jobs finished before it came).
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}
