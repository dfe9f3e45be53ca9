//! The launch recipes in `deploy/`, parsed and checked against the real
//! binary: the Kubernetes manifests as YAML (kinds, names, the Service's
//! port, the token Secret and the shared volume mounted where the flags
//! say), the systemd unit by a small `[Section]` / `Key=Value` parser (the
//! sandbox settings: a read-only file system with the places that hold
//! data emptied and the data path bound back in read-only), the Slurm script as shell
//! lines (`#SBATCH` options, the worker started through `srun`; it runs on
//! a real cluster in `slurm.rs`), and the
//! Dockerfile's instructions (two stages, a non-root user). Every `parpipe`
//! command a recipe holds is checked flag by flag against `parpipe
//! SUBCOMMAND --help`, so a renamed flag breaks this test rather than
//! someone's cluster. (The image itself cannot be built here: no container
//! engine.)

mod common;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;

use common::bin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn recipe(rel: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (path, text)
}

/// The long flags `parpipe [SUB] --help` lists.
fn flags_of(sub: Option<&str>) -> BTreeSet<String> {
    let mut cmd = Command::new(bin());
    cmd.args(sub).arg("--help");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "parpipe {sub:?} --help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    let flag = regex::Regex::new(r"^\s+(?:-\w, )?(--[a-z0-9-]+)").unwrap();
    let found: BTreeSet<String> = help
        .lines()
        .filter_map(|l| flag.captures(l).map(|c| c[1].to_string()))
        .collect();
    assert!(found.contains("--help"), "no flags parsed from:\n{help}");
    found
}

/// Checks one `parpipe` command line (its words, `parpipe` first): a
/// known subcommand, and each `--flag` (before any `=`) listed by that
/// subcommand's `--help`. Returns the subcommand and its flags.
fn check_command(words: &[String], from: &str) -> (String, BTreeMap<String, Option<String>>) {
    assert!(words[0].ends_with("parpipe"), "{from}: {words:?}");
    let sub = words
        .get(1)
        .filter(|w| !w.starts_with('-'))
        .unwrap_or_else(|| panic!("{from}: no subcommand in {words:?}"))
        .clone();
    let known = flags_of(Some(&sub));
    let mut flags = BTreeMap::new();
    let mut it = words[2..].iter().peekable();
    while let Some(w) = it.next() {
        let Some(name) = w.strip_prefix("--").map(|_| w.split('=').next().unwrap()) else {
            continue;
        };
        assert!(
            known.contains(name),
            "{from}: `parpipe {sub}` has no flag {name} (its --help lists {known:?})"
        );
        let value = it.next_if(|v| !v.starts_with("--")).cloned();
        flags.insert(name.to_string(), value);
    }
    (sub, flags)
}

