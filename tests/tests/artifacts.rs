//! The artifact store end to end: real `swarm-manager` processes, `swarmctl`, and an
//! in-process agent fetching over a real dispatcher session. Every wait has a deadline.
//!
//! t10 push, ls, inspect · t20 bad pushes are refused with their reason · t30 services pin
//! digests, `rm` is refused while in use, a local .wasm is pushed by `service create` ·
//! t40 artifacts survive kill -9 and an agent fetches identical bytes · t50 managers that
//! joined later fetch the bytes their snapshot left out, and serve them once they lead.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use swarm_agent::artifacts::{ArtifactSource, ArtifactStore, digest_of};
use swarm_agent::session::SessionLinks;
use swarm_tests::{ManagerProc, wait_for};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn stderr_of(m: &ManagerProc, args: &[&str]) -> String {
    let out = m.ctl(args);
    assert!(
        !out.status.success(),
        "swarmctl {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn artifact_of(service: &Value) -> String {
    service[0]["spec"]["task"]["wasm"]["artifact"]
        .as_str()
        .or_else(|| service[0]["spec"]["task"]["runtime"]["wasm"]["artifact"].as_str())
        .unwrap_or_else(|| panic!("no wasm artifact in {service}"))
        .to_string()
}

#[test]
fn t10_push_ls_inspect() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    // Three raft chunks.
    let bytes = swarm_guests::padded_module(2 * 1024 * 1024 + 300_000);
    let file = write(dir.path(), "hello.wasm", &bytes);

    tracing::info!("--- push prints the digest");
    let out = m.ctl_ok(&["artifact", "push", &file.display().to_string(), "hello:1.0"]);
    assert_eq!(out.trim(), digest_of(&bytes));

    tracing::info!("--- ls shows it, as a table and as JSON");
    let table = m.ctl_ok(&["artifact", "ls"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("hello"))
        .unwrap_or_else(|| panic!("no hello row in:\n{table}"));
    let short = &digest_of(&bytes)[..7 + 12];
    assert!(
        row.contains("1.0") && row.contains(short) && row.contains("module"),
        "{row}"
    );
    let json = m.ctl_json(&["artifact", "ls"]);
    assert_eq!(json[0]["names"][0], "hello:1.0");
    assert_eq!(json[0]["size"], bytes.len() as u64);
    assert_eq!(json[0]["kind"], "ARTIFACT_MODULE");

    tracing::info!("--- inspect by name, by digest and by digest prefix");
    for reference in [
        "hello:1.0".to_string(),
        digest_of(&bytes),
        digest_of(&bytes)[7..19].to_string(),
    ] {
        let v: Value =
            serde_json::from_str(&m.ctl_ok(&["artifact", "inspect", &reference])).unwrap();
        assert_eq!(v[0]["digest"], digest_of(&bytes), "inspect {reference}");
    }
    let e = stderr_of(&m, &["artifact", "inspect", "nope"]);
    assert!(e.contains("artifact \"nope\" not found"), "{e}");
}

#[test]
fn t20_bad_pushes_are_refused_with_their_reason() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();

    tracing::info!("--- not WebAssembly");
    let script = write(dir.path(), "run.sh", b"#!/bin/sh\necho hi\n");
    let e = stderr_of(
        &m,
        &["artifact", "push", &script.display().to_string(), "script"],
    );
    assert!(
        e.contains("not a WebAssembly module or component: bad magic number"),
        "{e}"
    );

    tracing::info!("--- over the size limit");
    let big = write(
        dir.path(),
        "big.wasm",
        &swarm_guests::padded_module(80 * 1024 * 1024),
    );
    let e = stderr_of(&m, &["artifact", "push", &big.display().to_string(), "big"]);
    assert!(
        e.contains("artifact is 80.0 MiB; the limit is 64 MiB"),
        "{e}"
    );

    tracing::info!("--- a bad name");
    let ok = write(dir.path(), "ok.wasm", swarm_tests::EMPTY_MODULE);
    let e = stderr_of(&m, &["artifact", "push", &ok.display().to_string(), "Bad"]);
    assert!(e.contains("must be lowercase"), "{e}");

    let listed = m.ctl_json(&["artifact", "ls"]);
    assert_eq!(listed, Value::Array(vec![]), "nothing was stored");
}

