//! End to end, one manager: real `swarm-manager`, `swarm-agent` and `swarmctl` processes on
//! 127.0.0.1, temp state dirs, deadlines on every wait.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use swarm_tests::{ManagerProc, desired_of, spawn_agent, state_of, wait_for};

const CONVERGE: Duration = Duration::from_secs(30);

/// Task id → (state, meta version) of a service's tasks.
fn task_versions(m: &ManagerProc, service: &str) -> BTreeMap<String, (String, u64)> {
    m.tasks(service)
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                (state_of(t), t["meta"]["version"].as_u64().unwrap()),
            )
        })
        .collect()
}

fn running(tasks: &[Value]) -> usize {
    tasks
        .iter()
        .filter(|t| state_of(t) == "RUNNING" && desired_of(t) == "RUNNING")
        .count()
}

fn node_id(m: &ManagerProc, hostname: &str) -> Option<String> {
    let nodes = m.ctl_json(&["node", "ls"]);
    nodes.as_array()?.iter().find_map(|n| {
        (n["description"]["hostname"] == hostname).then(|| n["id"].as_str().unwrap().to_string())
    })
}

/// Starts a standalone agent named `hostname` and waits until it has joined; returns the
/// process and its node id.
fn join_worker(
    m: &ManagerProc,
    dir: &std::path::Path,
    hostname: &str,
) -> (swarm_tests::Proc, String) {
    let agent = spawn_agent(m, &dir.join(hostname), hostname).unwrap();
    let id = wait_for(&format!("{hostname} to join"), CONVERGE, || {
        node_id(m, hostname)
    });
    (agent, id)
}

/// `swarmctl service create -d --name NAME --replicas N [extra…] NAME:1`; returns its output
/// (the new service id).
fn create_service(m: &ManagerProc, name: &str, replicas: u32, extra: &[&str]) -> String {
    let artifact = format!("{name}:1");
    // The manager pins the artifact to a digest, so it must be in the store.
    m.push_empty_module(&artifact);
    m.create_replicated(name, replicas.into(), extra, &artifact)
}

#[test]
fn t10_create_scale_reap_and_survive_kill9() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut m = ManagerProc::init(
        &dir.path().join("m"),
        &["--task-history-limit", "1", "--backend", "null"],
    )
    .unwrap();

    tracing::info!("--- create a service of 5 replicas");
    let id = create_service(&m, "web", 5, &[]);
    assert_eq!(id.trim().len(), 25, "service create prints the id: {id:?}");
    wait_for("5 tasks RUNNING", CONVERGE, || {
        (running(&m.tasks("web")) == 5).then_some(())
    });
    let slots: Vec<u64> = {
        let mut s: Vec<u64> = m
            .tasks("web")
            .iter()
            .map(|t| t["slot"].as_u64().unwrap())
            .collect();
        s.sort();
        s
    };
    assert_eq!(slots, [1, 2, 3, 4, 5]);

    tracing::info!("--- scale to 2: 3 tasks shut down, then reaped");
    m.ctl_ok(&["service", "scale", "-d", "web=2"]);
    wait_for(
        "scale-down to leave exactly 2 tasks (3 removed and reaped)",
        CONVERGE,
        || {
            let tasks = m.tasks("web");
            (tasks.len() == 2 && running(&tasks) == 2).then_some(())
        },
    );

    tracing::info!("--- kill -9 the manager, then run: same services, tasks and versions");
    let service_before = m.ctl_json(&["service", "inspect", "web"]);
    let tasks_before = task_versions(&m, "web");
    m.restart().unwrap();
    assert_eq!(m.ctl_json(&["service", "inspect", "web"]), service_before);
    // Give the in-process agent time to reconnect and re-report: nothing may change.
    wait_for("the node to be READY again after restart", CONVERGE, || {
        let nodes = m.ctl_json(&["node", "ls"]);
        (nodes[0]["status"]["state"] == "NODE_READY").then_some(())
    });
    let tasks_after = task_versions(&m, "web");
    assert_eq!(
        tasks_after, tasks_before,
        "tasks or their versions changed across a restart"
    );

    tracing::info!("--- the restarted manager still orchestrates");
    m.ctl_ok(&["service", "scale", "-d", "web=3"]);
    wait_for("3 tasks RUNNING after restart", CONVERGE, || {
        (running(&m.tasks("web")) == 3).then_some(())
    });
}

