//! Child processes of a test: their stderr read line by line (to await a
//! line rather than sleep), and a child that is killed and reaped when
//! dropped, even when the test fails.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any awaited line or exit may take: generous, for a loaded
/// machine; a test that meets it has hung.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// A process's stderr, line by line, and all of it.
pub struct Log {
    lines: mpsc::Receiver<String>,
    all: Arc<Mutex<String>>,
}

impl Log {
    /// Takes `child`'s stderr (it must be piped) and reads it on a thread.
    pub fn collect(child: &mut Child) -> Log {
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        let all = Arc::new(Mutex::new(String::new()));
        let all2 = all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all2.lock().unwrap().push_str(&(line.clone() + "\n"));
                let _ = tx.send(line);
            }
        });
        Log { lines, all }
    }

    /// Waits for a line matching `pred`; panics with the log so far.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting; log:\n{}", self.text()),
            }
        }
    }

    /// Waits for what is left once the process has ended (until its
    /// stderr closes, or 2 s pass without a line).
    pub fn drain(&self) {
        while self.lines.recv_timeout(Duration::from_secs(2)).is_ok() {}
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.all.lock().unwrap().clone()
    }
}

/// A child killed and reaped when dropped, even when the test fails.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Waits for the exit (at most [`TIMEOUT`]) and returns its code.
    pub fn wait(&mut self) -> Option<i32> {
        self.wait_or(String::new)
    }

    /// [`wait`](Self::wait), showing `log` if the process does not exit.
    pub fn wait_with(&mut self, log: &Log) -> Option<i32> {
        self.wait_or(|| format!("; log:\n{}", log.text()))
    }

    fn wait_or(&mut self, context: impl Fn() -> String) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit{}",
                context()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
