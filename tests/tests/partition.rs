//! Network partitions between managers, made with real network namespaces ([`Lan`]): each
//! manager runs in a namespace of its own, linked to a shared bridge, and a partition is its
//! link going down — the processes keep running, only the network fails.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use swarm_tests::cluster::{leader_node, local_service_names, managers_on, wait_identical};
use swarm_tests::netns::Lan;
use swarm_tests::{ManagerProc, init_tracing, wait_for};

/// Raft's election timeout with the default settings (10 ticks of 100 ms,
/// `manager/src/raft/options.rs`). A leader that hears from no majority steps down after one
/// to two of these (check-quorum); followers elect a new one after one to two.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a call forwarded over a connection that went silent may take to fail: the
/// HTTP/2 keepalive's bound, plus a margin for a loaded machine.
fn forward_gives_up() -> Duration {
    swarm_agent::certs::KEEPALIVE_INTERVAL
        + swarm_agent::certs::KEEPALIVE_TIMEOUT
        + Duration::from_secs(5)
}

/// Asks `m` to create the service `name`: `Ok` if it acknowledged the write, else its error.
fn create(m: &ManagerProc, name: &str) -> Result<(), String> {
    let out = m.ctl(&["service", "create", "-d", "--name", name, "app:1"]);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// (a) Writes through the cut-off leader `m` until it refuses one for lack of quorum, and
/// returns that refusal; it must acknowledge none, and refuse so within a few election
/// timeouts of `cut_at` (a write it took just before stepping down fails when it does).
/// Every name asked for is added to `asked`.
fn minority_refuses(m: &ManagerProc, asked: &mut Vec<String>, cut_at: Instant) -> String {
    let step_down = 5 * ELECTION_TIMEOUT;
    loop {
        let name = format!("minority-{}", asked.len());
        let outcome = create(m, &name);
        asked.push(name.clone());
        let Err(e) = outcome else {
            panic!("the partitioned leader acknowledged the write of {name}");
        };
        assert!(
            cut_at.elapsed() < step_down,
            "the partitioned leader did not refuse writes for lack of quorum within \
             {step_down:?} of the cut (last error: {e})"
        );
        if e.contains("no quorum") {
            return e;
        }
        tracing::info!(error = %e, "partitioned leader refused {name}");
    }
}

#[test]
fn p10_a_partitioned_leader_steps_down_and_the_majority_carries_on() {
    init_tracing();
    // Declared first, so dropped last: the managers die before their namespaces go.
    let lan = Lan::new(3).expect("a network of three namespaces");
    let dir = tempfile::tempdir().unwrap();
    let ms = managers_on(dir.path(), &lan.hosts(), &["--no-agent"]);
    let all: Vec<&ManagerProc> = ms.iter().collect();
    let ids: Vec<String> = ms.iter().map(ManagerProc::node_id).collect();
    ms[0].push_empty_module("app:1");
    create(&ms[1], "before").unwrap();
    wait_identical(&all, Duration::from_secs(20));
    let old_id = wait_for("a leader", Duration::from_secs(20), || leader_node(&ms[2]));
    let old = ids.iter().position(|i| *i == old_id).unwrap();
    let majority: Vec<&ManagerProc> = (0..3).filter(|i| *i != old).map(|i| &ms[i]).collect();

    tracing::info!(leader = %old_id, "--- cutting the leader's link");
    lan.cut(old).unwrap();
    let cut_at = Instant::now();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut asked_majority: BTreeSet<String> = BTreeSet::new();
    let mut asked_minority: Vec<String> = Vec::new();

    std::thread::scope(|s| {
        // A write through a follower at once is forwarded to the old leader over a
        // connection that went silent: it ends (keepalive) rather than hang.
        let early = s.spawn(|| {
            let outcome = create(majority[0], "majority-early");
            (outcome, cut_at.elapsed())
        });
        let refusal = minority_refuses(&ms[old], &mut asked_minority, cut_at);
        tracing::info!(after = ?cut_at.elapsed(), %refusal, "--- the old leader refuses writes");
        assert!(refusal.contains("majority"), "{refusal}");
        let (outcome, took) = early.join().unwrap();
        tracing::info!(
            ?outcome,
            ?took,
            "a write through a follower just after the cut"
        );
        assert!(
            took < forward_gives_up(),
            "a write through a follower just after the cut took {took:?}"
        );
        asked_majority.insert("majority-early".into());
        if outcome.is_ok() {
            acked.insert("majority-early".into());
        }
    });

    // (b) The majority elects a new leader and acknowledges writes.
    while acked.len() < 6 {
        assert!(
            cut_at.elapsed() < Duration::from_secs(40),
            "the majority acknowledged only {acked:?} within 40 s of the cut"
        );
        let name = format!("majority-{}", asked_majority.len());
        asked_majority.insert(name.clone());
        match create(majority[asked_majority.len() % 2], &name) {
            Ok(()) => {
                acked.insert(name);
            }
            Err(e) => tracing::info!(error = %e, "the majority refused {name}"),
        }
    }
    let new_id = wait_for("a new leader", Duration::from_secs(20), || {
        leader_node(majority[0]).filter(|l| *l != old_id)
    });
    tracing::info!(leader = %new_id, after = ?cut_at.elapsed(), "--- the majority writes");
    // Still cut off: the old leader refuses, and has none of the majority's writes.
    for _ in 0..3 {
        let name = format!("minority-{}", asked_minority.len());
        let e = create(&ms[old], &name).expect_err("the partitioned leader refuses writes");
        assert!(e.contains("no quorum"), "{e}");
        asked_minority.push(name);
    }
    let minority_view = local_service_names(&ms[old]);
    assert!(
        minority_view.contains("before") && minority_view.is_disjoint(&acked),
        "the partitioned manager answers reads with its last state only: {minority_view:?}"
    );

    // (c) Healed, everything converges on the majority's history.
    tracing::info!("--- healing the link");
    lan.heal(old).unwrap();
    let healed_at = Instant::now();
    let names: BTreeSet<String> = wait_identical(&all, Duration::from_secs(60))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    tracing::info!(after = ?healed_at.elapsed(), "--- the three stores are identical");
    let lost: Vec<&String> = acked.difference(&names).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let split_brain: Vec<&String> = asked_minority
        .iter()
        .filter(|n| names.contains(*n))
        .collect();
    assert!(
        split_brain.is_empty(),
        "writes asked of the partitioned leader appear after the heal: {split_brain:?}"
    );
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| *n != "before" && !asked_majority.contains(*n))
        .collect();
    assert!(unknown.is_empty(), "services nobody wrote: {unknown:?}");

    // Exactly one leader, the same for all three (pre-vote: the returning member did not
    // force an election), and the old leader's writes now reach it.
    wait_for(
        "all three managers to name the same single leader",
        Duration::from_secs(20),
        || {
            let named: BTreeSet<Option<String>> = ms.iter().map(leader_node).collect();
            (named.len() == 1 && named.contains(&Some(new_id.clone()))).then_some(())
        },
    );
    create(&ms[old], "after-heal").expect("writes through the old leader are forwarded");
    let names = wait_identical(&all, Duration::from_secs(20));
    assert!(names.iter().any(|(n, _)| n == "after-heal"), "{names:?}");
}
