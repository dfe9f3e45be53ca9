//! A program whose `main` forgets `parpipe::worker::dispatch_if_worker`:
//! this test binary is one (no test harness: its `main` is the program).
//! Started by the test, it runs a multiprocess job whose local workers are
//! this very binary; each of them, never dispatched, would run `main`
//! again, start a coordinator and spawn workers of its own. Instead each
//! must exit at once naming `dispatch_if_worker`, and the run fail with
//! that message long before its worker wait would run out.

use parpipe::workloads::matrix::{self, MatrixParams};
use parpipe::{ErrorKind, JobSpec, Mode, RunConfig, WorkerCommand};
use std::time::Duration;

fn main() {
    // A worker of the run below lands here too: that is the bug this test
    // is about, and the library must end it before the run starts.
    let spawned = std::env::args().nth(1).as_deref() == Some("worker");
    let out = tempfile::tempdir().unwrap();
    let params = MatrixParams {
        tasks: 64,
        n: 16,
        seed: 1,
        out_dir: out.path().to_path_buf(),
    };
    let job = JobSpec::new(matrix::NAME, &params).unwrap();
    // Far longer than the test may take: a run that waited for its
    // workers would end with `NoWorkers`, not the `Config` error below.
    let wait = Duration::from_secs(120);
    let config = RunConfig {
        mode: Mode::Multiprocess,
        workers: Some(2),
        worker_wait_timeout: wait,
        worker_command: WorkerCommand::current_exe().ok(),
        ..RunConfig::default()
    };
    let result = parpipe::run(&parpipe::workloads::builtin_registry(), &job, &config);
    if spawned {
        // Never reached: the run exits the process first.
        eprintln!("a spawned worker went on to run a job of its own");
        std::process::exit(99);
    }
    let error = match result {
        Ok(_) => panic!("the run succeeded, though its workers never dispatched"),
        Err(e) => e,
    };
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Config, "{text}");
    assert!(text.contains("dispatch_if_worker"), "{text}");
    assert!(text.contains("exited at once"), "{text}");
    println!("test a_worker_that_never_dispatches_fails_the_run_at_once ... ok");
}
