//! End to end with the OCI backend: a busybox image the test builds itself from Debian's
//! `busybox-static` into an OCI image layout, run by a real `swarm-agent --backend wasi,oci`
//! through runc, observed with `swarmctl service ps/logs/scale`. Registry pulls go through
//! Debian's `docker-registry` on loopback, of the busybox image and of a WASM component
//! pushed as a CNCF wasm OCI artifact (run by the same agent's WASI backend). Needs root,
//! `runc`, `busybox-static` and `docker-registry` (`.ci/run` installs them). Deadlines on
//! every wait.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use swarm_agent::exec::oci::LayoutWriter;
use swarm_tests::{ManagerProc, Proc, init_tracing, spawn_agent_with, state_of, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// Writes the busybox layout under `dir`; returns its image reference.
fn busybox_image(dir: &Path) -> String {
    let layout = dir.join("busybox");
    LayoutWriter::busybox(Path::new("/bin/busybox"))
        .expect("read /bin/busybox (apt-get install busybox-static)")
        .write(&layout, "1")
        .expect("write the busybox layout");
    format!("oci-layout:{}:1", layout.display())
}

/// `service create -d --runtime oci --name NAME [flags…] IMAGE sh -c SCRIPT`.
fn create(m: &ManagerProc, name: &str, flags: &[&str], image: &str, script: &str) {
    let mut a = vec![
        "service",
        "create",
        "-d",
        "--runtime",
        "oci",
        "--name",
        name,
    ];
    a.extend(flags);
    a.extend([image, "sh", "-c", script]);
    m.ctl_ok(&a);
}

fn task_in(m: &ManagerProc, service: &str, state: &str) -> Value {
    wait_for(
        &format!("a task of {service} to be {state}"),
        CONVERGE,
        || m.tasks(service).into_iter().find(|t| state_of(t) == state),
    )
}

fn logs_until(m: &ManagerProc, service: &str, needle: &str) -> String {
    wait_for(
        &format!("'{needle}' in the logs of {service}"),
        CONVERGE,
        || {
            let out = m.ctl(&["service", "logs", service]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.success() && text.contains(needle)).then_some(text)
        },
    )
}

/// The container ids `runc list` shows for the agent whose state dir is `state`.
fn runc_list(state: &Path) -> Vec<String> {
    let out = Command::new("runc")
        .arg("--root")
        .arg(state.join("oci").join("runc"))
        .args(["list", "-q"])
        .output()
        .expect("run runc list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The init pid of container `id` (`runc state`).
fn runc_pid(state: &Path, id: &str) -> i64 {
    let out = Command::new("runc")
        .arg("--root")
        .arg(state.join("oci").join("runc"))
        .args(["state", id])
        .output()
        .expect("run runc state");
    let v: Value = serde_json::from_slice(&out.stdout).expect("runc state JSON");
    v["pid"].as_i64().expect("a pid")
}

struct Cluster {
    _dir: tempfile::TempDir,
    m: ManagerProc,
    agent: Proc,
    agent_state: PathBuf,
    image: String,
}

impl Cluster {
    /// A manager without an agent of its own and one `--backend wasi,oci` agent.
    fn start() -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
        let agent_state = dir.path().join("agent");
        let agent =
            spawn_agent_with(&m, &agent_state, "oci-1", &["--backend", "wasi,oci"]).unwrap();
        let image = busybox_image(dir.path());
        Self {
            _dir: dir,
            m,
            agent,
            agent_state,
            image,
        }
    }

    fn restart_agent(&mut self) {
        self.agent = spawn_agent_with(
            &self.m,
            &self.agent_state,
            "oci-1",
            &["--backend", "wasi,oci"],
        )
        .unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The shims outlive the agent by design: stop what the test left running.
        for id in runc_list(&self.agent_state) {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.agent_state.join("oci").join("runc"))
                .args(["delete", "--force", &id])
                .status();
        }
    }
}

#[test]
fn o10_jobs_complete_or_fail_with_their_exit_code_and_logs() {
    let c = Cluster::start();
    let once = ["--restart-condition", "none"];

    tracing::info!("--- a job that prints and exits 0");
    create(&c.m, "hi", &once, &c.image, "echo hello from busybox");
    let t = task_in(&c.m, "hi", "COMPLETE");
    assert_eq!(t["status"]["exit_code"].as_i64().unwrap_or(0), 0);
    let out = logs_until(&c.m, "hi", "hello from busybox");
    assert!(
        out.lines()
            .any(|l| l.starts_with("hi.1.") && l.contains("@oci-1")),
        "{out}"
    );

    tracing::info!("--- a job that exits 3 with a message on stderr");
    create(&c.m, "three", &once, &c.image, "echo oops >&2; exit 3");
    let t = task_in(&c.m, "three", "FAILED");
    assert_eq!(t["status"]["exit_code"].as_i64(), Some(3), "{t}");
    assert_eq!(
        t["status"]["err"].as_str(),
        Some("task: non-zero exit (3): oops"),
        "{t}"
    );

    tracing::info!("--- the same layout packed in a tar file");
    let layout = c.image["oci-layout:".len()..]
        .trim_end_matches(":1")
        .to_string();
    let archive = format!("{layout}.tar");
    let tarred = std::process::Command::new("tar")
        .args(["-C", &layout, "-cf", &archive, "."])
        .status()
        .unwrap();
    assert!(tarred.success());
    let from_tar = format!("oci-layout:{archive}:1");
    create(&c.m, "tarred", &once, &from_tar, "echo hello from a tar");
    task_in(&c.m, "tarred", "COMPLETE");
    logs_until(&c.m, "tarred", "hello from a tar");

    tracing::info!("--- --read-only: the root filesystem refuses writes");
    let read_only = ["--restart-condition", "none", "--read-only"];
    create(&c.m, "ro", &read_only, &c.image, "touch /x");
    let t = task_in(&c.m, "ro", "FAILED");
    let err = t["status"]["err"].as_str().unwrap_or("");
    assert!(err.contains("Read-only file system"), "{t}");

    tracing::info!("--- a bad image reference is rejected with the reason");
    let out = c.m.ctl(&[
        "service",
        "create",
        "-d",
        "--runtime",
        "oci",
        "--name",
        "bad",
        "--restart-condition",
        "none",
        "oci-layout:/nonexistent/layout",
        "true",
    ]);
    assert!(out.status.success());
    let t = task_in(&c.m, "bad", "REJECTED");
    let err = t["status"]["err"].as_str().unwrap_or("");
    assert!(
        err.contains("no OCI image layout at /nonexistent/layout"),
        "{t}"
    );
}

#[test]
fn o20_scale_down_stops_a_container_gracefully_with_sigterm() {
    let c = Cluster::start();
    let out_dir = c.agent_state.with_extension("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mount = format!("type=bind,source={},target=/out", out_dir.display());
    // On SIGTERM the container writes a file named after its hostname into the bind mount.
    let script = "trap 'echo bye > /out/$(hostname); exit 0' TERM; echo up; \
                  while true; do sleep 0.1; done";
    create(
        &c.m,
        "web",
        &["--replicas", "2", "--mount", &mount],
        &c.image,
        script,
    );
    wait_for("2 web tasks RUNNING", CONVERGE, || {
        let n =
            c.m.tasks("web")
                .iter()
                .filter(|t| state_of(t) == "RUNNING")
                .count();
        (n == 2).then_some(())
    });
    assert_eq!(runc_list(&c.agent_state).len(), 2);

    tracing::info!("--- scale to 1: one container gets SIGTERM and exits by itself");
    let started = std::time::Instant::now();
    c.m.ctl_ok(&["service", "scale", "-d", "web=1"]);
    let stopped = wait_for("one web task SHUTDOWN", CONVERGE, || {
        c.m.tasks("web")
            .into_iter()
            .find(|t| state_of(t) == "SHUTDOWN")
    });
    // The grace period is 10 s: well under it means SIGTERM ended it, not SIGKILL.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "took {:?}",
        started.elapsed()
    );
    let id = stopped["id"].as_str().unwrap().to_string();
    let host: String = id.chars().take(12).collect();
    let marker = out_dir.join(&host);
    wait_for("the TERM trap's file", CONVERGE, || {
        marker.exists().then_some(())
    });
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "bye");
    wait_for("one container left in runc", CONVERGE, || {
        (runc_list(&c.agent_state).len() == 1).then_some(())
    });
}