#[test]
fn t20_init_over_an_existing_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("m");
    let m = ManagerProc::init(&state, &["--backend", "null"]).unwrap();
    drop(m);
    let out = std::process::Command::new(swarm_tests::bin("swarm-manager"))
        .args(["init", "--state-dir"])
        .arg(&state)
        .args(["--listen-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already holds a swarm"),
        "unexpected error: {err}"
    );
    assert!(
        err.contains("--force-new-cluster"),
        "the error should say how to proceed: {err}"
    );
}

#[test]
fn t30_standalone_agent_joins_and_runs_tasks() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();

    tracing::info!("--- a wrong token is refused");
    let bad = swarm_tests::Proc::spawn(
        "bad-agent",
        &swarm_tests::bin("swarm-agent"),
        &[
            "--manager".into(),
            m.addr(),
            "--join-token".into(),
            "SWMTKN-1-wrong".into(),
            "--state-dir".into(),
            dir.path().join("bad").display().to_string(),
            "--hostname".into(),
            "intruder".into(),
            "--backend".into(),
            "null".into(),
        ],
        &dir.path().join("bad.log"),
    )
    .unwrap();
    wait_for(
        "the agent with a wrong token to log the refusal",
        CONVERGE,
        || bad.output().contains("invalid join token").then_some(()),
    );
    assert!(
        node_id(&m, "intruder").is_none(),
        "a node joined with a wrong token"
    );
    drop(bad);

    tracing::info!("--- the right token joins; tasks land on the agent");
    let (_agent, worker) = join_worker(&m, dir.path(), "worker-1");
    create_service(&m, "api", 3, &[]);
    wait_for("3 tasks RUNNING on worker-1", CONVERGE, || {
        let tasks = m.tasks("api");
        (running(&tasks) == 3 && tasks.iter().all(|t| t["node_id"] == worker.as_str()))
            .then_some(())
    });
}

#[test]
fn t40_drain_moves_tasks_to_other_nodes() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--backend", "null"]).unwrap();
    let (_agent, worker) = join_worker(&m, dir.path(), "worker-1");
    create_service(&m, "web", 4, &[]);
    wait_for("4 tasks RUNNING spread over both nodes", CONVERGE, || {
        let tasks = m.tasks("web");
        let on_worker = tasks
            .iter()
            .filter(|t| t["node_id"] == worker.as_str() && state_of(t) == "RUNNING")
            .count();
        (running(&tasks) == 4 && on_worker == 2).then_some(())
    });

    tracing::info!("--- drain worker-1");
    m.ctl_ok(&["node", "update", "--availability", "drain", "worker-1"]);
    wait_for(
        "all 4 running tasks off worker-1, its old tasks shut down",
        CONVERGE,
        || {
            let tasks = m.tasks("web");
            let live_on_worker = tasks
                .iter()
                .filter(|t| t["node_id"] == worker.as_str() && state_of(t) != "SHUTDOWN")
                .count();
            (running(&tasks) == 4 && live_on_worker == 0).then_some(())
        },
    );
    let node = m.ctl_json(&["node", "inspect", "worker-1"]);
    assert_eq!(node[0]["spec"]["availability"], "DRAIN");
}

#[test]
fn t45_a_dead_node_goes_down_and_its_tasks_move() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(
        &dir.path().join("m"),
        &["--dispatcher-heartbeat", "500ms", "--backend", "null"],
    )
    .unwrap();
    let (mut agent, worker) = join_worker(&m, dir.path(), "worker-1");
    create_service(&m, "web", 2, &["--restart-delay", "0s"]);
    wait_for("a task RUNNING on worker-1", CONVERGE, || {
        let tasks = m.tasks("web");
        (running(&tasks) == 2 && tasks.iter().any(|t| t["node_id"] == worker.as_str()))
            .then_some(())
    });
    tracing::info!("--- kill -9 the agent: DOWN after 3 missed heartbeats, tasks rescheduled");
    agent.kill9();
    wait_for("worker-1 DOWN", CONVERGE, || {
        let n = m.ctl_json(&["node", "inspect", "worker-1"]);
        (n[0]["status"]["state"] == "NODE_DOWN").then_some(())
    });
    wait_for("2 tasks RUNNING off worker-1", CONVERGE, || {
        let tasks = m.tasks("web");
        let alive: Vec<&Value> = tasks
            .iter()
            .filter(|t| desired_of(t) == "RUNNING")
            .collect();
        (running(&tasks) == 2 && alive.iter().all(|t| t["node_id"] != worker.as_str()))
            .then_some(())
    });
}

