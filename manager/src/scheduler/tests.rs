//! Scheduler suite: `decide::schedule` as a pure function (t10–t60), then the run loop
//! against an in-memory store (t90).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use swarm_proto::{NodeAvailability, NodeState, Task, TaskState};
use tokio_util::sync::CancellationToken;

use super::fixtures::{CPU, MIB, NodeBuilder, TaskBuilder};
use super::*;
use crate::store::testing;

fn nodes(ids: &[&str]) -> Vec<Arc<swarm_proto::Node>> {
    ids.iter().map(|id| NodeBuilder::new(id).arc()).collect()
}

fn tasks(service: &str, n: usize) -> Vec<Arc<Task>> {
    (0..n)
        .map(|i| TaskBuilder::new(&format!("{service}-{i:03}"), service).arc())
        .collect()
}

/// task id → node id of the assignments; panics on an unschedulable decision.
fn assigned(decisions: &[Decision]) -> BTreeMap<String, String> {
    decisions
        .iter()
        .map(|d| match d {
            Decision::Assign { task_id, node_id } => (task_id.clone(), node_id.clone()),
            other => panic!("expected only assignments, got {other:?}"),
        })
        .collect()
}

/// node id → how many of `decisions` went there.
fn per_node(decisions: &[Decision]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in decisions {
        if let Decision::Assign { node_id, .. } = d {
            *out.entry(node_id.clone()).or_default() += 1;
        }
    }
    out
}

