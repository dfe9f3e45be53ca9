//! A small run of `docs/cluster-sim.sh`: a coordinator host and two worker
//! hosts in network namespaces on a bridge, links shaped to 100 Mbit/s,
//! one job with shipped bytes and one with shared-input ranges. Checks
//! both outputs are byte-identical to serial mode and that reading the
//! shared input cuts the bytes over the coordinator's link. Needs root
//! and iproute2; prints SKIPPED plainly otherwise. (No timing asserted.)

use std::path::Path;
use std::process::Command;

/// Why namespaces cannot be made here, if they cannot.
fn cannot_make_namespaces() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let probe = format!("pp-probe-{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(out) if out.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            let tc = Command::new("tc").arg("-V").output();
            tc.is_err().then(|| "no tc".into())
        }
        Ok(out) => Some(format!(
            "ip netns add failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no ip command: {e}")),
    }
}

/// The coordinator link's bytes on the report line of `label`.
fn coordinator_bytes(stdout: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{stdout}"));
    assert!(line.contains("outputs identical to serial"), "{line}");
    let after = line.split("coordinator link ").nth(1).expect("link bytes");
    after.split(' ').next().unwrap().parse().expect("a count")
}

#[test]
fn a_simulated_cluster_gives_serial_outputs_and_ranges_spare_the_coordinators_link() {
    if let Some(why) = cannot_make_namespaces() {
        println!("SKIPPED: cannot make network namespaces ({why})");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cluster-sim.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("LINES", "20000")
        .env("RATES", "100mbit")
        .env("WORKERS", "2")
        .env("BIN", env!("CARGO_BIN_EXE_parpipe"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("links at 100mbit:"), "{stdout}");
    let shipped = coordinator_bytes(&stdout, "shipped");
    let ranges = coordinator_bytes(&stdout, "ranges");
    // 20 000 lines are ~4 MB: shipped, all of it crosses the link.
    assert!(shipped > 3_000_000, "{stdout}");
    assert!(ranges * 5 < shipped, "{stdout}");
    println!("{stdout}");
}
