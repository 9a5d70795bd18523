//! Cluster security across real processes: joining takes the right token for the right CA;
//! every remote call is mutual TLS and checked per RPC (no certificate, a worker calling
//! Control, a removed node, an expired certificate: all refused); certificates renew
//! before they expire. Every wait has a deadline.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message;
use swarm_agent::certs::{self, CertFiles, ClientConfig, NodeCerts, NodeIdentity};
use swarm_manager::ca::{RootCa, Subject};
use swarm_manager::keymanager::{DekFile, UnlockKey};
use swarm_manager::node::raft_path;
use swarm_manager::raft::storage::RaftStorage;
use swarm_proto::control_client::ControlClient;
use swarm_proto::dispatcher_client::DispatcherClient;
use swarm_proto::raft_client::RaftClient;
use swarm_proto::raft_membership_client::RaftMembershipClient;
use swarm_proto::{
    JoinRaftRequest, ListNodesRequest, NodeRole, RaftMessageChunk, SessionRequest, StoreSnapshot,
};
use swarm_tests::{ManagerProc, Proc, bin, free_port, spawn_agent, wait_for};

const CONVERGE: Duration = Duration::from_secs(30);
const RPC: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A `swarm-agent` on the null backend with exactly `token` (none if empty).
fn agent_with_token(m: &ManagerProc, dir: &Path, name: &str, token: &str) -> Proc {
    let mut args = vec![
        "--manager".to_string(),
        m.addr(),
        "--state-dir".into(),
        dir.join(name).display().to_string(),
        "--hostname".into(),
        name.into(),
        "--backend".into(),
        "null".into(),
    ];
    if !token.is_empty() {
        args.extend(["--join-token".to_string(), token.to_string()]);
    }
    Proc::spawn(
        name,
        &bin("swarm-agent"),
        &args,
        &dir.join(format!("{name}.log")),
    )
    .unwrap()
}

/// Waits for `proc` to exit on its own with a failure whose output contains `text`.
fn exits_saying(mut proc: Proc, text: &str) {
    let status = wait_for(&format!("{} to exit ({text})", proc.name), CONVERGE, || {
        proc.child.try_wait().unwrap()
    });
    assert!(
        !status.success(),
        "{} should fail: {}",
        proc.name,
        proc.output()
    );
    assert!(
        proc.output().contains(text),
        "expected {text:?} in the output of {}:\n{}",
        proc.name,
        proc.output()
    );
}

fn node_certs(state_dir: &Path) -> NodeCerts {
    CertFiles::plain(certs::certs_dir(state_dir))
        .load()
        .unwrap()
        .expect("certificates")
}

/// The bytes of a node's `swarm-node.key`.
fn node_key_file(state_dir: &Path) -> Vec<u8> {
    std::fs::read(certs::certs_dir(state_dir).join("swarm-node.key")).unwrap()
}

/// Whether `bytes` are (or contain) a PEM private key.
fn is_pem_private_key(bytes: &[u8]) -> bool {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN PRIVATE KEY-----")
        || PrivateKeyDer::from_pem_slice(bytes).is_ok()
}

