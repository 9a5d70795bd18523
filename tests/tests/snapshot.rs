//! Managers joining a large swarm: the leader's log is compacted behind a snapshot, so a
//! joining manager receives the store as one raft snapshot streamed in chunks of at most
//! 1 MiB (`manager/src/raft/chunks.rs`), and installs it instead of replaying the log.

use std::path::Path;
use std::time::{Duration, Instant};

use swarm_tests::{ManagerProc, free_port, init_tracing, metric, wait_for};

/// Tasks in the store the joining managers catch up on.
const TASKS: u64 = 100_000;

/// The size of one snapshot chunk on the wire.
const CHUNK: f64 = 1024.0 * 1024.0;

/// A manager without an agent (no node can run the tasks: they stay pending), serving its
/// metrics on a fresh loopback port, which is returned with it.
fn manager(dir: &Path, name: &str, join: Option<&ManagerProc>) -> (ManagerProc, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let flags = ["--no-agent", "--metrics-addr", metrics.as_str()];
    let state_dir = dir.join(name);
    let m = match join {
        None => ManagerProc::init(&state_dir, &flags),
        Some(remote) => Ok(join_when_led(&state_dir, remote, &flags)),
    };
    (m.unwrap_or_else(|e| panic!("{name}: {e:#}")), metrics)
}

/// `swarm-manager join`, tried again while the swarm has no leader to take the join: the
/// leader of two managers steps down while the other one is busy installing a large
/// snapshot or applying a large write (check-quorum), until they elect one again.
fn join_when_led(state_dir: &Path, remote: &ManagerProc, flags: &[&str]) -> ManagerProc {
    let mut last = String::new();
    wait_for(
        &format!("a join through {} to be taken", remote.addr()),
        Duration::from_secs(60),
        || match ManagerProc::join(state_dir, remote, flags) {
            Ok(m) => Some(m),
            Err(e) => {
                last = format!("{e:#}");
                let leaderless = last.contains("no quorum") || last.contains("retry");
                assert!(leaderless, "the join failed: {last}");
                let why = last.lines().rev().find(|l| l.contains("joining through"));
                tracing::info!(
                    error = why.unwrap_or_default().trim(),
                    "join refused; again"
                );
                None
            }
        },
    )
}

/// Waits until the manager serving metrics at `addr` holds [`TASKS`] pending tasks in its
/// own store.
fn wait_for_all_tasks(who: &str, addr: &str, deadline: Duration) {
    wait_for(
        &format!("{TASKS} pending tasks in {who}'s store"),
        deadline,
        || {
            let tasks = metric(addr, r#"swarm_store_objects{table="tasks"}"#)?;
            let pending = metric(addr, r#"swarm_tasks{state="pending"}"#)?;
            (tasks == TASKS as f64 && pending == TASKS as f64).then_some(())
        },
    );
}

/// The sample `swarm_raft_snapshots_total{event="EVENT"}`.
fn snapshots(event: &str) -> String {
    format!(r#"swarm_raft_snapshots_total{{event="{event}"}}"#)
}

/// The sum of the sample `name` over the managers serving metrics at `addrs` (0 where a
/// manager has none yet).
fn total<'a>(addrs: impl IntoIterator<Item = &'a String>, name: &str) -> f64 {
    addrs
        .into_iter()
        .map(|a| metric(a, name).unwrap_or(0.0))
        .sum()
}

#[test]
fn s10_joining_managers_catch_up_on_100k_tasks_through_a_chunked_snapshot() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (first, first_metrics) = manager(dir.path(), "m0", None);
    first.push_empty_module("app:1");

    tracing::info!("--- {TASKS} tasks");
    let started = Instant::now();
    first.create_replicated("big", TASKS, &[], "app:1");
    wait_for_all_tasks("m0", &first_metrics, Duration::from_secs(60));
    tracing::info!(took = ?started.elapsed(), "--- {TASKS} pending tasks in the store");

    // A snapshot of everything, and no log kept behind it: a new member cannot be sent the
    // log from its start.
    let taken = metric(&first_metrics, &snapshots("taken")).unwrap_or(0.0);
    assert_eq!(taken, 0.0, "no snapshot yet");
    first.snapshot_without_log(&first_metrics);

    // Each joins through m0 (which forwards to whoever leads by then).
    let mut managers = vec![(first, first_metrics)];
    for name in ["m1", "m2"] {
        tracing::info!("--- {name} joins");
        let sent_before = total(managers.iter().map(|(_, a)| a), &snapshots("sent"));
        let at = Instant::now();
        let (m, addr) = manager(dir.path(), name, Some(&managers[0].0));
        let joined = at.elapsed();
        wait_for_all_tasks(name, &addr, Duration::from_secs(90));
        let took = at.elapsed();
        assert!(
            metric(&addr, &snapshots("installed")).unwrap_or(0.0) >= 1.0,
            "{name} caught up through a snapshot, not the log"
        );
        let sent = total(managers.iter().map(|(_, a)| a), &snapshots("sent"));
        assert!(sent > sent_before, "{name} was sent a snapshot");
        tracing::info!(
            ?took,
            after_join = ?(took - joined),
            "--- {name} holds all {TASKS} tasks"
        );
        managers.push((m, addr));
    }

    let addrs: Vec<&String> = managers.iter().map(|(_, a)| a).collect();
    let sent = total(addrs.iter().copied(), &snapshots("sent"));
    let chunks = total(
        addrs.iter().copied(),
        "swarm_raft_snapshot_chunks_sent_total",
    );
    let bytes = total(
        addrs.iter().copied(),
        "swarm_raft_snapshot_sent_bytes_total",
    );
    tracing::info!(
        snapshots = sent,
        chunks,
        mib_per_snapshot = bytes / sent / CHUNK,
        "--- snapshots streamed"
    );
    assert!(
        chunks >= 2.0 * sent && chunks >= (bytes / CHUNK).floor(),
        "each snapshot of {TASKS} tasks went in several chunks of at most 1 MiB: {sent} \
         snapshots, {chunks} chunks, {bytes} bytes"
    );
    assert!(
        bytes / sent > CHUNK,
        "a snapshot of {TASKS} tasks is larger than one chunk: {bytes} bytes in {sent}"
    );

    // The joined managers are members like the others: a write through one reaches all.
    // (It is tried again while the managers elect a leader: the scheduler rewrites the
    // status of the 100,000 unschedulable tasks as each manager's node joins, and a manager
    // busy applying that may miss heartbeats.)
    let last = &managers[2].0;
    wait_for(
        "a write through the last joined manager to be acknowledged",
        Duration::from_secs(60),
        || {
            let out = last.ctl(&["service", "create", "-d", "--name", "small", "app:1"]);
            let err = String::from_utf8_lossy(&out.stderr);
            // "already exists": an attempt that failed in an election was applied after all.
            (out.status.success() || err.contains("already exists")).then_some(())
        },
    );
    for (m, addr) in &managers {
        wait_for(
            &format!("the new service in {}'s store", m.state_dir.display()),
            Duration::from_secs(30),
            || (metric(addr, r#"swarm_store_objects{table="services"}"#)? == 2.0).then_some(()),
        );
    }
}
