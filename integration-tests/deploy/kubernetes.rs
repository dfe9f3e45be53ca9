//! The Kubernetes recipe beyond its shape: the kustomization names every
//! manifest and the image they use; the manifests pass the Kubernetes
//! schema (`kubernetes-validate --strict`, from PyPI; SKIPPED where it is
//! not installed); and the pods are rehearsed as processes with the
//! manifests' own commands, user, group and volume permissions: a fresh
//! root-owned volume given to group 10001 as `fsGroup` does (chgrp,
//! setgid), the token as the Secret's `defaultMode` gives it, the input
//! streamed in as the coordinator's header says, its init step, the
//! coordinator and two keep-alive workers started before it, all as uid
//! 10001 through `setpriv` (root needed; SKIPPED otherwise).

use super::{container_command, pod, recipe, str_of, yaml_docs};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The manifests `kubectl apply -k` applies, from the kustomization.
fn resources() -> Vec<String> {
    let k = &yaml_docs("kubernetes/kustomization.yaml")[0];
    k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// Every manifest in `deploy/kubernetes/` is a resource of the
/// kustomization (the Secret's example excepted), and every container of
/// `pods` uses the image the kustomization sets.
pub fn check_kustomization(pods: &[&serde_yaml_ng::Value]) {
    let dir = manifests_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut listed = resources();
    listed.sort();
    assert_eq!(listed, on_disk, "kustomization.yaml resources");
    let k = &yaml_docs("kubernetes/kustomization.yaml")[0];
    let image = &k["images"][0];
    let name = str_of(image, &["name"]);
    assert!(!str_of(image, &["newName"]).is_empty() && image["newTag"].is_string());
    for doc in pods {
        for list in ["initContainers", "containers"] {
            for c in pod(doc)[list].as_sequence().into_iter().flatten() {
                assert_eq!(str_of(c, &["image"]), name, "{list}: {c:?}");
            }
        }
    }
}

/// `kubernetes-validate`, if installed.
fn validator() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .map(|d| Path::new(d).join("kubernetes-validate"))
        .find(|p| p.is_file());
    found
}

#[test]
fn the_kubernetes_manifests_pass_the_schema() {
    let Some(validate) = validator() else {
        println!("SKIPPED: kubernetes-validate is not installed (pip install kubernetes-validate)");
        return;
    };
    let dir = manifests_dir();
    let mut files = resources();
    files.push("secret.yaml.example".into());
    // The oldest Kubernetes still commonly run, and the validator's newest.
    for version in [Some("1.25.0"), None] {
        let mut cmd = Command::new(&validate);
        cmd.arg("--strict")
            .args(version.map(|v| ["-k", v]).iter().flatten());
        let out = cmd.args(&files).current_dir(&dir).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        print!("{text}");
        assert!(
            out.status.success(),
            "kubernetes-validate {version:?}:\n{text}"
        );
        // One line per resource: the PVC, the Deployment, the Job, the
        // Service and the Secret.
        assert_eq!(text.matches(" passed for resource ").count(), 5, "{text}");
    }
    // The validator does reject what the schema forbids.
    let bad = tempfile::tempdir().unwrap();
    let (_, workers) = recipe("kubernetes/workers.yaml");
    let misspelt = workers.replacen("replicas:", "replica:", 1);
    std::fs::write(bad.path().join("workers.yaml"), misspelt).unwrap();
    let out = Command::new(&validate)
        .args(["--strict", "workers.yaml"])
        .current_dir(bad.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
}

const UID: u32 = 10001;

/// Why the pods cannot be rehearsed here, if they cannot.
fn cannot_rehearse() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the pods' uid and the volume's group are set by root)".into());
    }
    match Command::new("setpriv").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no setpriv (util-linux)".into()),
    }
}

/// A pod's file system as the rehearsal lays it out: the volume, the
/// Secret's mount and the image's binary, under one directory.
struct Pods {
    root: tempfile::TempDir,
}

impl Pods {
    fn volume(&self) -> PathBuf {
        self.root.path().join("volume")
    }

    /// A manifest's word with its mounts and addresses mapped onto this
    /// machine: `/data` → the volume, the Secret's mount → its directory,
    /// the coordinator's port and its Service → `service`.
    fn map(&self, word: &str, service: &str) -> String {
        let secret = self.root.path().join("secret");
        word.replace("/var/run/secrets/parpipe", secret.to_str().unwrap())
            .replace("/data", self.volume().to_str().unwrap())
            .replace("0.0.0.0:7070", service)
            .replace("parpipe-coordinator:7070", service)
    }

    /// The container's command in `list` of the pod of `doc`, mapped.
    fn words(&self, doc: &serde_yaml_ng::Value, list: &str, service: &str) -> Vec<String> {
        pod(doc)[list][0]["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|w| self.map(w.as_str().unwrap(), service))
            .collect()
    }

    /// `words` run as the pods run: uid and gid 10001 with the fsGroup as
    /// supplementary group, `parpipe` the image's binary; with
    /// `read_only`, in a mount namespace where the volume is read-only (as
    /// the workers mount it) when this machine can make one.
    fn command(&self, words: &[String], read_only: bool) -> Command {
        let mut setpriv = vec![
            "setpriv".to_string(),
            format!("--reuid={UID}"),
            format!("--regid={UID}"),
            format!("--groups={UID}"),
            "--".into(),
        ];
        setpriv.extend(words.iter().cloned());
        let mut cmd = if read_only && can_unshare() {
            let vol = self.volume().display().to_string();
            let mut c = Command::new("unshare");
            c.args(["--mount", "sh", "-c"])
                .arg(format!("mount --bind -o ro '{vol}' '{vol}' && exec \"$@\""));
            c.arg("sh").args(&setpriv);
            c
        } else {
            let mut c = Command::new(&setpriv[0]);
            c.args(&setpriv[1..]);
            c
        };
        let bin = self.root.path().join("bin");
        cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", "/nonexistent")
            .env_remove("PARPIPE_TOKEN");
        cmd
    }
}

fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The single-quoted shell script in the coordinator's header that
/// streams the input in through its init container.
fn loader_script() -> String {
    let (_, text) = recipe("kubernetes/coordinator.yaml");
    let line = text
        .lines()
        .find(|l| l.contains("sh -c '") && l.contains("access.log.part"))
        .expect("the header's loading command");
    line.split('\'').nth(1).unwrap().to_string()
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait_for(child: Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on our child, not reaped: its waiter is still waiting.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what} still running after {limit:?}");
        }
    }
}

