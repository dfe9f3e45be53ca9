//! `deploy/slurm/parpipe.sbatch` run as a user runs it, on a real Slurm
//! cluster of one machine: Debian's `slurm-wlm` and `munge`, their daemons
//! started here (munged, slurmctld, and two slurmd as nodes `n1` and `n2`
//! on ports of their own), configured in a temporary directory, no
//! systemd. Three jobs on a 2,000-line input (one chunk: the second worker
//! often arrives after the work is done), a fourth whose second worker is
//! held back until the job's outputs exist, and one on a 1 M-line input, each
//! `sbatch --nodes=2 parpipe.sbatch INPUT OUT_DIR` with `parpipe` found on
//! `PATH` and the token from `TOKEN`. Every job must end COMPLETED with no
//! worker failing and `summary.json` byte-identical to serial mode's; the
//! set-up time and each job's state, run time and workers are printed.
//! Needs root and the two packages; says SKIPPED otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the cluster to come up or for all jobs to end.
const DEADLINE: Duration = Duration::from_secs(300);
/// How often the daemons' and jobs' states are asked for: they announce
/// nothing, so they are polled.
const POLL: Duration = Duration::from_millis(100);

/// The programs the cluster needs, with their Debian package.
const PROGRAMS: [(&str, &str); 8] = [
    ("munged", "munge"),
    ("slurmctld", "slurmctld"),
    ("slurmd", "slurmd"),
    ("sbatch", "slurm-client"),
    ("srun", "slurm-client"),
    ("scontrol", "slurm-client"),
    ("sinfo", "slurm-client"),
    ("hostname", "hostname"),
];

/// The program's path, searched on PATH and in the sbin directories
/// (where Debian puts the daemons).
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// The machine's short host name, as Slurm compares it; `None` when it
/// does not resolve (the workers reach the coordinator by it).
fn short_hostname() -> Result<String, String> {
    let out = Command::new("hostname")
        .output()
        .map_err(|e| e.to_string())?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let short = name.split('.').next().unwrap_or_default().to_string();
    use std::net::ToSocketAddrs;
    let resolves = (name.as_str(), 0)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.next().is_some());
    if resolves {
        Ok(short)
    } else {
        Err(format!("this machine's name {name:?} does not resolve"))
    }
}

/// Why this machine cannot run the cluster, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the Slurm daemons run as root)".into());
    }
    let missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|(p, _)| find(p).is_none())
        .map(|(p, pkg)| format!("{p} (package {pkg})"))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing {}; `apt-get install slurm-wlm munge` provides them",
            missing.join(", ")
        ));
    }
    short_hostname().err()
}

