//! Several managers as real processes on 127.0.0.1: joining raft with the manager token,
//! calls forwarded to the leader from any manager, `kill -9` of the leader without losing
//! an acknowledged write, quorum loss, a joiner catching up as a raft learner without
//! costing the leader its quorum, and a join retried until the remote is back.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use swarm_tests::cluster::{
    leader_node, local_service_names, local_services, managers, wait_identical,
};
use swarm_tests::{ManagerProc, Proc, bin, free_port, init_tracing, metric, spawn_agent, wait_for};

fn three_managers(dir: &Path, extra: &[&str]) -> Vec<ManagerProc> {
    managers(dir, 3, extra)
}

/// `service create -d --name web --replicas N app:1` through `m`.
fn create_web(m: &ManagerProc, replicas: u32) {
    let replicas = replicas.to_string();
    m.ctl_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        &replicas,
        "app:1",
    ]);
}

#[test]
fn m10_managers_join_replicate_and_forward_to_the_leader() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let ms = three_managers(dir.path(), &["--backend", "null"]);
    let (a, b, c) = (&ms[0], &ms[1], &ms[2]);

    // Every manager sees three managers and one leader (the first one).
    let nodes = c.ctl_json(&["node", "ls"]);
    let managers: Vec<&Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["manager_status"]["raft_id"].as_u64().unwrap_or(0) != 0)
        .collect();
    assert_eq!(managers.len(), 3, "three raft members: {nodes:#}");
    assert_eq!(leader_node(c).as_deref(), Some(a.node_id().as_str()));
    for m in &ms {
        assert!(
            m.ctl_ok(&["node", "ls"]).contains("Leader"),
            "node ls on {} shows the leader",
            m.addr()
        );
    }

    // A write through a follower is forwarded, and the writer reads it back at once.
    c.push_empty_module("app:1");
    create_web(c, 3);
    let web = c.ctl_json(&["service", "inspect", "web"]);
    assert_eq!(web[0]["spec"]["annotations"]["name"], "web", "{web:#}");
    let services = wait_identical(&[a, b, c], Duration::from_secs(20));
    assert_eq!(services.len(), 1, "{services:?}");

    // Tasks run on the managers' own agents, whose sessions the followers forward.
    wait_for("3 running tasks of web", Duration::from_secs(30), || {
        let running = b
            .tasks("web")
            .iter()
            .filter(|t| swarm_tests::state_of(t) == "RUNNING")
            .count();
        (running == 3).then_some(())
    });

    // A worker joins through a follower: the CA's write is forwarded to the leader.
    let _agent = spawn_agent(b, &dir.path().join("w"), "worker-1").unwrap();
    wait_for("worker-1 READY", Duration::from_secs(20), || {
        let nodes = a.ctl_json(&["node", "ls"]);
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| {
                n["description"]["hostname"] == "worker-1" && n["status"]["state"] == "NODE_READY"
            })
            .then_some(())
    });

    // Joining into a state dir that holds a manager is refused; a worker token makes no
    // manager.
    let join = |state_dir: &Path, token: &str| {
        std::process::Command::new(swarm_tests::bin("swarm-manager"))
            .args(["join", "--state-dir"])
            .arg(state_dir)
            .args([
                "--listen-addr",
                "127.0.0.1:0",
                "--no-agent",
                "--remote",
                &a.addr(),
            ])
            .args(["--join-token", token])
            .output()
            .unwrap()
    };
    let again = join(&c.state_dir, &a.manager_token());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(err.contains("already holds a swarm"), "{err}");
    let wrong = join(&dir.path().join("d"), &a.worker_token());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(err.contains("worker token"), "{err}");
}

#[test]
fn m20_killing_the_leader_loses_no_acknowledged_write() {
    kill_leaders_and_check_writes(3, 3);
}

#[test]
fn m21_five_managers_survive_two_leaders_down_at_once() {
    kill_leaders_and_check_writes(5, 2);
}

