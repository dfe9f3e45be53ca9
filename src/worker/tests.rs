//! `WorkerConfig::from_args`, the worker arguments of an embedding
//! application: numeric values outside their range are refused with the
//! flag and the range named, as the `parpipe worker` command does.

use super::WorkerConfig;

fn refused(extra: &[&str]) -> String {
    let mut args = vec!["--connect", "127.0.0.1:7070"];
    args.extend_from_slice(extra);
    match WorkerConfig::from_args(&args) {
        Ok(_) => panic!("{extra:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn max_frame_is_held_to_what_a_frame_length_can_say() {
    for bad in [
        "4294967296",
        "18446744073709551615",
        "1023",
        "0",
        "-1",
        "many",
    ] {
        let e = refused(&["--max-frame", bad]);
        assert!(
            e.contains("--max-frame") && e.contains("from 1024 to 4294967295"),
            "{bad}: {e}"
        );
    }
    for (good, want) in [("1024", 1024), ("4294967295", u32::MAX as usize)] {
        let args = ["--connect", "127.0.0.1:7070", "--max-frame", good];
        let config = WorkerConfig::from_args(args).expect("in range");
        assert_eq!(config.max_frame, want);
    }
}

#[test]
fn threads_out_of_range_name_the_range() {
    for bad in ["0", "257", "18446744073709551615"] {
        let e = refused(&["--threads", bad]);
        assert!(
            e.contains("--threads") && e.contains("from 1 to 256"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn done_if_refused_is_parsed_and_excludes_keep_alive() {
    let args = ["--connect", "127.0.0.1:7070", "--done-if-refused"];
    assert!(WorkerConfig::from_args(args).unwrap().done_if_refused);
    let e = refused(&["--done-if-refused", "--keep-alive"]);
    assert!(e.contains("exclude each other"), "{e}");
}

/// A port nothing listens on: bound, read, released.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_refused_connection_ends_the_worker_cleanly_only_when_asked() {
    let registry = crate::pipeline::Registry::new();
    let mut config = WorkerConfig::from_args(["--connect", &closed_port()]).unwrap();
    config.connect_timeout = Some(std::time::Duration::from_millis(200));
    let e = super::run_worker(&registry, &config).expect_err("nothing listens");
    assert!(
        e.to_string().contains("cannot connect to coordinator"),
        "{e}"
    );
    config.done_if_refused = true;
    // Refused, so done: success rather than retrying until the timeout.
    config.connect_timeout = Some(std::time::Duration::from_secs(60));
    super::run_worker(&registry, &config).expect("a finished job is no failure");
}