fn reasons(decisions: &[Decision]) -> Vec<&str> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Unschedulable { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn t10_spreads_by_service_count_then_total_then_node_id() {
    // n1 already runs a task of another service; n2 and n3 are empty.
    let busy = TaskBuilder::new("other", "B")
        .on("n1", TaskState::Running)
        .arc();
    let mut set = NodeSet::new(nodes(&["n3", "n2", "n1"]), &[busy]);
    let d = schedule(&mut set, &tasks("A", 4));
    let got: Vec<_> = assigned(&d).into_values().collect();
    // A-000 → n2 (no A anywhere; n2, n3 have fewer tasks; n2 < n3), A-001 → n3,
    // A-002 → n1 (the only node without an A), A-003 → n2 (1 A each; n2 has 1 task in
    // total, n1 has 2; n2 < n3).
    assert_eq!(got, ["n2", "n3", "n1", "n2"]);
    assert_eq!(set.get("n1").unwrap().task_count(), 2);
    assert_eq!(set.get("n2").unwrap().service_count("A"), 2);
}

#[test]
fn t11_spreads_evenly_and_deterministically() {
    let mut a = NodeSet::new(nodes(&["a", "b", "c"]), &[]);
    let mut b = NodeSet::new(nodes(&["c", "b", "a"]), &[]);
    let t = tasks("web", 9);
    let da = schedule(&mut a, &t);
    assert_eq!(da, schedule(&mut b, &t));
    assert_eq!(
        per_node(&da),
        BTreeMap::from([("a".into(), 3), ("b".into(), 3), ("c".into(), 3)])
    );
    // A second call sees the first call's placements.
    let more = schedule(&mut a, &tasks("web2", 2));
    assert_eq!(per_node(&more).keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn t20_skips_down_paused_and_drained_nodes() {
    let set_nodes = vec![
        NodeBuilder::new("down").state(NodeState::NodeDown).arc(),
        NodeBuilder::new("paused")
            .availability(NodeAvailability::Pause)
            .arc(),
        NodeBuilder::new("drained")
            .availability(NodeAvailability::Drain)
            .arc(),
        NodeBuilder::new("ok").arc(),
    ];
    let mut set = NodeSet::new(set_nodes, &[]);
    let d = schedule(&mut set, &tasks("web", 3));
    assert_eq!(per_node(&d), BTreeMap::from([("ok".into(), 3)]));
}

#[test]
fn t30_respects_resources_including_what_running_tasks_reserve() {
    let running = TaskBuilder::new("old", "db")
        .reserve(0, 400 * MIB)
        .on("n1", TaskState::Running)
        .arc();
    let mut set = NodeSet::new(
        [
            NodeBuilder::new("n1").resources(4 * CPU, 1024 * MIB).arc(),
            NodeBuilder::new("n2").resources(CPU, 1024 * MIB).arc(),
        ],
        &[running],
    );
    let t: Vec<_> = (0..4)
        .map(|i| {
            TaskBuilder::new(&format!("t{i}"), "web")
                .reserve(CPU / 2, 300 * MIB)
                .arc()
        })
        .collect();
    let d = schedule(&mut set, &t);
    // n1: 1024 - 400 = 624 MiB → two tasks of 300 MiB; n2: 1 CPU → two tasks of 0.5 CPU.
    assert_eq!(
        per_node(&d),
        BTreeMap::from([("n1".into(), 2), ("n2".into(), 2)])
    );
    let d = schedule(
        &mut set,
        &[TaskBuilder::new("t9", "web")
            .reserve(CPU / 2, 300 * MIB)
            .arc()],
    );
    assert_eq!(
        reasons(&d),
        ["no suitable node (1 node has insufficient memory; 1 node has insufficient CPU)"]
    );
}

#[test]
fn t31_respects_max_replicas_per_node() {
    let mut set = NodeSet::new(nodes(&["n1", "n2"]), &[]);
    let t: Vec<_> = (0..5)
        .map(|i| {
            TaskBuilder::new(&format!("t{i}"), "web")
                .max_replicas(2)
                .arc()
        })
        .collect();
    let d = schedule(&mut set, &t);
    assert_eq!(
        per_node(&d),
        BTreeMap::from([("n1".into(), 2), ("n2".into(), 2)])
    );
    assert_eq!(
        reasons(&d),
        ["no suitable node (2 nodes already run the maximum of 2 tasks of this service per node)"]
    );
}

#[test]
fn t32_respects_constraints() {
    let mut set = NodeSet::new(
        [
            NodeBuilder::new("n1").label("zone", "eu").arc(),
            NodeBuilder::new("n2").label("zone", "us").arc(),
            NodeBuilder::new("n3").manager().label("zone", "eu").arc(),
        ],
        &[],
    );
    let t: Vec<_> = (0..4)
        .map(|i| {
            TaskBuilder::new(&format!("t{i}"), "web")
                .constraint("node.labels.zone==eu")
                .constraint("node.role!=manager")
                .arc()
        })
        .collect();
    let d = schedule(&mut set, &t);
    assert_eq!(per_node(&d), BTreeMap::from([("n1".into(), 4)]));
    let bad = TaskBuilder::new("gpu", "ml")
        .constraint("node.labels.gpu==yes")
        .arc();
    assert_eq!(
        reasons(&schedule(&mut set, &[bad])),
        ["no suitable node (3 nodes do not satisfy constraint node.labels.gpu==yes)"]
    );
    let invalid = TaskBuilder::new("x", "bad")
        .constraint("node.colour==red")
        .arc();
    let d = schedule(&mut set, &[invalid]);
    assert!(
        reasons(&d)[0].starts_with("invalid constraint \"node.colour==red\""),
        "{d:?}"
    );
}

#[test]
fn t40_preassigned_tasks_go_to_their_node_or_say_why_not() {
    let mut set = NodeSet::new(
        [
            NodeBuilder::new("n1").arc(),
            NodeBuilder::new("n2")
                .hostname("h2")
                .availability(NodeAvailability::Drain)
                .arc(),
            NodeBuilder::new("n3").resources(CPU, 0).arc(),
        ],
        &[TaskBuilder::new("busy", "x")
            .on("n3", TaskState::Running)
            .arc()],
    );
    let global = |id: &str, node: &str| {
        TaskBuilder::new(id, "mon")
            .reserve(CPU / 2, 0)
            .on(node, TaskState::Pending)
            .arc()
    };
    let d = schedule(
        &mut set,
        &[global("g3", "n3"), global("g2", "n2"), global("g9", "n9")],
    );
    assert_eq!(
        d,
        [
            Decision::Assign {
                task_id: "g3".into(),
                node_id: "n3".into()
            },
            Decision::Unschedulable {
                task_id: "g2".into(),
                reason: "no suitable node (node n2 (h2) is not available for new tasks)".into()
            },
            Decision::Unschedulable {
                task_id: "g9".into(),
                reason: "no suitable node (node n9 is not in the cluster)".into()
            },
        ]
    );
    // n3 is now half full: another pre-assigned task fits once more, then not.
    assert_eq!(
        per_node(&schedule(&mut set, &[global("g4", "n3")])).len(),
        1
    );
    assert_eq!(
        reasons(&schedule(&mut set, &[global("g5", "n3")])),
        ["no suitable node (node n3 has insufficient CPU)"]
    );
}

#[test]
fn t50_unschedulable_reason_counts_every_node() {
    let mut set = NodeSet::new(
        [
            NodeBuilder::new("a")
                .availability(NodeAvailability::Drain)
                .arc(),
            NodeBuilder::new("b")
                .availability(NodeAvailability::Pause)
                .arc(),
            NodeBuilder::new("c").state(NodeState::NodeDown).arc(),
            NodeBuilder::new("d").resources(0, 100 * MIB).arc(),
        ],
        &[],
    );
    let t = TaskBuilder::new("t", "s").reserve(0, 200 * MIB).arc();
    assert_eq!(
        reasons(&schedule(&mut set, std::slice::from_ref(&t))),
        [
            "no suitable node (2 nodes are not available for new tasks; 1 node is not ready; \
          1 node has insufficient memory)"
        ]
    );
    assert_eq!(
        reasons(&schedule(&mut NodeSet::default(), &[t])),
        ["no suitable node (no nodes in the cluster)"]
    );
}

#[test]
fn t51_groups_do_not_share_filters_across_services_or_specs() {
    let mut set = NodeSet::new(
        [
            NodeBuilder::new("n1").label("tier", "db").arc(),
            NodeBuilder::new("n2").arc(),
        ],
        &[],
    );
    // Same service and spec_version but different constraints: must not share a pipeline.
    let t = vec![
        TaskBuilder::new("w1", "web").arc(),
        TaskBuilder::new("d1", "web")
            .constraint("node.labels.tier==db")
            .arc(),
        TaskBuilder::new("d2", "db")
            .spec_version(7)
            .constraint("node.labels.tier==db")
            .arc(),
    ];
    let got = assigned(&schedule(&mut set, &t));
    // Groups run in (service, spec_version) order: db first (→ n1, the only db node), then
    // web without constraints (→ n2, the emptier node), then web for db nodes (→ n1).
    assert_eq!(got["d2"], "n1");
    assert_eq!(got["w1"], "n2");
    assert_eq!(got["d1"], "n1");
}

#[test]
fn t60_quick_performance_sanity() {
    // Debug builds place 10k tasks on 100 nodes; release builds the real figure's size.
    let (n_nodes, n_tasks) = if cfg!(debug_assertions) {
        (100, 10_000)
    } else {
        (1_000, 100_000)
    };
    let ids: Vec<String> = (0..n_nodes).map(|i| format!("node-{i:04}")).collect();
    let mut set = NodeSet::new(
        ids.iter()
            .map(|id| NodeBuilder::new(id).resources(64 * CPU, 1 << 40).arc()),
        &[],
    );
    let t: Vec<_> = (0..n_tasks)
        .map(|i| {
            TaskBuilder::new(&format!("t{i:06}"), "web")
                .reserve(CPU / 100, MIB)
                .arc()
        })
        .collect();
    let started = std::time::Instant::now();
    let d = schedule(&mut set, &t);
    let took = started.elapsed();
    assert_eq!(d.len(), n_tasks);
    let spread = per_node(&d);
    assert_eq!(spread.len(), n_nodes);
    assert!(
        spread.values().all(|&n| n == n_tasks / n_nodes),
        "uneven spread"
    );
    assert!(
        took < Duration::from_secs(1),
        "{n_tasks} tasks on {n_nodes} nodes took {took:?}"
    );
    eprintln!("scheduled {n_tasks} tasks on {n_nodes} nodes in {took:?}");
}

// ---- the run loop ----

async fn wait_for(store: &Store, what: &str, cond: impl Fn(&Tables) -> bool) {
    let (view, mut watcher) = store.watch(WatchFilter::All);
    if cond(&view) {
        return;
    }
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while watcher.recv().await.is_some() {
            if cond(&store.view()) {
                return;
            }
        }
        panic!("store watch closed while waiting for {what}");
    })
    .await;
    if waited.is_err() {
        panic!("timed out waiting for {what}");
    }
}

fn state_of(t: &Task) -> TaskState {
    TaskState::of(t.status.as_ref().map_or(0, |s| s.state))
}

#[tokio::test]
async fn t90_run_assigns_spreads_and_explains() {
    let store = testing::store();
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(run(store.clone(), shutdown.clone()));

    tracing::info!("--- 3 ready nodes, 9 pending tasks: 3 per node");
    let ns = ["n1", "n2", "n3"].map(|id| store::create(NodeBuilder::new(id).build()));
    store.write(ns.to_vec()).await.expect("create nodes");
    let ts = (0..9).map(|i| store::create(TaskBuilder::new(&format!("web-{i}"), "web").build()));
    store.write(ts.collect()).await.expect("create tasks");
    wait_for(&store, "9 tasks assigned", |t| {
        t.tasks()
            .filter(|t| state_of(t) == TaskState::Assigned)
            .count()
            == 9
    })
    .await;
    let view = store.view();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(view.tasks_by_node(n).count(), 3, "tasks on {n}");
    }

    tracing::info!("--- an impossible constraint: PENDING with the reason");
    let gpu = TaskBuilder::new("gpu-0", "ml")
        .constraint("node.labels.gpu==yes")
        .build();
    store
        .write(vec![store::create(gpu)])
        .await
        .expect("create gpu task");
    let reason = "no suitable node (3 nodes do not satisfy constraint node.labels.gpu==yes)";
    wait_for(&store, "the gpu task's reason", |t| {
        t.task("gpu-0")
            .and_then(|t| t.status.as_ref())
            .is_some_and(|s| s.err == reason)
    })
    .await;
    let parked = store.view().task("gpu-0").cloned().unwrap();
    assert_eq!(state_of(&parked), TaskState::Pending);
    assert!(parked.node_id.is_empty());

    tracing::info!("--- a node change retries it, without rewriting the same reason");
    let mut n1 = (**store.view().node("n1").unwrap()).clone();
    n1 = NodeBuilder(n1).label("zone", "eu").build();
    store
        .write(vec![store::update(n1)])
        .await
        .expect("label n1");
    // Barrier: a new task is placed in a pass no earlier than the retry of gpu-0.
    let probe = TaskBuilder::new("probe", "probe").build();
    store
        .write(vec![store::create(probe)])
        .await
        .expect("create probe");
    wait_for(&store, "the probe assigned", |t| {
        t.task("probe")
            .is_some_and(|t| state_of(t) == TaskState::Assigned)
    })
    .await;
    let again = store.view().task("gpu-0").cloned().unwrap();
    assert_eq!(
        again.meta, parked.meta,
        "same reason must not be written again"
    );

    tracing::info!("--- a node gains the label: the parked task is placed there");
    let mut n2 = (**store.view().node("n2").unwrap()).clone();
    n2 = NodeBuilder(n2).label("gpu", "yes").build();
    store
        .write(vec![store::update(n2)])
        .await
        .expect("label n2");
    wait_for(&store, "the gpu task on n2", |t| {
        t.task("gpu-0")
            .is_some_and(|t| state_of(t) == TaskState::Assigned && t.node_id == "n2")
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), scheduler)
        .await
        .expect("scheduler stops on shutdown")
        .expect("scheduler task does not panic");
}

