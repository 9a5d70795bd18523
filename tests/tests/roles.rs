//! Node roles across real processes on 127.0.0.1: `swarm-agent` workers promoted with
//! `node promote` start a manager in their own process and join raft; demoted managers
//! (a promoted worker, and the leader itself) leave raft and carry on as workers; a demotion
//! that would lose quorum is refused; every node's tasks keep running through it all; and
//! restarts resume each node in its current role. Every wait has a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use swarm_tests::{
    ManagerProc, Proc, bin, free_port, init_tracing, state_of, stdout_ok, swarmctl, wait_for,
};

const CONVERGE: Duration = Duration::from_secs(30);

/// A `swarm-agent` process on the null backend, with a listen address for when it is
/// promoted.
struct AgentNode {
    proc: Proc,
    dir: PathBuf,
    args: Vec<String>,
}

impl AgentNode {
    fn spawn(manager: &ManagerProc, root: &Path, hostname: &str) -> Self {
        let dir = root.join(hostname);
        let args: Vec<String> = [
            "--manager",
            &manager.addr(),
            "--join-token",
            &manager.worker_token(),
            "--state-dir",
            &dir.display().to_string(),
            "--hostname",
            hostname,
            "--backend",
            "null",
            "--listen-addr",
            &format!("127.0.0.1:{}", free_port()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let proc = Self::start(&dir, &args);
        Self { proc, dir, args }
    }

    fn start(dir: &Path, args: &[String]) -> Proc {
        Proc::spawn(
            "swarm-agent",
            &bin("swarm-agent"),
            args,
            &dir.with_extension("log"),
        )
        .unwrap()
    }

    /// kill -9, then the same command line again.
    fn restart(&mut self) {
        self.proc.kill9();
        self.proc = Self::start(&self.dir, &self.args);
    }

    fn ctl(&self, args: &[&str]) -> Output {
        swarmctl(&self.dir.join("control.sock"), args)
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        stdout_ok(args, self.ctl(args))
    }

    /// The role in the node's state.json (none before it was ever a manager).
    fn state_role(&self) -> Option<String> {
        state_role(&self.dir)
    }
}

fn state_role(dir: &Path) -> Option<String> {
    let bytes = std::fs::read(dir.join("state.json")).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["role"].as_str().map(str::to_string)
}

/// What one node looks like in `node ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    role: String,
    raft_member: bool,
    leader: bool,
    reachable: bool,
    /// A raft learner, not yet a voter.
    catching_up: bool,
    ready: bool,
}

/// swarmctl `args… --format json` through `ctl`, as a list (none when it fails).
fn json_list(ctl: impl Fn(&[&str]) -> Output, args: &[&str]) -> Option<Vec<Value>> {
    let args: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
    let out = ctl(&args);
    if !out.status.success() {
        return None;
    }
    match serde_json::from_slice(&out.stdout).ok()? {
        Value::Array(v) => Some(v),
        _ => None,
    }
}

/// `node ls` through `ctl`, by hostname.
fn nodes(ctl: impl Fn(&[&str]) -> Output) -> Option<BTreeMap<String, Seen>> {
    Some(
        json_list(ctl, &["node", "ls"])?
            .iter()
            .map(|n| {
                let ms = &n["manager_status"];
                (
                    n["description"]["hostname"].as_str().unwrap_or("").into(),
                    Seen {
                        role: n["role"].as_str().unwrap_or("").into(),
                        raft_member: ms["raft_id"].as_u64().unwrap_or(0) != 0,
                        leader: ms["leader"].as_bool() == Some(true),
                        reachable: ms["reachable"].as_bool() == Some(true),
                        catching_up: ms["catching_up"].as_bool() == Some(true),
                        ready: n["status"]["state"] == "NODE_READY",
                    },
                )
            })
            .collect(),
    )
}

/// Waits until `node ls` (through `ctl`) shows exactly `managers` as reachable raft members
/// with one leader among them, every other node as a ready worker; returns the leader.
fn wait_managers(ctl: impl Fn(&[&str]) -> Output, managers: &[&str]) -> String {
    let want: BTreeSet<&str> = managers.iter().copied().collect();
    let deadline = std::time::Instant::now() + CONVERGE;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        if let Some(seen) = nodes(&ctl) {
            let ok = seen.iter().all(|(host, s)| {
                if want.contains(host.as_str()) {
                    s.role == "MANAGER" && s.raft_member && s.reachable && !s.catching_up
                } else {
                    s.role == "WORKER" && !s.raft_member && s.ready
                }
            });
            let leaders: Vec<&String> = seen
                .iter()
                .filter(|(_, s)| s.leader)
                .map(|(h, _)| h)
                .collect();
            if ok && leaders.len() == 1 {
                return leaders[0].clone();
            }
            last = Some(seen);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {CONVERGE:?} waiting for node ls to show managers {want:?} reachable \
         with one leader, the rest ready workers; last seen: {last:#?}"
    );
}

/// The ids of `service`'s running tasks, as `ctl` lists them.
fn running(ctl: impl Fn(&[&str]) -> Output, service: &str) -> Option<BTreeSet<String>> {
    Some(
        json_list(ctl, &["service", "ps", service])?
            .iter()
            .filter(|t| state_of(t) == "RUNNING")
            .map(|t| t["id"].as_str().unwrap_or("").to_string())
            .collect(),
    )
}

/// `service create -d --name NAME --replicas N app:1` through `ctl`.
fn create(ctl: impl Fn(&[&str]) -> Output, name: &str, replicas: &str) {
    let args = [
        &swarm_tests::create_detached(name, replicas)[..],
        &["app:1"],
    ]
    .concat();
    stdout_ok(&args, ctl(&args));
}

/// A write through `via` (a manager, maybe a follower) succeeds, and `reader` still lists
/// exactly the running tasks `tasks` of web: nothing was replaced.
fn write_and_check_tasks(
    via: &AgentNode,
    reader: &AgentNode,
    name: &str,
    tasks: &BTreeSet<String>,
) {
    create(|a| via.ctl(a), name, "0");
    assert_eq!(
        running(|a| reader.ctl(a), "web").as_ref(),
        Some(tasks),
        "no task replaced"
    );
}

#[test]
fn r10_promoted_workers_become_managers_and_demoted_managers_workers() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut m0 = ManagerProc::init(&dir.path().join("m0"), &["--backend", "null"]).unwrap();
    let mut a1 = AgentNode::spawn(&m0, dir.path(), "a1");
    let a2 = AgentNode::spawn(&m0, dir.path(), "a2");
    wait_managers(|a| m0.ctl(a), &["manager-1"]);

    // Six tasks over the three nodes: they must run on, untouched, through every change.
    m0.push_empty_module("app:1");
    create(|a| m0.ctl(a), "web", "6");
    let tasks = wait_for("6 running tasks of web", CONVERGE, || {
        running(|a| m0.ctl(a), "web").filter(|t| t.len() == 6)
    });

    tracing::info!("--- promote both workers: each starts a manager and joins raft");
    m0.ctl_ok(&["node", "promote", "a1", "a2"]);
    let leader = wait_managers(|a| m0.ctl(a), &["manager-1", "a1", "a2"]);
    assert_eq!(leader, "manager-1", "promotion moves no leadership");
    for a in [&a1, &a2] {
        assert_eq!(a.state_role().as_deref(), Some("manager"));
        // Its own control socket answers, and writes through it are forwarded.
        wait_for("the promoted node's control socket", CONVERGE, || {
            a.ctl(&["node", "ls"]).status.success().then_some(())
        });
    }
    write_and_check_tasks(&a2, &a1, "via-a2", &tasks);

    tracing::info!("--- demote a promoted worker: it leaves raft and keeps running as a worker");
    a1.ctl_ok(&["node", "demote", "a2"]);
    wait_managers(|a| a1.ctl(a), &["manager-1", "a1"]);
    wait_for(
        "a2's state.json to say worker and its raft data to go",
        CONVERGE,
        || {
            (a2.state_role().as_deref() == Some("worker") && !a2.dir.join("raft").exists())
                .then_some(())
        },
    );
    wait_for("a2's control socket to close", CONVERGE, || {
        (!a2.ctl(&["node", "ls"]).status.success()).then_some(())
    });

    tracing::info!("--- a demotion that would lose quorum is refused");
    // Promote a2 again (a demoted node joins afresh), stop a1, and try to demote a2: the
    // leader would be left alone with the unreachable a1.
    a1.ctl_ok(&["node", "promote", "a2"]);
    wait_managers(|a| a1.ctl(a), &["manager-1", "a1", "a2"]);
    a1.proc.kill9();
    wait_for("the leader to see a1 unreachable", CONVERGE, || {
        let seen = nodes(|a| m0.ctl(a))?;
        (!seen.get("a1")?.reachable).then_some(())
    });
    let refused = wait_for("a demotion refused for quorum", CONVERGE, || {
        let out = m0.ctl(&["node", "demote", "a2"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && err.contains("would lose quorum")).then_some(err)
    });
    assert!(
        refused.contains("only 1 of the 2 remaining managers are reachable"),
        "{refused}"
    );
    a1.restart();
    tracing::info!("--- a restarted promoted worker resumes as a manager");
    wait_managers(|a| m0.ctl(a), &["manager-1", "a1", "a2"]);

    tracing::info!("--- demote the leader itself: it hands over leadership first");
    m0.ctl_ok(&["node", "demote", "manager-1"]);
    let leader = wait_managers(|a| a1.ctl(a), &["a1", "a2"]);
    assert_ne!(leader, "manager-1");
    wait_for("manager-1's state.json to say worker", CONVERGE, || {
        (state_role(&m0.state_dir).as_deref() == Some("worker")).then_some(())
    });
    write_and_check_tasks(&a2, &a1, "after", &tasks);

    tracing::info!("--- the demoted manager, restarted with `swarm-manager run`, is a worker");
    let log = m0.state_dir.with_extension("rerun.log");
    m0.proc.kill9();
    let _worker = m0.spawn_run(&[], &log).unwrap();
    wait_for(
        "the restarted demoted manager to report as a ready worker",
        CONVERGE,
        || {
            let seen = nodes(|a| a1.ctl(a))?;
            let m = seen.get("manager-1")?;
            (m.ready && m.role == "WORKER" && !m.raft_member).then_some(())
        },
    );
    wait_managers(|a| a1.ctl(a), &["a1", "a2"]);
    wait_for("web's 6 tasks running again", CONVERGE, || {
        running(|a| a2.ctl(a), "web").filter(|t| t.len() == 6)
    });
}