#[test]
fn t50_agent_kill9_and_restart_readopts_its_tasks() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let state = dir.path().join("a1");
    let mut agent = spawn_agent(&m, &state, "worker-1").unwrap();
    let worker = wait_for("worker-1 to join", CONVERGE, || node_id(&m, "worker-1"));
    create_service(&m, "db", 3, &[]);
    wait_for("3 tasks RUNNING", CONVERGE, || {
        (running(&m.tasks("db")) == 3).then_some(())
    });
    let before: Vec<String> = task_versions(&m, "db").into_keys().collect();

    tracing::info!("--- kill -9 the agent and start it again on the same state dir");
    agent.kill9();
    let _agent = spawn_agent(&m, &state, "worker-1").unwrap();
    wait_for(
        "the restarted agent to re-adopt its tasks from the task DB",
        CONVERGE,
        || {
            let log =
                std::fs::read_to_string(state.with_extension("agent.log")).unwrap_or_default();
            log.contains("adopted=3").then_some(())
        },
    );
    wait_for("a session from the restarted agent", CONVERGE, || {
        let n = m.ctl_json(&["node", "inspect", "worker-1"]);
        (n[0]["status"]["state"] == "NODE_READY").then_some(())
    });
    let tasks = m.tasks("db");
    let after: Vec<String> = task_versions(&m, "db").into_keys().collect();
    assert_eq!(after, before, "the restart created or lost tasks");
    assert_eq!(running(&tasks), 3);
    assert!(tasks.iter().all(|t| t["node_id"] == worker.as_str()));
    assert_eq!(
        node_id(&m, "worker-1").as_deref(),
        Some(worker.as_str()),
        "the agent rejoined as a new node"
    );
}

#[test]
fn t60_a_corrupted_raft_db_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("m");
    let mut m = ManagerProc::init(&state, &["--backend", "null"]).unwrap();
    create_service(&m, "web", 1, &[]);
    let status = m.proc.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "SIGTERM should stop the manager cleanly: {status:?}"
    );
    let db = state.join("raft").join("raft.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, bytes).unwrap();
    let out = std::process::Command::new(swarm_tests::bin("swarm-manager"))
        .args(["run", "--state-dir"])
        .arg(&state)
        .args(["--listen-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "run started on a corrupted raft DB");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupted"), "unclear error: {err}");
    assert!(
        !state.join("control.sock").exists(),
        "a refused manager must not serve"
    );
}

#[test]
fn t70_force_new_cluster_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("m");
    let mut m = ManagerProc::init(&state, &["--backend", "null"]).unwrap();
    create_service(&m, "keep", 2, &[]);
    let before = m.ctl_json(&["service", "inspect", "keep"]);
    let status = m.proc.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "SIGTERM should stop the manager cleanly: {status:?}"
    );
    let m = ManagerProc::init(&state, &["--force-new-cluster", "--backend", "null"]).unwrap();
    assert_eq!(
        m.ctl_json(&["service", "inspect", "keep"]),
        before,
        "--force-new-cluster lost or changed the data"
    );
    wait_for("the kept service to run again", CONVERGE, || {
        (running(&m.tasks("keep")) == 2).then_some(())
    });
}

#[test]
fn t80_metrics_endpoint_serves_store_and_raft_figures() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", swarm_tests::free_port());
    let m = ManagerProc::init(
        &dir.path().join("m"),
        &["--metrics-addr", &metrics, "--backend", "null"],
    )
    .unwrap();
    create_service(&m, "web", 3, &[]);
    wait_for("3 tasks RUNNING", CONVERGE, || {
        (running(&m.tasks("web")) == 3).then_some(())
    });
    let body = wait_for("the running gauge to reach 3", CONVERGE, || {
        let b = swarm_tests::scrape_metrics(&metrics)?;
        b.contains("swarm_tasks{state=\"running\"} 3").then_some(b)
    });
    for name in [
        "swarm_raft_commit_seconds_count",
        "swarm_raft_applied_entries_total",
        "swarm_store_objects{table=\"services\"} 1",
        "swarm_scheduler_placements_total",
        "swarm_dispatcher_sessions 1",
    ] {
        assert!(body.contains(name), "metric {name} missing from:\n{body}");
    }
}