/// A one-replica proposer that records the size of every batch of task patches.
struct Recording {
    memory: Arc<crate::store::MemoryStore>,
    next: std::sync::atomic::AtomicU64,
    patch_batches: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl crate::store::Proposer for Recording {
    async fn propose(
        &self,
        batch: swarm_proto::StoreBatch,
    ) -> Result<crate::store::ApplyOutcome, crate::store::StoreError> {
        let patches = batch
            .actions
            .iter()
            .filter(|a| a.task_patch.is_some())
            .count();
        if patches > 0 {
            self.patch_batches.lock().unwrap().push(patches);
        }
        let index = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(self.memory.apply(&[(index, batch)]).remove(0))
    }
}

#[tokio::test]
async fn t91_run_commits_in_batches_of_at_most_max_write() {
    let memory = crate::store::MemoryStore::new(Tables::default());
    let recording = Arc::new(Recording {
        memory: memory.clone(),
        next: Default::default(),
        patch_batches: Default::default(),
    });
    let store = Store::new(memory, recording.clone());
    let n_tasks = 2 * MAX_WRITE + 500;
    let ns = (0..10).map(|i| store::create(NodeBuilder::new(&format!("n{i}")).build()));
    store.write(ns.collect()).await.expect("create nodes");
    let ts =
        (0..n_tasks).map(|i| store::create(TaskBuilder::new(&format!("t{i:05}"), "web").build()));
    store.write(ts.collect()).await.expect("create tasks");

    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(run(store.clone(), shutdown.clone()));
    wait_for(&store, "every task assigned", |t| {
        t.tasks().all(|t| state_of(t) == TaskState::Assigned)
    })
    .await;
    let view = store.view();
    for i in 0..10 {
        assert_eq!(view.tasks_by_node(&format!("n{i}")).count(), n_tasks / 10);
    }
    let batches = recording.patch_batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), n_tasks, "{batches:?}");
    assert!(batches.iter().all(|&n| n <= MAX_WRITE), "{batches:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), scheduler)
        .await
        .expect("scheduler stops on shutdown")
        .expect("scheduler task does not panic");
}