fn ready_nodes(m: &ManagerProc) -> Vec<String> {
    m.ctl_json(&["node", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"]["state"] == "NODE_READY")
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

/// The cluster's root CA as the raft store keeps it — the only place its key is: the manager
/// snapshots its whole store, is killed, and its database is read; then it restarts.
/// Checks on the way that no file in `certificates/` holds the key.
fn root_ca_from_raft_store(m: &mut ManagerProc, metrics: &str) -> RootCa {
    m.snapshot_without_log(metrics);
    m.proc.kill9();
    // Not autolocked: the data key opens without an unlock key.
    let dek = DekFile::in_state_dir(&m.state_dir).load(None).unwrap();
    let storage = RaftStorage::open_sealed(&raft_path(&m.state_dir), dek).unwrap();
    let snapshot = storage.snapshot_now().unwrap();
    drop(storage);
    let store = StoreSnapshot::decode(&snapshot.data[..]).unwrap();
    let cluster = store
        .clusters
        .first()
        .expect("the snapshot holds the Cluster");
    let root = RootCa::from_proto(cluster.root_ca.as_ref()).unwrap();
    for file in std::fs::read_dir(certs::certs_dir(&m.state_dir)).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(root.key_pem.trim()),
            "{} holds the root CA key",
            path.display()
        );
    }
    m.restart().unwrap();
    root
}

/// Opens a dispatcher session with `tls`; the error text of whichever step failed.
async fn session_with(addr: &str, tls: Arc<ClientConfig>) -> Result<(), String> {
    let channel = certs::connect(addr, tls, RPC)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    DispatcherClient::new(channel)
        .session(SessionRequest::default())
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

async fn list_nodes_with(addr: &str, tls: Arc<ClientConfig>) -> Result<usize, String> {
    let channel = certs::connect(addr, tls, RPC)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    ControlClient::new(channel)
        .list_nodes(ListNodesRequest::default())
        .await
        .map(|r| r.into_inner().nodes.len())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// Calls the two raft services (membership Join, the message stream) with `tls`; the error
/// texts, or "ok".
async fn raft_calls_with(addr: &str, tls: Arc<ClientConfig>) -> Vec<String> {
    let channel = certs::connect(addr, tls, RPC).await.expect("connect");
    let join = RaftMembershipClient::new(channel.clone())
        .join(JoinRaftRequest {
            node_id: "intruder".into(),
            addr: "127.0.0.1:1".into(),
            raft_id: 7,
        })
        .await;
    let chunk = RaftMessageChunk {
        data: Vec::new(),
        more: false,
    };
    let stream = RaftClient::new(channel)
        .stream_raft_message(futures::stream::iter(vec![chunk]))
        .await;
    [join.map(|_| ()), stream.map(|_| ())]
        .into_iter()
        .map(|r| match r {
            Ok(()) => "ok".to_string(),
            Err(s) => format!("{:?}: {}", s.code(), s.message()),
        })
        .collect()
}

#[test]
fn s10_joining_takes_the_right_token_for_the_right_ca() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let token = m.worker_token();
    let (head, secret) = token.rsplit_once('-').unwrap();
    let (prefix, digest) = head.rsplit_once('-').unwrap();

    tracing::info!("--- a wrong secret, a wrong CA digest, no token: each refused");
    let wrong_secret = format!("{head}-{}", "0".repeat(secret.len()));
    exits_saying(
        agent_with_token(&m, dir.path(), "a1", &wrong_secret),
        "invalid join token",
    );
    let wrong_ca = format!("{prefix}-{}-{secret}", "0".repeat(digest.len()));
    exits_saying(
        agent_with_token(&m, dir.path(), "a2", &wrong_ca),
        "does not hold the root CA this join token was made for",
    );
    exits_saying(
        agent_with_token(&m, dir.path(), "a3", ""),
        "has not joined a swarm yet",
    );
    assert_eq!(
        ready_nodes(&m).len(),
        0,
        "no node joined: {:?}",
        m.ctl_ok(&["node", "ls"])
    );

    tracing::info!("--- the right token: a worker certificate for this cluster");
    let agent = spawn_agent(&m, &dir.path().join("w1"), "w1").unwrap();
    let id = wait_for("w1 to be READY", CONVERGE, || ready_nodes(&m).pop());
    let cert = node_certs(&dir.path().join("w1")).identity().unwrap();
    let cluster = m.ctl_json(&["cluster", "inspect"]);
    assert_eq!(cert.node_id, id);
    assert_eq!(cert.role, NodeRole::Worker);
    assert_eq!(cluster["id"], cert.cluster_id.as_str());
    assert_eq!(
        cluster["root_ca"]["ca_key"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0,
        "the Control API never shows the root key: {cluster}"
    );

    tracing::info!("--- restarted without a token, it reconnects as the same node");
    drop(agent);
    let _again = agent_with_token(&m, dir.path(), "w1", "");
    wait_for("w1 READY again, same id", CONVERGE, || {
        (ready_nodes(&m) == [id.clone()]).then_some(())
    });
}

#[test]
fn s20_every_remote_call_is_authenticated_and_authorized() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut m = ManagerProc::init(
        &dir.path().join("m"),
        &["--no-agent", "--metrics-addr", &metrics],
    )
    .unwrap();
    let root = root_ca_from_raft_store(&mut m, &metrics);
    let mut agent = spawn_agent(&m, &dir.path().join("w1"), "w1").unwrap();
    let worker_id = wait_for("w1 to be READY", CONVERGE, || ready_nodes(&m).pop());
    let worker = node_certs(&dir.path().join("w1"));
    let manager = node_certs(&m.state_dir);
    let addr = m.addr();
    let rt = runtime();

    tracing::info!("--- no client certificate: Dispatcher and Control refused");
    let anonymous = certs::server_verified(&manager.root_pem).unwrap();
    let e = rt
        .block_on(session_with(&addr, anonymous.clone()))
        .unwrap_err();
    assert!(e.starts_with("Unauthenticated"), "{e}");
    let anonymous_tls = anonymous.clone();
    let e = rt.block_on(list_nodes_with(&addr, anonymous)).unwrap_err();
    assert!(e.starts_with("Unauthenticated"), "{e}");

    tracing::info!("--- a worker may not call Control; a manager may");
    let e = rt
        .block_on(list_nodes_with(&addr, worker.client_config().unwrap()))
        .unwrap_err();
    assert!(
        e.contains("PermissionDenied") && e.contains("only managers"),
        "{e}"
    );
    let n = rt
        .block_on(list_nodes_with(&addr, manager.client_config().unwrap()))
        .unwrap();
    assert_eq!(n, 2, "the manager and w1");

    tracing::info!("--- a worker may not join raft nor send raft messages");
    for e in rt.block_on(raft_calls_with(&addr, worker.client_config().unwrap())) {
        assert!(e.contains("PermissionDenied"), "{e}");
    }
    for e in rt.block_on(raft_calls_with(&addr, anonymous_tls.clone())) {
        assert!(e.starts_with("Unauthenticated"), "{e}");
    }

    tracing::info!("--- an expired certificate signed by the right root: refused by TLS");
    assert_eq!(root.cert_pem.as_bytes(), &manager.root_pem[..]);
    let key = rcgen::KeyPair::from_pem(std::str::from_utf8(&worker.key_pem).unwrap()).unwrap();
    let identity = worker.identity().unwrap();
    let expired_pem = root
        .sign_key(
            &key,
            &Subject {
                node_id: &identity.node_id,
                role: NodeRole::Worker,
                cluster_id: &identity.cluster_id,
            },
            SystemTime::now() - Duration::from_secs(7200),
            Duration::from_secs(3600),
        )
        .unwrap();
    let expired = NodeCerts {
        cert_pem: expired_pem.into_bytes(),
        ..worker.clone()
    };
    let id: NodeIdentity = expired.identity().unwrap();
    assert!(id.not_after < SystemTime::now());
    let e = rt
        .block_on(session_with(&addr, expired.client_config().unwrap()))
        .unwrap_err();
    // The TLS alert ends the connection: the call fails as a transport error (how it
    // surfaces depends on timing), never with a status from a service.
    assert!(
        e.starts_with("connect")
            || e.contains("transport error")
            || e.starts_with("Cancelled")
            || e.starts_with("Unavailable"),
        "an expired certificate must fail the TLS handshake, not reach the service: {e}"
    );
    tracing::info!(error = %e, "expired certificate refused");
    let stale_dir = dir.path().join("stale");
    CertFiles::plain(certs::certs_dir(&stale_dir))
        .save(&expired)
        .unwrap();
    exits_saying(agent_with_token(&m, dir.path(), "stale", ""), "expired at");

    tracing::info!("--- node rm revokes: the removed node's certificate no longer opens sessions");
    agent.kill9();
    m.ctl_ok(&["node", "rm", "--force", &worker_id]);
    let e = rt
        .block_on(session_with(&addr, worker.client_config().unwrap()))
        .unwrap_err();
    assert!(
        e.contains("PermissionDenied") && e.contains("has been removed"),
        "{e}"
    );
    let restarted = agent_with_token(&m, dir.path(), "w1", "");
    wait_for("the removed agent to log its refusal", CONVERGE, || {
        restarted
            .output()
            .contains("has been removed")
            .then_some(())
    });
    assert!(!ready_nodes(&m).contains(&worker_id));
}

/// The certificate the manager at `addr` presents in a TLS handshake.
fn served_cert(addr: &str, root_pem: &[u8]) -> NodeIdentity {
    let config = certs::server_verified(root_pem).unwrap();
    let name = rustls::pki_types::ServerName::try_from(certs::SERVER_NAME).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .expect("TLS handshake with the manager");
    }
    let der = conn.peer_certificates().expect("the manager's certificate")[0].clone();
    NodeIdentity::from_der(&der).unwrap()
}

#[test]
fn s30_certificates_renew_before_they_expire() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(
        &dir.path().join("m"),
        &["--backend", "null", "--cert-expiry", "60s"],
    )
    .unwrap();
    let manager_id = m.node_id();
    let _agent = spawn_agent(&m, &dir.path().join("w1"), "w1").unwrap();
    let id = wait_for("w1 to be READY", CONVERGE, || {
        ready_nodes(&m).into_iter().find(|n| *n != manager_id)
    });
    let first = node_certs(&dir.path().join("w1")).identity().unwrap();
    let life = first.not_after.duration_since(first.not_before).unwrap();
    assert_eq!(life, Duration::from_secs(120), "60 s + 60 s backdated");
    let root = node_certs(&m.state_dir).root_pem;
    let served = served_cert(&m.addr(), &root);
    assert_eq!(served.node_id, manager_id);

    tracing::info!("--- renewed at 50–80 % of its life, before it expires");
    let renewed = wait_for(
        "the certificate to be renewed",
        Duration::from_secs(100),
        || {
            let now = node_certs(&dir.path().join("w1")).identity().ok()?;
            (now.not_after > first.not_after).then_some(now)
        },
    );
    assert!(
        SystemTime::now() < first.not_after,
        "renewed only after expiry"
    );
    assert_eq!(renewed.node_id, id);
    assert_eq!(renewed.role, NodeRole::Worker);
    let log = || std::fs::read_to_string(dir.path().join("w1.agent.log")).unwrap_or_default();
    assert!(log().contains("node certificate renewed"), "{}", log());
    wait_for(
        "the session to reconnect with the renewed certificate",
        CONVERGE,
        || log().contains("reconnecting with it").then_some(()),
    );

    tracing::info!("--- the manager serves its own renewed certificate without a restart");
    let now_served = wait_for(
        "the manager to present a renewed certificate",
        Duration::from_secs(60),
        || {
            let now = served_cert(&m.addr(), &root);
            (now.not_after > served.not_after).then_some(now)
        },
    );
    assert!(
        SystemTime::now() < served.not_after,
        "the manager's certificate was renewed and served before it expired"
    );
    assert_eq!(now_served.node_id, manager_id);
    assert_eq!(now_served.role, NodeRole::Manager);
    assert_eq!(ready_nodes(&m).len(), 2, "both nodes still READY");

    tracing::info!(
        "--- the session outlives the old certificate: calls made with it would be refused"
    );
    // The property is "still working once the old certificate is past": a point in time,
    // plus three heartbeat periods, after which a node whose calls were refused is DOWN.
    let past = first.not_after + Duration::from_secs(16);
    wait_for(
        "the old certificate to be long expired",
        Duration::from_secs(120),
        || (SystemTime::now() > past).then_some(()),
    );
    assert!(
        ready_nodes(&m).contains(&id),
        "w1 READY after its old certificate expired"
    );
    assert!(
        !log().contains("expired"),
        "no call of w1 was refused for an expired certificate:\n{}",
        log()
    );
}