#[test]
fn o30_agent_kill9_and_restart_readopts_the_running_container() {
    let mut c = Cluster::start();
    create(
        &c.m,
        "svc",
        &[],
        &c.image,
        "echo up; while true; do sleep 0.1; done",
    );
    let t = task_in(&c.m, "svc", "RUNNING");
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(runc_list(&c.agent_state), std::slice::from_ref(&id));
    let pid = runc_pid(&c.agent_state, &id);

    tracing::info!("--- kill -9 the agent: the container keeps running under its shim");
    c.agent.kill9();
    assert_eq!(runc_list(&c.agent_state), std::slice::from_ref(&id));

    tracing::info!("--- restart: the task DB brings the task back, no second container");
    c.restart_agent();
    wait_for("the node READY again", CONVERGE, || {
        let nodes = c.m.ctl_json(&["node", "ls"]);
        nodes
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["status"]["state"] == "NODE_READY"))
            .then_some(())
    });
    // The same task is RUNNING and nothing replaced it.
    let tasks = c.m.tasks("svc");
    let running: Vec<_> = tasks.iter().filter(|t| state_of(t) == "RUNNING").collect();
    assert_eq!(running.len(), 1, "{tasks:?}");
    assert_eq!(running[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(runc_list(&c.agent_state), std::slice::from_ref(&id));
    assert_eq!(
        runc_pid(&c.agent_state, &id),
        pid,
        "the same container process"
    );

    tracing::info!("--- it is still under management: removing the service stops it");
    c.m.ctl_ok(&["service", "rm", "svc"]);
    wait_for("the container gone from runc", CONVERGE, || {
        runc_list(&c.agent_state).is_empty().then_some(())
    });
}

#[test]
fn o40_an_oci_task_waits_for_a_node_that_runs_oci() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // The manager's own agent runs WASM only.
    let m = ManagerProc::init(&dir.path().join("m"), &["--backend", "wasi"]).unwrap();
    let image = busybox_image(dir.path());
    // Its agent must be up, or the scheduler's reason would be "not ready".
    wait_for("the manager's own agent to be ready", CONVERGE, || {
        m.ctl_ok(&["node", "ls"]).contains("Ready").then_some(())
    });
    create(
        &m,
        "c",
        &["--restart-condition", "none"],
        &image,
        "echo placed",
    );
    let t = wait_for("the reason the task is pending", CONVERGE, || {
        m.tasks("c").into_iter().find(|t| {
            t["status"]["err"]
                .as_str()
                .is_some_and(|e| e.starts_with("no suitable node"))
        })
    });
    assert_eq!(state_of(&t), "PENDING");
    assert_eq!(
        t["status"]["err"].as_str(),
        Some("no suitable node (1 node does not run oci tasks)")
    );

    tracing::info!("--- an OCI agent joins: the task is placed there and runs");
    let state = dir.path().join("agent");
    let _agent = spawn_agent_with(&m, &state, "oci-1", &["--backend", "oci"]).unwrap();
    let t = task_in(&m, "c", "COMPLETE");
    assert!(t["node_id"].as_str().is_some_and(|n| !n.is_empty()), "{t}");
    logs_until(&m, "c", "placed");
}

