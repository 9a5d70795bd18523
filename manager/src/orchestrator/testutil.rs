//! Builders shared by the orchestrator and allocator unit tests.

use std::sync::Arc;

use swarm_proto::{
    Annotations, Cluster, ClusterSpec, GlobalService, Meta, Node, NodeAvailability,
    NodeDescription, NodeSpec, NodeState, NodeStatus, OrchestrationConfig, ReplicatedService,
    RestartCondition, RestartPolicy, Service, ServiceSpec, StoreAction, StoreBatch, Task, TaskSpec,
    TaskState, TaskStatus, WasmRuntime, service_spec::Mode, task_spec,
};

use super::task::new_task;
use crate::store::{self, Tables};

fn spec(name: &str, mode: Mode) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            ..Default::default()
        }),
        mode: Some(mode),
        task: Some(TaskSpec {
            runtime: Some(task_spec::Runtime::Wasm(WasmRuntime {
                artifact: "hello".into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A replicated service named after its id, at version 7.
pub fn replicated(id: &str, replicas: u64) -> Service {
    Service {
        id: id.into(),
        meta: Some(Meta {
            version: 7,
            ..Default::default()
        }),
        spec: Some(spec(id, Mode::Replicated(ReplicatedService { replicas }))),
        previous_spec: None,
    }
}

/// A global service named after its id, at version 7.
pub fn global(id: &str) -> Service {
    Service {
        id: id.into(),
        meta: Some(Meta {
            version: 7,
            ..Default::default()
        }),
        spec: Some(spec(id, Mode::Global(GlobalService {}))),
        previous_spec: None,
    }
}

/// Sets the service's restart policy.
pub fn with_restart(mut s: Service, condition: RestartCondition, delay_ms: u64) -> Service {
    let task = s.spec.as_mut().unwrap().task.as_mut().unwrap();
    task.restart = Some(RestartPolicy {
        condition: condition as i32,
        delay_ms: Some(delay_ms),
        ..Default::default()
    });
    s
}

/// Sets the service's placement constraints.
pub fn with_constraints(mut s: Service, constraints: &[&str]) -> Service {
    let task = s.spec.as_mut().unwrap().task.as_mut().unwrap();
    task.placement.get_or_insert_default().constraints =
        constraints.iter().map(|c| c.to_string()).collect();
    s
}

/// A READY, ACTIVE worker whose hostname is its id.
pub fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        spec: Some(NodeSpec::default()),
        description: Some(NodeDescription {
            hostname: id.into(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: NodeState::NodeReady as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node in `state`.
pub fn node_in(id: &str, state: NodeState) -> Node {
    let mut n = node(id);
    n.status.as_mut().unwrap().state = state as i32;
    n
}

/// A node with `availability`.
pub fn node_with(id: &str, availability: NodeAvailability) -> Node {
    let mut n = node(id);
    n.spec.as_mut().unwrap().availability = availability as i32;
    n
}

/// A task of `service` in `slot` on `node` ("" = unassigned), observed in `state`, desired
/// RUNNING, created at `created` (ns).
pub fn task(service: &Service, slot: u64, node: &str, state: TaskState, created: i64) -> Task {
    let mut t = new_task(service, slot, (!node.is_empty()).then_some(node));
    t.meta.as_mut().unwrap().created_at_ns = created;
    t.status = Some(TaskStatus {
        state: state as i32,
        timestamp_ns: created,
        ..Default::default()
    });
    t
}

/// The task with its desired state set.
pub fn desired(mut t: Task, desired: TaskState) -> Task {
    t.desired_state = desired as i32;
    t
}

/// A cluster whose retention limit is `limit`.
pub fn cluster(limit: i64) -> Cluster {
    Cluster {
        id: "cluster".into(),
        spec: Some(ClusterSpec {
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: limit,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Tables holding the given objects (services keep their version by being written at it).
pub fn tables(services: &[Service], nodes: &[Node], tasks: &[Task]) -> Tables {
    let mut t = Tables::default();
    let mut actions: Vec<StoreAction> = Vec::new();
    actions.extend(nodes.iter().cloned().map(store::create));
    actions.extend(tasks.iter().cloned().map(store::create));
    apply(&mut t, 1, actions);
    // Write each service at its own version, so that tasks made from it are up to date.
    for s in services {
        let v = s.meta.as_ref().map_or(7, |m| m.version);
        apply(&mut t, v, vec![store::create(s.clone())]);
    }
    t
}

/// Applies `actions` at `index`, panicking on any conflict.
pub fn apply(t: &mut Tables, index: u64, actions: Vec<StoreAction>) {
    let (out, _) = t.apply(
        index,
        &StoreBatch {
            request_id: index,
            actions,
            atomic: false,
            coalesced: Vec::new(),
        },
    );
    assert!(out.is_clean(), "{out:?}");
}

/// Applies `actions` at the next index, ignoring conflicts; returns the applied tables.
pub fn applied(t: &Tables, actions: Vec<StoreAction>) -> Tables {
    let mut t = t.clone();
    let index = t.index + 1;
    t.apply(
        index,
        &StoreBatch {
            request_id: index,
            actions,
            atomic: false,
            coalesced: Vec::new(),
        },
    );
    t
}

/// Tasks of a service, by slot then creation.
pub fn tasks_of(t: &Tables, service_id: &str) -> Vec<Arc<Task>> {
    let mut v: Vec<_> = t.tasks_by_service(service_id).cloned().collect();
    v.sort_by(|a, b| {
        (a.slot, a.meta.as_ref().map(|m| m.created_at_ns))
            .cmp(&(b.slot, b.meta.as_ref().map(|m| m.created_at_ns)))
    });
    v
}

/// Waits (at most 10 s of tokio time) until `done(view)` holds, re-checking on every store
/// event; panics naming `what` on timeout.
pub async fn wait_for(store: &crate::store::Store, what: &str, done: impl Fn(&Tables) -> bool) {
    let (_, mut events) = store.watch(crate::store::WatchFilter::All);
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if done(&store.view()) {
                return;
            }
            events.recv().await.expect("store open");
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}