/// `n` managers; `rounds` times: kill -9 the leader (with 5 managers, the previous victim
/// stays down for the round, so two are down at once), write through the survivors until
/// writes are accepted, restart, and check every acknowledged write on every manager.
fn kill_leaders_and_check_writes(n: usize, rounds: usize) {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut ms = managers(dir.path(), n, &["--no-agent"]);
    ms[0].push_empty_module("app:1");
    let ids: Vec<String> = ms.iter().map(ManagerProc::node_id).collect();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut attempts = 0;
    let mut still_down: Option<usize> = None;

    for round in 0..rounds {
        let up: Vec<usize> = (0..n).filter(|i| Some(*i) != still_down).collect();
        let leader_id = wait_for("a leader", Duration::from_secs(20), || {
            up.iter().find_map(|i| leader_node(&ms[*i]))
        });
        let leader = ids.iter().position(|i| *i == leader_id).unwrap();
        ms[leader].proc.kill9();
        let killed_at = Instant::now();

        // Write through the survivors until writes are accepted again, and then some.
        let survivors: Vec<usize> = up.iter().copied().filter(|i| *i != leader).collect();
        let mut accepted_after_kill = 0;
        while accepted_after_kill < 5 {
            assert!(
                killed_at.elapsed() < Duration::from_secs(30),
                "round {round}: no write was accepted within 30 s of killing the leader"
            );
            let m = &ms[survivors[attempts % survivors.len()]];
            attempts += 1;
            let name = format!("s{round}-{attempts}");
            let out = m.ctl(&["service", "create", "-d", "--name", &name, "app:1"]);
            if out.status.success() {
                acked.insert(name);
                accepted_after_kill += 1;
            }
        }
        let new_leader = wait_for("a new leader", Duration::from_secs(20), || {
            leader_node(&ms[survivors[0]]).filter(|l| *l != leader_id)
        });
        assert_ne!(new_leader, leader_id, "round {round}");

        // With five managers the previous victim comes back only now; with three, at once.
        if let Some(previous) = still_down.take() {
            ms[previous].restart().unwrap();
        }
        if n >= 5 {
            still_down = Some(leader);
        } else {
            ms[leader].restart().unwrap();
        }
        let live: Vec<&ManagerProc> = (0..n)
            .filter(|i| Some(*i) != still_down)
            .map(|i| &ms[i])
            .collect();
        let services = wait_identical(&live, Duration::from_secs(30));
        let names: BTreeSet<String> = services.into_iter().map(|(n, _)| n).collect();
        let lost: Vec<&String> = acked.difference(&names).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged writes lost: {lost:?}"
        );
    }
    if let Some(previous) = still_down {
        ms[previous].restart().unwrap();
    }
    let all: Vec<&ManagerProc> = ms.iter().collect();
    let names: BTreeSet<String> = wait_identical(&all, Duration::from_secs(30))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        acked.is_subset(&names),
        "every acknowledged write on every manager"
    );
}

#[test]
fn m30_without_quorum_writes_are_refused_and_reads_answer() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut ms = three_managers(dir.path(), &["--no-agent"]);
    ms[2].push_empty_module("app:1");
    ms[2].ctl_ok(&["service", "create", "-d", "--name", "before", "app:1"]);
    wait_identical(&[&ms[0], &ms[1], &ms[2]], Duration::from_secs(20));
    ms[0].proc.kill9();
    ms[1].proc.kill9();

    let survivor = &ms[2];
    let refused = wait_for(
        "writes refused for lack of quorum",
        Duration::from_secs(20),
        || {
            let out = survivor.ctl(&["service", "create", "-d", "--name", "after", "app:1"]);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            (!out.status.success() && err.contains("no quorum")).then_some(err)
        },
    );
    assert!(refused.contains("majority"), "{refused}");
    let ls = survivor.ctl_ok(&["service", "ls"]);
    assert!(
        ls.contains("before"),
        "reads answer with the last state: {ls}"
    );

    // The lone survivor becomes a one-manager swarm with its data.
    let state_dir = survivor.state_dir.clone();
    ms[2].proc.kill9();
    let alone = ManagerProc::init(&state_dir, &["--no-agent", "--force-new-cluster"]).unwrap();
    alone.ctl_ok(&["service", "create", "-d", "--name", "after", "app:1"]);
    let names = local_service_names(&alone);
    assert_eq!(
        names,
        ["after", "before"].into_iter().map(String::from).collect()
    );
}