/// A port free right now (bound, read, released): Slurm's daemons take
/// their ports from the configuration, not from the system.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The running cluster: its directory and the daemons it started, all
/// stopped when it drops.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    munged_pid: Option<libc::pid_t>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("parpipe-slurm")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let host = short_hostname().unwrap();
        let munge = d.join("munge");
        for sub in ["munge", "state", "spool/n1", "spool/n2", "bin"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        set_mode(&munge, 0o755);
        std::fs::write(munge.join("munge.key"), random_bytes(1024)).unwrap();
        set_mode(&munge.join("munge.key"), 0o600);
        let socket = munge.join("socket");
        let conf = d.join("slurm.conf");
        let (ctld, slurmd, n1, n2) = (free_port(), free_port(), free_port(), free_port());
        let p = |sub: &str| d.join(sub).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName=parpipe-test\n\
                 SlurmctldHost={host}(127.0.0.1)\n\
                 SlurmctldPort={ctld}\n\
                 SlurmdPort={slurmd}\n\
                 AuthType=auth/munge\n\
                 CredType=cred/munge\n\
                 AuthInfo=socket={socket}\n\
                 SlurmUser=root\n\
                 SlurmdUser=root\n\
                 StateSaveLocation={state}\n\
                 SlurmdSpoolDir={spool}/%n\n\
                 SlurmctldPidFile={ctld_pid}\n\
                 SlurmdPidFile={slurmd_pid}\n\
                 SlurmctldLogFile={ctld_log}\n\
                 SlurmdLogFile={slurmd_log}\n\
                 ProctrackType=proctrack/pgid\n\
                 TaskPlugin=task/none\n\
                 SelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_CPU\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 MpiDefault=none\n\
                 ReturnToService=2\n\
                 MailProg=/bin/true\n\
                 NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={n1} CPUs=1 State=UNKNOWN\n\
                 NodeName=n2 NodeHostname={host} NodeAddr=127.0.0.1 Port={n2} CPUs=1 State=UNKNOWN\n\
                 PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP\n",
                socket = socket.display(),
                state = p("state"),
                spool = p("spool"),
                ctld_pid = p("slurmctld.pid"),
                slurmd_pid = p("slurmd-%n.pid"),
                ctld_log = p("slurmctld.log"),
                slurmd_log = p("slurmd-%n.log"),
            ),
        )
        .unwrap();
        // `parpipe` on PATH, as every node of a real cluster has it.
        // A worker of a job submitted with LATE_AFTER, on node n2, starts
        // only once that file (the job's summary.json) exists: after the
        // coordinator has stopped listening, a worker arriving late for sure.
        let shim = d.join("bin/parpipe");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n\
                 if [ \"$1\" = worker ] && [ -n \"${{LATE_AFTER:-}}\" ] && [ \"${{SLURMD_NODENAME:-}}\" = n2 ]; then\n\
                 \x20 while [ ! -e \"$LATE_AFTER\" ]; do sleep 0.05; done\n\
                 fi\n\
                 exec '{}' \"$@\"\n",
                common::bin()
            ),
        )
        .unwrap();
        set_mode(&shim, 0o755);

        let mut cluster = Cluster {
            conf,
            daemons: Vec::new(),
            munged_pid: None,
            dir,
        };
        // munged forks once it is ready: its return is the wait.
        let pid_file = munge.join("munged.pid");
        let out = Command::new(find("munged").unwrap())
            .arg("--force")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", munge.join("munge.key").display()))
            .arg(format!("--log-file={}", munge.join("munged.log").display()))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--seed-file={}", munge.join("seed").display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "munged: {}", stderr(&out));
        cluster.munged_pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        assert!(cluster.munged_pid.is_some(), "munged wrote no pid file");

        let ctld = cluster.daemon("slurmctld", &["-D", "-c"]);
        cluster.daemons.push(("slurmctld", ctld));
        for node in ["n1", "n2"] {
            let child = cluster.daemon("slurmd", &["-D", "-N", node]);
            cluster.daemons.push(("slurmd", child));
        }
        cluster.await_state("the nodes idle", |c| {
            let out = c.client("sinfo", &["-h", "-N", "-o", "%N %T"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (out.status.success()
                && text.lines().count() == 2
                && text.lines().all(|l| l.ends_with(" idle")))
            .then_some(())
        });
        cluster
    }

    /// Starts a daemon in the foreground with this cluster's configuration.
    fn daemon(&self, program: &str, args: &[&str]) -> Child {
        Command::new(find(program).unwrap())
            .arg("-f")
            .arg(&self.conf)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// Runs a Slurm client command against this cluster.
    fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(find(program).unwrap())
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// Polls `check` until it gives a value; fails with the daemons' logs
    /// after [`DEADLINE`] or when a daemon has died.
    fn await_state<T>(&mut self, what: &str, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            let dead = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| child.try_wait().unwrap().map(|st| (*name, st)));
            if let Some((name, status)) = dead {
                panic!(
                    "{name} exited ({status}) waiting for {what}\n{}",
                    self.logs()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no {what} after {DEADLINE:?}\n{}",
                self.logs()
            );
            std::thread::sleep(POLL);
        }
    }

    /// The daemons' logs, for a failure message.
    fn logs(&self) -> String {
        [
            "slurmctld.log",
            "slurmd-n1.log",
            "slurmd-n2.log",
            "munge/munged.log",
        ]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- {f}\n{}", tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Submits the recipe as a user would: `sbatch --nodes=2
    /// parpipe.sbatch INPUT OUT_DIR`, `parpipe` on PATH and `TOKEN` set.
    fn submit(&self, input: &Path, out: &Path, token: &Path, late: bool) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/parpipe.sbatch");
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(find("sbatch").unwrap())
            .arg("--parsable")
            .arg("--nodes=2")
            .arg(format!("--output={}/job-%j.out", self.dir.path().display()))
            .arg(&script)
            .arg(input)
            .arg(out)
            .env("SLURM_CONF", &self.conf)
            .env("PATH", path)
            .env("TOKEN", token)
            .env(
                "LATE_AFTER",
                if late {
                    out.join("summary.json")
                } else {
                    PathBuf::new()
                },
            )
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "sbatch: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The job's fields from `scontrol show job -o`.
    fn job(&self, id: &str) -> BTreeMap<String, String> {
        let out = self.client("scontrol", &["show", "job", "-o", id]);
        assert!(
            out.status.success(),
            "scontrol show job {id}: {}",
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in self.daemons.iter_mut().rev() {
            // SAFETY: kill(2) on a child of ours not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
        if let Some(pid) = self.munged_pid {
            // SAFETY: kill(2) on the munged this cluster started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    getrandom::fill(&mut buf).unwrap();
    buf
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Job states after which a job never runs again.
const ENDED: [&str; 9] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
];

#[test]
fn the_sbatch_recipe_completes_on_a_real_slurm_cluster_with_serial_outputs() {
    if let Some(why) = cannot_run() {
        println!("SKIPPED: cannot run a Slurm cluster here: {why}");
        return;
    }
    let setup = Instant::now();
    let mut cluster = Cluster::start();
    let setup = setup.elapsed();
    println!("slurm: munged, slurmctld and two slurmd up, nodes idle, in {setup:.2?}");

    let d = cluster.dir.path().to_path_buf();
    let token = d.join("token");
    std::fs::write(&token, hex(&random_bytes(32))).unwrap();
    set_mode(&token, 0o600);
    let mut inputs = Vec::new();
    for (name, lines) in [("tiny", "2000"), ("1M", "1000000")] {
        let input = d.join(format!("{name}.log"));
        common::expect_ok(&[
            "generate",
            "--records",
            lines,
            "--seed",
            "31",
            "--output",
            common::s(&input),
        ]);
        let serial = d.join(format!("serial-{name}"));
        common::expect_ok(&[
            "run",
            "-q",
            "--mode",
            "serial",
            "--input",
            common::s(&input),
            "--out",
            common::s(&serial),
        ]);
        inputs.push((name, lines, input, serial));
    }
    // Three small jobs (a late worker is likely), one whose second worker
    // comes late for sure, and the large one, all queued at once: Slurm
    // runs them one after another (`--exclusive`).
    let mut jobs = Vec::new();
    for (i, (k, late)) in [(0, false), (0, false), (0, false), (0, true), (1, false)]
        .into_iter()
        .enumerate()
    {
        let (name, lines, input, serial) = &inputs[k];
        let out = d.join(format!("out-{i}-{name}"));
        let id = cluster.submit(input, &out, &token, late);
        jobs.push((id, *lines, out, serial.clone(), late));
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.0.clone()).collect();
    let finals = cluster.await_state("the jobs' end", |c| {
        let states: Vec<BTreeMap<String, String>> = ids.iter().map(|id| c.job(id)).collect();
        states
            .iter()
            .all(|s| ENDED.contains(&s["JobState"].as_str()))
            .then_some(states)
    });

    let mut failures = Vec::new();
    for ((id, lines, out, serial, late), job) in jobs.iter().zip(&finals) {
        let log = std::fs::read_to_string(d.join(format!("job-{id}.out"))).unwrap_or_default();
        let summary = std::fs::read(out.join("summary.json")).ok();
        let identical =
            summary.is_some() && summary == std::fs::read(serial.join("summary.json")).ok();
        let joined = std::fs::read(out.join("report.json"))
            .ok()
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r).ok())
            .and_then(|r| r["workers"].as_array().map(Vec::len));
        println!(
            "slurm: job {id} ({lines} lines{}): {} in {} (exit {}), {} of 2 workers joined, summary.json {}",
            if *late { ", n2's worker held back until the end" } else { "" },
            job["JobState"],
            job["RunTime"],
            job["ExitCode"],
            joined.map_or("?".into(), |n| n.to_string()),
            if identical { "identical to serial" } else { "DIFFERENT from serial" },
        );
        if job["JobState"] != "COMPLETED" || !identical || joined.is_none() {
            failures.push(format!("job {id}: {job:?}\n{log}"));
        }
        if *late && joined != Some(1) {
            failures.push(format!("job {id}: the held-back worker joined\n{log}"));
        }
        // A worker that came late exits 0: srun reports no failed task.
        if log.contains("srun: error") || log.contains("a worker failed") {
            failures.push(format!("job {id}: a worker failed\n{log}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        cluster.logs()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