fn yaml_docs(rel: &str) -> Vec<serde_yaml_ng::Value> {
    use serde::Deserialize;
    let (_, text) = recipe(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

fn str_of<'a>(v: &'a serde_yaml_ng::Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for key in path {
        v = &v[*key];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?} in {v:?}"))
}

/// The pod spec's containers of a Job or Deployment, with its volumes.
fn pod(doc: &serde_yaml_ng::Value) -> &serde_yaml_ng::Value {
    &doc["spec"]["template"]["spec"]
}

/// The command of the pod's only container, as words; checked.
fn container_command(
    doc: &serde_yaml_ng::Value,
    from: &str,
) -> (String, BTreeMap<String, Option<String>>) {
    let containers = pod(doc)["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1, "{from}");
    let words: Vec<String> = containers[0]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{from}: no command"))
        .iter()
        .map(|w| w.as_str().expect("a string").to_string())
        .collect();
    check_command(&words, from)
}

/// Where the pod mounts the volume backed by `secret` or `claim`.
fn mount_of(doc: &serde_yaml_ng::Value, is_it: impl Fn(&serde_yaml_ng::Value) -> bool) -> String {
    let volume = pod(doc)["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| is_it(v))
        .expect("the volume");
    let name = str_of(volume, &["name"]);
    let mounts = pod(doc)["containers"][0]["volumeMounts"]
        .as_sequence()
        .unwrap();
    let m = mounts
        .iter()
        .find(|m| str_of(m, &["name"]) == name)
        .expect("its mount");
    str_of(m, &["mountPath"]).to_string()
}

#[test]
fn the_kubernetes_recipe_parses_and_uses_real_flags() {
    let secret = yaml_docs("kubernetes/secret.yaml.example");
    assert_eq!(str_of(&secret[0], &["kind"]), "Secret");
    let secret_name = str_of(&secret[0], &["metadata", "name"]).to_string();
    assert!(secret[0]["stringData"]["token"].is_string());
    let data = yaml_docs("kubernetes/data.yaml");
    assert_eq!(str_of(&data[0], &["kind"]), "PersistentVolumeClaim");
    let claim = str_of(&data[0], &["metadata", "name"]).to_string();

    let coordinator = yaml_docs("kubernetes/coordinator.yaml");
    let job = coordinator
        .iter()
        .find(|d| d["kind"] == "Job")
        .expect("a Job");
    let service = coordinator
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("a Service");
    let (sub, flags) = container_command(job, "coordinator.yaml");
    assert_eq!(sub, "run");
    assert_eq!(flags["--mode"].as_deref(), Some("multiprocess"));
    assert_eq!(flags["--workers"].as_deref(), Some("0"));
    let listen = flags["--listen"].clone().unwrap();
    let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_u64(),
        Some(port)
    );
    let service_port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(
        service["spec"]["selector"]["app"],
        job["spec"]["template"]["metadata"]["labels"]["app"]
    );

    let workers = yaml_docs("kubernetes/workers.yaml");
    let deployment = &workers[0];
    assert_eq!(str_of(deployment, &["kind"]), "Deployment");
    let (sub, wflags) = container_command(deployment, "workers.yaml");
    assert_eq!(sub, "worker");
    // The exact command the issue names.
    let expected_connect = format!("{}:{service_port}", str_of(service, &["metadata", "name"]));
    assert_eq!(wflags["--connect"].as_deref(), Some(&expected_connect[..]));
    assert_eq!(
        wflags["--connect"].as_deref(),
        Some("parpipe-coordinator:7070")
    );
    assert!(wflags.contains_key("--keep-alive"));
    // Started before any coordinator, a worker waits instead of exiting
    // (and crash-looping).
    assert_eq!(wflags["--connect-timeout"].as_deref(), Some("0"));
    assert_eq!(wflags["--allow-read"].as_deref(), Some("/data"));

    // The token file lies in the Secret's mount; the input and the allowed
    // root in the shared volume's, on both sides.
    for (doc, flags) in [(job, &flags), (deployment, &wflags)] {
        let token_dir = mount_of(doc, |v| {
            v["secret"]["secretName"].as_str() == Some(&secret_name)
        });
        let token = flags["--token-file"].clone().unwrap();
        assert_eq!(token, "/var/run/secrets/parpipe/token");
        assert!(
            Path::new(&token).starts_with(&token_dir),
            "{token} {token_dir}"
        );
        let data_dir = mount_of(doc, |v| {
            v["persistentVolumeClaim"]["claimName"].as_str() == Some(&claim)
        });
        assert_eq!(data_dir, "/data");
    }
    let input = flags["--input"].clone().unwrap();
    assert!(Path::new(&input).starts_with("/data"));

    // The coordinator's init step waits for that very input.
    let init = &pod(job)["initContainers"][0];
    let script = init["command"].as_sequence().unwrap().last().unwrap();
    assert!(
        script
            .as_str()
            .unwrap()
            .contains(&format!("[ -e {input} ]")),
        "{script:?}"
    );
    // Both pods run as the image's user, the volume and the token given
    // to its group (fsGroup): a fresh root-owned volume works.
    for doc in [job, deployment] {
        let security = &pod(doc)["securityContext"];
        assert_eq!(security["runAsUser"].as_u64(), Some(10001));
        assert_eq!(security["fsGroup"].as_u64(), Some(10001));
        assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    }
    kubernetes::check_kustomization(&[job, deployment]);
}

/// `[Section]` → key → values (a key may repeat), comments and blank
/// lines skipped; any other line is a parse error naming it.
fn parse_unit(text: &str, from: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{from}:{}: not Key=Value: {line}", n + 1));
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("{from}:{}: a key before any [Section]", n + 1));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "{from}:{}: bad key {key:?}",
            n + 1
        );
        sections
            .get_mut(section)
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    sections
}