#[test]
fn s35_a_manager_without_an_agent_renews_its_own_certificate() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(
        &dir.path().join("m"),
        &["--no-agent", "--cert-expiry", "60s"],
    )
    .unwrap();
    let root = node_certs(&m.state_dir).root_pem;
    let first = served_cert(&m.addr(), &root);
    let renewed = wait_for(
        "the manager to sign, save and serve its own renewed certificate",
        Duration::from_secs(60),
        || {
            let now = served_cert(&m.addr(), &root);
            (now.not_after > first.not_after).then_some(now)
        },
    );
    assert!(SystemTime::now() < first.not_after, "renewed before expiry");
    assert_eq!(renewed.node_id, first.node_id);
    assert_eq!(renewed.role, NodeRole::Manager);
    assert_eq!(
        node_certs(&m.state_dir).identity().unwrap().not_after,
        renewed.not_after,
        "the files hold what it serves"
    );
    // Its outgoing connections and its CLI keep working on the new certificate.
    m.ctl_ok(&["node", "ls"]);
}

#[test]
fn s40_an_autolocked_manager_starts_only_with_its_unlock_key() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("m");
    let mut m = ManagerProc::init(&state, &["--no-agent", "--autolock"]).unwrap();
    let key = m
        .ctl_ok(&["cluster", "unlock-key", "-q"])
        .trim()
        .to_string();
    UnlockKey::parse(&key).expect("swarmctl cluster unlock-key shows the key");
    assert!(m.proc.output().contains(&key), "init shows the key once");
    assert_eq!(
        m.ctl_json(&["cluster", "inspect"])["unlock_key"],
        "",
        "redacted"
    );
    m.push_empty_module("vault:1");
    m.ctl_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "autolock-secret-svc",
        "vault:1",
    ]);

    tracing::info!("--- stopped: the raft data at rest does not show the service");
    m.proc.kill9();
    let raft_db = state.join("raft").join("raft.redb");
    let dek = state.join("raft").join("dek.json");
    let before = (
        std::fs::read(&raft_db).unwrap(),
        std::fs::read(&dek).unwrap(),
        node_key_file(&state),
    );
    assert!(
        !before.0.windows(19).any(|w| w == b"autolock-secret-svc"),
        "the service name is readable in raft.redb"
    );
    assert!(
        !is_pem_private_key(&before.2),
        "the node key is stored as a readable PEM private key"
    );

    tracing::info!("--- no key, a wrong key: refused, nothing changed on disk");
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    exits_saying(
        m.spawn_run(&[], &log("nokey")).unwrap(),
        "this manager is locked",
    );
    let wrong = UnlockKey::generate().to_string();
    exits_saying(
        m.spawn_run(&["--unlock-key", &wrong], &log("wrong"))
            .unwrap(),
        "invalid unlock key",
    );
    exits_saying(
        m.spawn_run(&["--unlock-key", "SWMKEY-1-nope"], &log("garbled"))
            .unwrap(),
        "invalid unlock key",
    );
    let after = (
        std::fs::read(&raft_db).unwrap(),
        std::fs::read(&dek).unwrap(),
        node_key_file(&state),
    );
    assert!(
        before == after,
        "a refused start changed the raft data, the data key file or the node key"
    );

    tracing::info!("--- the right key: the manager runs with its data");
    m.restart_with(&["--unlock-key", &key]).unwrap();
    let services = m.ctl_json(&["service", "ls"]);
    assert_eq!(
        services[0]["spec"]["annotations"]["name"], "autolock-secret-svc",
        "{services}"
    );
    assert!(!is_pem_private_key(&node_key_file(&state)), "still sealed");

    tracing::info!("--- it serves mTLS with its sealed key: an agent joins and is READY");
    let _agent = spawn_agent(&m, &dir.path().join("w1"), "w1").unwrap();
    let manager_id = m.node_id();
    wait_for("w1 to be READY", CONVERGE, || {
        ready_nodes(&m).into_iter().find(|n| *n != manager_id)
    });
}