#[test]
fn the_kubernetes_pods_rehearsed_as_processes_work_on_a_fresh_root_owned_volume() {
    if let Some(why) = cannot_rehearse() {
        println!("SKIPPED: cannot rehearse the pods: {why}");
        return;
    }
    let coordinator = yaml_docs("kubernetes/coordinator.yaml");
    let job = coordinator.iter().find(|d| d["kind"] == "Job").unwrap();
    let deployment = &yaml_docs("kubernetes/workers.yaml")[0];
    for doc in [job, deployment] {
        let security = &pod(doc)["securityContext"];
        assert_eq!(security["runAsUser"].as_u64(), Some(UID.into()));
        assert_eq!(security["runAsGroup"].as_u64(), Some(UID.into()));
        assert_eq!(security["fsGroup"].as_u64(), Some(UID.into()));
    }
    let secret_mode = pod(job)["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|v| v["secret"]["defaultMode"].as_u64())
        .expect("the Secret's defaultMode") as u32;

    let pods = Pods {
        root: tempfile::tempdir().unwrap(),
    };
    let root = pods.root.path();
    chmod(root, 0o755);
    for sub in ["volume", "secret", "bin"] {
        std::fs::create_dir(root.join(sub)).unwrap();
    }
    // The image's binary, where uid 10001 may run it.
    std::fs::copy(super::bin(), root.join("bin/parpipe")).unwrap();
    // The Secret's file: root-owned, the fsGroup's, in its defaultMode.
    let token = root.join("secret/token");
    std::fs::write(
        &token,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    )
    .unwrap();
    chown(&token, 0, UID);
    chmod(&token, secret_mode);
    let input = root.join("input.log");
    crate::common::expect_ok(&[
        "generate",
        "--records",
        "20000",
        "--seed",
        "5",
        "--output",
        crate::common::s(&input),
    ]);
    let serial = root.join("serial");
    crate::common::expect_ok(&[
        "run",
        "-q",
        "--mode",
        "serial",
        "--input",
        crate::common::s(&input),
        "--out",
        crate::common::s(&serial),
    ]);

    // A fresh volume: its root owned by root, mode 755.
    let volume = pods.volume();
    chown(&volume, 0, 0);
    chmod(&volume, 0o755);
    let load = |pods: &Pods| {
        let script = pods.map(&loader_script(), "-");
        pods.command(&["sh".into(), "-c".into(), script], false)
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap()
    };
    // Without fsGroup, uid 10001 cannot write to it: the failure fsGroup cures.
    let refused = load(&pods);
    assert!(
        !refused.status.success(),
        "uid {UID} wrote to a root-owned volume"
    );
    println!(
        "k8s rehearsal: without fsGroup, loading the input: {}",
        String::from_utf8_lossy(&refused.stderr).trim()
    );
    // What the kubelet does for fsGroup: the volume's group, group-writable, setgid.
    chown(&volume, 0, UID);
    chmod(&volume, 0o2775);

    // The Service's address: a port free now, which the coordinator will
    // take (the manifest's 7070 may be in use on this machine).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = listener.local_addr().unwrap().to_string();
    drop(listener);

    // The keep-alive workers come first, as a Deployment's pods may: they
    // wait for a coordinator rather than exit.
    let (_, wflags) = container_command(deployment, "workers.yaml");
    assert_eq!(wflags["--connect-timeout"].as_deref(), Some("0"));
    let mut workers: Vec<Child> = (0..2)
        .map(|_| {
            pods.command(&pods.words(deployment, "containers", &service), true)
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();

    let loaded = load(&pods);
    assert!(
        loaded.status.success(),
        "loading: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let init = pods
        .command(&pods.words(job, "initContainers", &service), false)
        .spawn()
        .unwrap();
    assert!(wait_for(init, Duration::from_secs(30), "the init step").success());

    let mut coord = pods
        .command(&pods.words(job, "containers", &service), false)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(coord.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        log.lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let status = wait_for(coord, Duration::from_secs(120), "the coordinator");
    let log = log.join().unwrap();
    assert!(status.success(), "coordinator: {log}");
    // The keep-alive workers are still there, waiting for the next job.
    for w in &mut workers {
        assert!(w.try_wait().unwrap().is_none(), "a worker exited");
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }

    let out = volume.join("out");
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (UID, UID), "/data/out's owner");
    assert_eq!(
        std::fs::read(out.join("summary.json")).unwrap(),
        std::fs::read(serial.join("summary.json")).unwrap(),
        "summary.json differs from serial mode's"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let joined = report["workers"].as_array().map_or(0, Vec::len);
    assert!(joined >= 1, "{report}");
    println!(
        "k8s rehearsal: volume root:{UID} 2775 (fsGroup), input loaded as uid {UID}, init step done, \
         coordinator and {joined} workers as uid {UID}{}: summary.json identical to serial, /data/out owned {UID}:{UID}",
        if can_unshare() { " (workers' /data read-only)" } else { "" }
    );
}