#[test]
fn the_systemd_unit_parses_is_sandboxed_and_uses_real_flags() {
    let (_, text) = recipe("systemd/parpipe-worker.service");
    let unit = parse_unit(&text, "parpipe-worker.service");
    assert_eq!(
        unit.keys().collect::<Vec<_>>(),
        ["Install", "Service", "Unit"]
    );
    let service = &unit["Service"];
    let one = |k: &str| -> &str {
        let v = service.get(k).unwrap_or_else(|| panic!("no {k}="));
        assert_eq!(v.len(), 1, "{k} set more than once");
        &v[0]
    };
    assert_eq!(one("DynamicUser"), "yes");
    assert_eq!(one("NoNewPrivileges"), "yes");
    // Read-only everywhere, and the places that hold other data emptied:
    // only what is bound back in can be read there.
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("ProtectHome"), "yes");
    let emptied: Vec<&str> = one("TemporaryFileSystem").split_whitespace().collect();
    for dir in ["/etc", "/var", "/srv", "/opt", "/mnt", "/media", "/run"] {
        assert!(
            emptied.contains(&&*format!("{dir}:ro")),
            "{dir} not emptied: {emptied:?}"
        );
    }
    let words: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (sub, flags) = check_command(&words, "ExecStart");
    assert_eq!(sub, "worker");
    assert!(flags.contains_key("--keep-alive"));
    // No coordinator up: the worker waits rather than exits and restarts.
    assert_eq!(flags["--connect-timeout"].as_deref(), Some("0"));
    let data = flags["--allow-read"].clone().unwrap();
    let bound: Vec<&str> = service["BindReadOnlyPaths"]
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert!(
        bound.contains(&data.as_str()),
        "{data} not bound in: {bound:?}"
    );
    // The binary lies where nothing is emptied; nothing is bound writable.
    assert!(
        emptied
            .iter()
            .all(|e| !Path::new(&words[0]).starts_with(e.trim_end_matches(":ro"))),
        "{emptied:?}"
    );
    assert!(!service.contains_key("BindPaths") && !service.contains_key("ReadWritePaths"));
    // The token comes from the credential systemd loads (`%d`).
    let (name, _) = one("LoadCredential").split_once(':').unwrap();
    assert_eq!(
        flags["--token-file"].as_deref(),
        Some(&format!("%d/{name}")[..])
    );
}

/// The script's logical lines (backslash continuations joined), comments
/// and blank lines skipped, each split into words with quotes removed.
fn shell_lines(text: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let logical = std::mem::take(&mut pending);
        let code = logical.split(" # ").next().unwrap().trim().to_string();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        lines.push(
            code.split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect(),
        );
    }
    assert!(
        pending.is_empty(),
        "a continuation at the end of the script"
    );
    lines
}