#[test]
fn s50_autolock_turned_on_rotated_and_off_on_a_running_swarm() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("m");
    let mut m = ManagerProc::init(&state, &["--no-agent"]).unwrap();
    let dek = state.join("raft").join("dek.json");
    let read_dek = || std::fs::read_to_string(&dek).unwrap();
    let log = |n: &str| dir.path().join(format!("{n}.log"));

    tracing::info!("--- update --autolock=true: a key is shown and the data key gets wrapped");
    let out = m.ctl_ok(&["cluster", "update", "--autolock=true"]);
    let first = m
        .ctl_ok(&["cluster", "unlock-key", "-q"])
        .trim()
        .to_string();
    assert!(out.contains(&first), "{out}");
    wait_for("the data key to be wrapped", CONVERGE, || {
        read_dek().contains("wrapped").then_some(())
    });
    wait_for("the node key to be sealed", CONVERGE, || {
        (!is_pem_private_key(&node_key_file(&state))).then_some(())
    });
    m.proc.kill9();
    exits_saying(
        m.spawn_run(&[], &log("locked")).unwrap(),
        "this manager is locked",
    );
    m.restart_with(&["--unlock-key", &first]).unwrap();

    tracing::info!("--- unlock-key --rotate: the old key stops working");
    let wrapped_by_first = read_dek();
    let node_key_before = node_key_file(&state);
    let second = m
        .ctl_ok(&["cluster", "unlock-key", "--rotate", "-q"])
        .trim()
        .to_string();
    assert_ne!(second, first);
    wait_for("the data key to be rewrapped", CONVERGE, || {
        (read_dek() != wrapped_by_first).then_some(())
    });
    wait_for("the node key to be sealed afresh", CONVERGE, || {
        (node_key_file(&state) != node_key_before).then_some(())
    });
    assert!(!is_pem_private_key(&node_key_file(&state)));
    m.proc.kill9();
    exits_saying(
        m.spawn_run(&["--unlock-key", &first], &log("old-key"))
            .unwrap(),
        "invalid unlock key",
    );
    m.restart_with(&["--unlock-key", &second]).unwrap();

    tracing::info!("--- update --autolock=false: starts without a key again");
    m.ctl_ok(&["cluster", "update", "--autolock=false"]);
    wait_for("the data key to be stored plain", CONVERGE, || {
        read_dek().contains("plain").then_some(())
    });
    wait_for("the node key to be plain again", CONVERGE, || {
        is_pem_private_key(&node_key_file(&state)).then_some(())
    });
    m.restart().unwrap();
    let e = m.ctl(&["cluster", "unlock-key"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("not autolocked"));
}