#[test]
fn m40_agents_fail_over_to_another_manager_without_restarting_tasks() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut ms = three_managers(dir.path(), &["--no-agent"]);
    // The agent knows only the first manager; its session teaches it the others.
    let _agent = spawn_agent(&ms[0], &dir.path().join("w"), "worker-1").unwrap();
    ms[0].push_empty_module("app:1");
    create_web(&ms[0], 2);
    let running = |m: &ManagerProc| -> Option<BTreeSet<String>> {
        let out = m.ctl(&["service", "ps", "web", "--format", "json"]);
        let tasks: Value = serde_json::from_slice(&out.stdout).ok()?;
        let ids: BTreeSet<String> = tasks
            .as_array()?
            .iter()
            .filter(|t| swarm_tests::state_of(t) == "RUNNING")
            .map(|t| t["id"].as_str().unwrap_or("").to_string())
            .collect();
        (ids.len() == 2).then_some(ids)
    };
    let before = wait_for("2 running tasks", Duration::from_secs(30), || {
        running(&ms[0])
    });

    ms[0].proc.kill9();
    // The agent opens a session with another manager (it learned them from its first
    // session), a new leader takes it, and the same two tasks keep running: none replaced.
    let log = dir.path().join("w.agent.log");
    let dead = ms[0].addr();
    wait_for(
        "the agent to open a session with another manager",
        Duration::from_secs(40),
        || {
            let log = std::fs::read_to_string(&log).ok()?;
            log.lines()
                .any(|l| {
                    l.contains("dispatcher session established")
                        && !l.contains(&format!("={dead} "))
                })
                .then_some(())
        },
    );
    let after = wait_for(
        "a new leader with worker-1 READY and its tasks running",
        Duration::from_secs(40),
        || {
            let out = ms[1].ctl(&["node", "ls", "--format", "json"]);
            let nodes: Value = serde_json::from_slice(&out.stdout).ok()?;
            let ready = nodes.as_array()?.iter().any(|n| {
                n["description"]["hostname"] == "worker-1" && n["status"]["state"] == "NODE_READY"
            });
            leader_node(&ms[1]).filter(|l| *l != ms[0].node_id())?;
            ready.then(|| running(&ms[1])).flatten()
        },
    );
    assert_eq!(after, before, "the same tasks run after the failover");
}

#[test]
fn m50_a_manager_joining_an_autolocked_swarm_locks_its_own_data() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let a = ManagerProc::init(&dir.path().join("a"), &["--no-agent", "--autolock"]).unwrap();
    let key = a
        .ctl_ok(&["cluster", "unlock-key", "-q"])
        .trim()
        .to_string();
    let mut b = ManagerProc::join(&dir.path().join("b"), &a, &["--no-agent"]).unwrap();
    b.push_empty_module("app:1");
    b.ctl_ok(&["service", "create", "-d", "--name", "kept", "app:1"]);
    let dek = swarm_manager::keymanager::DekFile::in_state_dir(&b.state_dir);
    wait_for(
        "the joined manager's data key to be wrapped",
        Duration::from_secs(20),
        || dek.is_locked().ok()?.then_some(()),
    );

    // Restarted without the key it refuses to start; with it, it has its data.
    b.proc.kill9();
    let mut locked = b.spawn_run(&[], &dir.path().join("b.locked.log")).unwrap();
    let status = wait_for(
        "the locked manager to exit",
        Duration::from_secs(20),
        || locked.child.try_wait().unwrap(),
    );
    assert!(!status.success());
    assert!(
        locked.output().contains("this manager is locked"),
        "{}",
        locked.output()
    );
    b.restart_with(&["--unlock-key", &key]).unwrap();
    wait_for(
        "b to hold the service again",
        Duration::from_secs(20),
        || {
            local_services(&b)
                .iter()
                .any(|(n, _)| n == "kept")
                .then_some(())
        },
    );
}

/// Tasks in the store of m60: enough that installing its snapshot blocks the joiner's raft
/// loop for longer than an election timeout (1 s), yet built in seconds.
const M60_TASKS: u64 = 50_000;