#[test]
fn the_slurm_script_starts_a_coordinator_and_one_worker_per_node_with_real_flags() {
    let (_, text) = recipe("slurm/parpipe.sbatch");
    assert!(text.starts_with("#!/bin/bash\n"));
    // The interface the header promises, the one a user types.
    assert!(text.contains("sbatch [--nodes=N] deploy/slurm/parpipe.sbatch INPUT OUT_DIR"));
    let sbatch: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH --"))
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .collect();
    assert_eq!(sbatch.get("ntasks-per-node"), Some(&"1"), "{sbatch:?}");
    // Nothing that pins the job to a cluster's size or limits: a node
    // count or time the partition cannot give leaves the job pending.
    for pinned in ["nodes", "time", "partition", "N", "t"] {
        assert!(
            !sbatch.contains_key(pinned),
            "#SBATCH --{pinned}: {sbatch:?}"
        );
    }
    let lines = shell_lines(&text);
    let mut subs = Vec::new();
    for words in &lines {
        let Some(at) = words.iter().position(|w| w == "parpipe") else {
            continue;
        };
        let mut cmd = words[at..].to_vec();
        if cmd.last().is_some_and(|w| w == "&") {
            cmd.pop();
        }
        if cmd.len() < 2 || cmd[1].starts_with('>') {
            continue; // `command -v parpipe >/dev/null`
        }
        let (sub, flags) = check_command(&cmd, "parpipe.sbatch");
        if sub == "worker" {
            assert_eq!(words[0], "srun", "workers start through srun: {words:?}");
            assert!(words.contains(&"--ntasks-per-node=1".to_string()));
            assert!(words
                .iter()
                .any(|w| w.replace('"', "") == "--nodes=$SLURM_JOB_NUM_NODES"));
            assert!(flags.contains_key("--allow-read"));
            assert!(flags.contains_key("--done-if-refused"), "{flags:?}");
            // The port the coordinator was given, not a fixed one.
            assert!(flags["--connect"].as_deref().unwrap().ends_with(":$port"));
        } else {
            assert_eq!(at, 0, "the coordinator runs on the batch node: {words:?}");
            assert_eq!(flags["--workers"].as_deref(), Some("0"));
            assert_eq!(flags["--listen"].as_deref(), Some("0.0.0.0:0"));
            assert_eq!(flags["--out"].as_deref(), Some("$OUT_DIR"));
            assert_eq!(flags["--token-file"].as_deref(), Some("$TOKEN"));
        }
        subs.push(sub);
    }
    assert_eq!(subs, ["run", "worker"]);
    assert!(text.contains("TOKEN=${TOKEN:-$HOME/.parpipe/token}"));
}

#[test]
fn the_dockerfile_has_two_stages_a_non_root_user_and_the_binary_as_entry_point() {
    let (_, text) = recipe("Dockerfile");
    let instructions: Vec<(String, String)> = shell_lines(&text)
        .into_iter()
        .map(|w| (w[0].to_ascii_uppercase(), w[1..].join(" ")))
        .collect();
    let known = [
        "FROM",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "ENTRYPOINT",
        "CMD",
    ];
    for (op, _) in &instructions {
        assert!(known.contains(&op.as_str()), "unexpected instruction {op}");
    }
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(froms[0].ends_with("AS build"), "{froms:?}");
    assert!(instructions
        .iter()
        .any(|(op, a)| op == "COPY" && a.starts_with("--from=build")));
    let user = instructions
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, a)| a.as_str())
        .expect("a USER");
    assert!(user != "root" && user != "0", "runs as {user}");
    let (_, entry) = instructions
        .iter()
        .find(|(op, _)| op == "ENTRYPOINT")
        .expect("an ENTRYPOINT");
    assert_eq!(entry, r#"["/usr/local/bin/parpipe"]"#);
    // The build command the README and the file's header give.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("docker build -f deploy/Dockerfile -t parpipe:latest ."));
    assert!(text.contains("docker build -f deploy/Dockerfile -t parpipe:latest ."));
}

#[test]
fn the_flag_check_catches_a_renamed_flag() {
    let words: Vec<String> = ["parpipe", "worker", "--allow-reads", "/data"]
        .iter()
        .map(|w| w.to_string())
        .collect();
    let caught = std::panic::catch_unwind(|| check_command(&words, "test"));
    assert!(caught.is_err(), "a flag parpipe does not have passed");
    assert!(flags_of(None).contains("--verbose"));
}