#[test]
fn t30_services_pin_digests_and_hold_their_artifacts() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let digest = m.push_empty_module("hello:latest");

    tracing::info!("--- an unknown artifact is refused with what to do");
    let e = stderr_of(&m, &["service", "create", "-d", "--name", "x", "missing"]);
    assert!(
        e.contains("artifact 'missing:latest' not found: push it with `swarmctl artifact push FILE missing:latest`"),
        "{e}"
    );

    tracing::info!("--- create by NAME pins NAME:TAG@digest");
    m.ctl_ok(&["service", "create", "-d", "--name", "web", "hello"]);
    let web = m.ctl_json(&["service", "inspect", "web"]);
    assert_eq!(artifact_of(&web), format!("hello:latest@{digest}"));

    tracing::info!("--- rm is refused while the service uses it, allowed after");
    let e = stderr_of(&m, &["artifact", "rm", "hello"]);
    assert!(
        e.contains("artifact hello:latest is in use by service web"),
        "{e}"
    );
    m.ctl_ok(&["service", "rm", "web"]);
    m.ctl_ok(&["artifact", "rm", "hello"]);
    assert_eq!(m.ctl_json(&["artifact", "ls"]), Value::Array(vec![]));

    tracing::info!("--- a local .wasm file is pushed by service create and run by digest");
    let bytes = swarm_guests::padded_module(4096);
    let file = write(dir.path(), "local-app.wasm", &bytes);
    m.ctl_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "local",
        &file.display().to_string(),
    ]);
    let local = m.ctl_json(&["service", "inspect", "local"]);
    assert_eq!(artifact_of(&local), digest_of(&bytes));
    let listed = m.ctl_json(&["artifact", "ls"]);
    assert_eq!(listed[0]["names"][0], "local-app:latest");
}

#[test]
fn t40_artifacts_survive_kill9_and_agents_fetch_identical_bytes() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let bytes = swarm_guests::padded_module(1024 * 1024 + 77_777);
    let file = write(dir.path(), "app.wasm", &bytes);
    let digest = m
        .ctl_ok(&["artifact", "push", &file.display().to_string(), "app:2"])
        .trim()
        .to_string();

    tracing::info!("--- kill -9 and restart: the artifact is still listed");
    m.restart().unwrap();
    let listed = m.ctl_json(&["artifact", "ls"]);
    assert_eq!(listed[0]["digest"], digest.as_str());

    tracing::info!("--- an agent fetches it over its session");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let links = SessionLinks::new();
    let shutdown = CancellationToken::new();
    let config = swarm_agent::AgentConfig {
        managers: vec![m.addr()],
        join_token: m.worker_token(),
        state_dir: dir.path().join("agent"),
        key_protection: Default::default(),
        hostname: "fetcher".into(),
        labels: Default::default(),
        backend: Arc::new(swarm_agent::exec::NullBackend::new()),
        links: links.clone(),
    };
    let agent = rt.spawn(swarm_agent::run(config, shutdown.clone()));
    let store = ArtifactStore::new(dir.path().join("agent/artifacts"), links.clone());
    let (path, missing) = rt.block_on(async {
        let fetches = futures_join(&store, &digest).await;
        let missing = store.path(&digest_of(b"never pushed")).await;
        (fetches, missing)
    });
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "fetched bytes differ");
    assert!(
        path.ends_with(format!("sha256/{}", &digest[7..])),
        "{}",
        path.display()
    );
    let e = missing.unwrap_err();
    assert!(
        matches!(e, swarm_agent::exec::ExecError::NotFound(_)),
        "an unknown digest is NotFound, got {e}"
    );
    wait_for("the agent to stop", DEADLINE, || {
        shutdown.cancel();
        agent.is_finished().then_some(())
    });
}

/// Two concurrent requests for the same digest; both get the same path.
async fn futures_join(store: &ArtifactStore, digest: &str) -> PathBuf {
    let (a, b) = tokio::join!(store.path(digest), store.path(digest));
    let (a, b) = (a.expect("fetch"), b.expect("fetch"));
    assert_eq!(a, b);
    a
}

/// t50: managers that joined after a push received the store as a snapshot, without the
/// chunks: they fetch the bytes from a peer, so after the first manager dies the new leader
/// serves them and a task using the artifact runs.
#[test]
fn t50_managers_that_joined_later_catch_up_on_artifact_bytes() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut m0 = ManagerProc::init(&dir.path().join("m0"), &["--no-agent"]).unwrap();
    m0.ctl_ok(&["artifact", "push", swarm_guests::HELLO, "hello:1"]);
    let m1 = ManagerProc::join(&dir.path().join("m1"), &m0, &["--no-agent"]).unwrap();
    let m2 = ManagerProc::join(&dir.path().join("m2"), &m1, &["--no-agent"]).unwrap();
    for m in [&m1, &m2] {
        wait_for(
            "a joined manager to fetch the bytes it missed",
            DEADLINE,
            || {
                m.proc
                    .output()
                    .contains("artifact bytes this manager missed fetched from a peer")
                    .then_some(())
            },
        );
    }

    m0.proc.kill9();
    let create = [
        "service",
        "create",
        "-d",
        "--name",
        "hello",
        "--restart-condition",
        "none",
        "hello:1",
        "after",
        "failover",
    ];
    wait_for("a new leader to accept the service", DEADLINE, || {
        m1.ctl(&create).status.success().then_some(())
    });
    let _agent = swarm_tests::spawn_agent_with(
        &m1,
        &dir.path().join("w"),
        "worker-1",
        &["--backend", "wasi"],
    )
    .unwrap();
    wait_for(
        "the job to complete on the new leader's bytes",
        DEADLINE,
        || {
            m2.tasks("hello")
                .into_iter()
                .find(|t| swarm_tests::state_of(t) == "COMPLETE")
        },
    );
    let logs = m2.ctl_ok(&["service", "logs", "hello"]);
    assert!(logs.contains("hello from swarm after failover"), "{logs}");
}