/// Debian's `docker-registry` on a loopback port, storing under `dir`.
fn start_registry(dir: &Path) -> (Proc, u16) {
    let port = swarm_tests::free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("registry-data").display()
        ),
    )
    .unwrap();
    let registry = Proc::spawn(
        "docker-registry",
        Path::new("/usr/bin/docker-registry"),
        &["serve".into(), config.display().to_string()],
        &dir.join("registry.log"),
    )
    .expect("start docker-registry (apt-get install docker-registry)");
    wait_for("the registry to answer /v2/", CONVERGE, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        answer.lines().next()?.contains(" 200").then_some(())
    });
    (registry, port)
}

/// Pushes one manifest to the registry on `port` as `localhost:PORT/REPO_TAG` with
/// oci-client's push: `config` and each layer are `(bytes, media type)`.
fn push(port: u16, repo_tag: &str, config: (Vec<u8>, &str), layers: Vec<(Vec<u8>, &str)>) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // oci-client is built with rustls and no default provider (as the agent is).
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async {
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let reference: oci_client::Reference =
            format!("localhost:{port}/{repo_tag}").parse().unwrap();
        let layers: Vec<ImageLayer> = layers
            .into_iter()
            .map(|(bytes, media_type)| ImageLayer::new(bytes, media_type.into(), None))
            .collect();
        let config = Config::new(config.0, config.1.into(), None);
        tokio::time::timeout(
            CONVERGE,
            client.push(
                &reference,
                &layers,
                config,
                &oci_client::secrets::RegistryAuth::Anonymous,
                None,
            ),
        )
        .await
        .expect("push within the deadline")
        .unwrap_or_else(|e| panic!("push {repo_tag}: {e}"));
    });
}