#[test]
fn m60_a_joiner_installing_a_large_snapshot_does_not_cost_the_leader_its_quorum() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let a = ManagerProc::init(
        &dir.path().join("a"),
        &["--no-agent", "--metrics-addr", &metrics],
    )
    .unwrap();
    a.push_empty_module("app:1");

    tracing::info!("--- {M60_TASKS} pending tasks, behind a snapshot with no log kept");
    a.create_replicated("big", M60_TASKS, &[], "app:1");
    wait_for_tasks("a", &metrics, M60_TASKS, Duration::from_secs(60));
    a.snapshot_without_log(&metrics);

    tracing::info!("--- b joins: a learner while it installs the snapshot");
    let b_metrics = format!("127.0.0.1:{}", free_port());
    let b = ManagerProc::join(
        &dir.path().join("b"),
        &a,
        &["--no-agent", "--metrics-addr", &b_metrics],
    )
    .unwrap();
    let a_id = a.node_id();
    let mut writes = 0;
    let started = Instant::now();
    while metric(&b_metrics, r#"swarm_store_objects{table="tasks"}"#) != Some(M60_TASKS as f64) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "b did not hold the {M60_TASKS} tasks within 90 s"
        );
        // Each write must be acknowledged (ctl_ok fails the test otherwise): a two-member
        // quorum would have been lost while b's raft loop was busy.
        a.ctl_ok(&[
            "node",
            "update",
            "--label-add",
            &format!("w={writes}"),
            &a_id,
        ]);
        writes += 1;
    }
    tracing::info!(writes, took = ?started.elapsed(), "--- b caught up");
    wait_for("b to be promoted to voter", Duration::from_secs(30), || {
        b.proc
            .output()
            .contains("joined the swarm as a manager")
            .then_some(())
    });
    assert!(
        !a.proc.output().contains("lost leadership"),
        "a lost leadership while b joined:\n{}",
        a.proc.output()
    );
    assert!(
        b.proc
            .output()
            .contains("raft snapshot from the leader installed"),
        "b caught up through a snapshot:\n{}",
        b.proc.output()
    );
    // Both are voters now: a write still commits with the two of them.
    b.ctl_ok(&["node", "update", "--label-add", "after=join", &a_id]);
}

#[test]
fn m61_a_join_started_while_the_remote_restarts_succeeds_once_it_is_back() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut a = ManagerProc::init(&dir.path().join("a"), &["--no-agent"]).unwrap();
    let token = a.manager_token();

    tracing::info!("--- a is down when b starts joining");
    a.proc.kill9();
    let b_dir = dir.path().join("b");
    let args: Vec<String> = [
        "join",
        "--state-dir",
        &b_dir.display().to_string(),
        "--listen-addr",
        &format!("127.0.0.1:{}", free_port()),
        "--no-agent",
        "--remote",
        &a.addr(),
        "--join-token",
        &token,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let b = Proc::spawn(
        "swarm-manager",
        &bin("swarm-manager"),
        &args,
        &dir.path().join("b.join.log"),
    )
    .unwrap();
    wait_for("b to retry its join", Duration::from_secs(20), || {
        b.output().contains("failed; retrying").then_some(())
    });

    tracing::info!("--- a is back: b's join goes through");
    a.restart().unwrap();
    wait_for("b to join as a voter", Duration::from_secs(60), || {
        b.output()
            .contains("joined the swarm as a manager")
            .then_some(())
    });
    let nodes = a.ctl_json(&["node", "ls"]);
    let members = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["manager_status"]["raft_id"].as_u64().unwrap_or(0) != 0)
        .count();
    assert_eq!(members, 2, "two raft members: {nodes:#}");
}

/// Waits until the manager serving metrics at `addr` holds `n` tasks.
fn wait_for_tasks(who: &str, addr: &str, n: u64, deadline: Duration) {
    wait_for(&format!("{n} tasks in {who}'s store"), deadline, || {
        (metric(addr, r#"swarm_store_objects{table="tasks"}"#)? == n as f64).then_some(())
    });
}