/// Pushes the busybox image as `localhost:PORT/busybox:1`.
fn push_busybox(port: u16) {
    let image = LayoutWriter::busybox(Path::new("/bin/busybox")).unwrap();
    let layers = image.layer_blobs().unwrap();
    let config = image.config_json(&layers);
    push(
        port,
        "busybox:1",
        (config, "application/vnd.oci.image.config.v1+json"),
        layers
            .into_iter()
            .map(|l| (l, "application/vnd.oci.image.layer.v1.tar+gzip"))
            .collect(),
    );
}

/// Pushes the `.wasm` file `path` as `localhost:PORT/REPO_TAG` in the CNCF wasm OCI artifact
/// layout (`wkg oci push` writes the same): a wasm config, the file as one layer.
fn push_wasm(port: u16, repo_tag: &str, path: &str) {
    use swarm_agent::registry::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
    let wasm = std::fs::read(path).unwrap();
    let config = serde_json::json!({
        "created": "2025-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [swarm_agent::artifacts::digest_of(&wasm)],
    });
    push(
        port,
        repo_tag,
        (config.to_string().into_bytes(), WASM_CONFIG_MEDIA_TYPE),
        vec![(wasm, WASM_LAYER_MEDIA_TYPE)],
    );
}

#[test]
fn o50_an_image_is_pulled_from_a_loopback_registry() {
    let c = Cluster::start();
    let (_registry, port) = start_registry(c._dir.path());
    push_busybox(port);
    let image = format!("localhost:{port}/busybox:1");
    let once = ["--restart-condition", "none"];
    create(
        &c.m,
        "pulled",
        &once,
        &image,
        "echo pulled from the registry",
    );
    task_in(&c.m, "pulled", "COMPLETE");
    logs_until(&c.m, "pulled", "pulled from the registry");

    tracing::info!("--- a tag the registry does not have: REJECTED, saying so");
    let missing = format!("localhost:{port}/busybox:2");
    create(&c.m, "missing", &once, &missing, "true");
    let t = task_in(&c.m, "missing", "REJECTED");
    assert!(
        t["status"]["err"]
            .as_str()
            .is_some_and(|e| e.contains("busybox:2")),
        "{t}"
    );
}

#[test]
fn o60_a_wasm_artifact_is_pulled_from_a_loopback_registry() {
    let c = Cluster::start();
    let (_registry, port) = start_registry(c._dir.path());
    push_wasm(port, "hello:1", swarm_guests::HELLO);
    push_busybox(port);
    let once = ["--restart-condition", "none"];
    let create_wasm = |name: &str, artifact: &str, args: &[&str]| {
        let mut a = vec!["service", "create", "-d", "--name", name];
        a.extend(once);
        a.push(artifact);
        a.extend(args);
        c.m.ctl_ok(&a);
    };

    tracing::info!("--- a WASI service names the artifact by its registry reference");
    let hello = format!("127.0.0.1:{port}/hello:1");
    create_wasm("hello", &hello, &["from", "the", "registry"]);
    let t = task_in(&c.m, "hello", "COMPLETE");
    assert_eq!(t["status"]["exit_code"].as_i64().unwrap_or(0), 0, "{t}");
    logs_until(&c.m, "hello", "hello from swarm from the registry");

    tracing::info!("--- the layer is kept and compiled under the file's own digest");
    let digest = swarm_agent::artifacts::digest_of(&std::fs::read(swarm_guests::HELLO).unwrap());
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = c.agent_state.join("oci/blobs/sha256").join(hex);
    assert!(blob.is_file(), "{} is missing", blob.display());
    let compiled = std::fs::read_dir(c.agent_state.join("cache"))
        .unwrap()
        .map(|d| d.unwrap().path().join(format!("{hex}.cwasm")))
        .find(|p| p.is_file());
    assert!(compiled.is_some(), "no {hex}.cwasm in the compiled cache");

    tracing::info!("--- a container image named for a WASI service: REJECTED, saying what fits");
    let image = format!("127.0.0.1:{port}/busybox:1");
    create_wasm("notwasm", &image, &[]);
    let t = task_in(&c.m, "notwasm", "REJECTED");
    assert_eq!(
        t["status"]["err"].as_str(),
        Some(
            format!(
                "invalid task: '{image}' is a container image, not a wasm artifact: use \
                 --runtime oci"
            )
            .as_str()
        ),
        "{t}"
    );

    tracing::info!("--- a malformed registry reference is refused at create");
    let out = c.m.ctl(&[
        "service",
        "create",
        "-d",
        "--name",
        "upper",
        &format!("127.0.0.1:{port}/Hello:1"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("the name must be lowercase"), "{stderr}");

    tracing::info!("--- a tag the registry does not have: REJECTED, saying so");
    let missing = format!("127.0.0.1:{port}/hello:2");
    create_wasm("missing", &missing, &[]);
    let t = task_in(&c.m, "missing", "REJECTED");
    assert_eq!(
        t["status"]["err"].as_str(),
        Some(
            format!(
                "not found: '{missing}' is not in its registry (no such repository or tag); \
                 push it first"
            )
            .as_str()
        ),
        "{t}"
    );
}

/// The `THP_enabled` line of a `/proc/PID/status`, without its whitespace.
fn thp_line(status: &str) -> Option<String> {
    status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .map(|l| l.split_whitespace().collect())
}

#[test]
fn o70_a_manager_runs_without_huge_pages_and_its_containers_with_the_host_policy() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--backend", "wasi,oci"]).unwrap();
    let own = std::fs::read_to_string(format!("/proc/{}/status", m.proc.child.id())).unwrap();
    assert_eq!(
        thp_line(&own).as_deref(),
        Some("THP_enabled:0"),
        "the manager keeps huge pages on (the line is in /proc/PID/status since Linux 5.0)"
    );

    let image = busybox_image(dir.path());
    let once = ["--restart-condition", "none"];
    create(
        &m,
        "thp",
        &once,
        &image,
        "grep THP_enabled /proc/self/status",
    );
    task_in(&m, "thp", "COMPLETE");
    let out = logs_until(&m, "thp", "THP_enabled");
    assert_eq!(
        thp_line(out.split_once("| ").map_or(&out[..], |(_, l)| l)).as_deref(),
        Some("THP_enabled:1"),
        "the container inherited the manager's THP flag: {out}"
    );
}
