//! Store suite: apply rules, indexes, watches and snapshots, without raft.

use std::sync::Arc;

use swarm_proto::{
    Annotations, Meta, Node, Service, ServiceSpec, StoreBatch, Task, TaskPatch, TaskState,
    TaskStatus,
};

use super::memory::testing;
use super::*;

fn service(id: &str, name: &str) -> Service {
    Service {
        id: id.into(),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(id: &str, service: &str, slot: u64, node: &str, state: TaskState) -> Task {
    Task {
        id: id.into(),
        service_id: service.into(),
        slot,
        node_id: node.into(),
        status: Some(TaskStatus {
            state: state as i32,
            ..Default::default()
        }),
        desired_state: TaskState::Running as i32,
        ..Default::default()
    }
}

fn status(state: TaskState) -> Option<TaskStatus> {
    Some(TaskStatus {
        state: state as i32,
        ..Default::default()
    })
}

fn batch(actions: Vec<swarm_proto::StoreAction>, atomic: bool) -> StoreBatch {
    StoreBatch {
        request_id: 1,
        actions,
        atomic,
        coalesced: Vec::new(),
    }
}

#[test]
fn t10_create_stamps_version_and_indexes_tasks() {
    let mut t = Tables::default();
    let (out, events) = t.apply(
        7,
        &batch(
            vec![
                create(service("s1", "web")),
                create(task("t1", "s1", 1, "n1", TaskState::Running)),
                create(task("t2", "s1", 2, "", TaskState::Pending)),
            ],
            false,
        ),
    );
    assert!(out.is_clean(), "{out:?}");
    assert_eq!(events.len(), 3);
    assert_eq!(t.index, 7);
    assert_eq!(t.task("t1").unwrap().meta.as_ref().unwrap().version, 7);
    assert_eq!(t.tasks_by_service("s1").count(), 2);
    assert_eq!(
        t.tasks_by_node("n1")
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["t1"]
    );
    assert_eq!(t.tasks_by_slot("s1", 2).count(), 1);
    assert_eq!(t.service_by_name("web").unwrap().id, "s1");
    let counts = t.task_state_counts();
    assert_eq!(counts.get(&(TaskState::Running as i32)), Some(&1));
    assert_eq!(counts.get(&(TaskState::Pending as i32)), Some(&1));
}

#[test]
fn t20_update_needs_the_stored_version() {
    let mut t = Tables::default();
    t.apply(1, &batch(vec![create(service("s1", "web"))], false));
    let mut stale = service("s1", "web2");
    stale.meta = Some(Meta {
        version: 0,
        ..Default::default()
    });
    let (out, _) = t.apply(2, &batch(vec![update(stale.clone())], false));
    assert!(matches!(
        out.rejected[0].1,
        Conflict::VersionMismatch {
            read: 0,
            current: 1,
            ..
        }
    ));
    stale.meta.as_mut().unwrap().version = 1;
    let (out, events) = t.apply(3, &batch(vec![update(stale)], false));
    assert!(out.is_clean());
    assert!(matches!(events[0], Event::Updated { .. }));
    assert!(t.service_by_name("web").is_none(), "old name index kept");
    assert_eq!(
        t.service_by_name("web2")
            .unwrap()
            .meta
            .as_ref()
            .unwrap()
            .version,
        3
    );
}

#[test]
fn t30_service_names_are_unique() {
    let mut t = Tables::default();
    t.apply(1, &batch(vec![create(service("s1", "web"))], false));
    let (out, _) = t.apply(2, &batch(vec![create(service("s2", "web"))], false));
    assert_eq!(
        out.rejected[0].1,
        Conflict::NameInUse { name: "web".into() }
    );
    assert!(t.service("s2").is_none());
}

#[test]
fn t31_renaming_a_service_moves_its_name() {
    let mut t = Tables::default();
    t.apply(1, &batch(vec![create(service("s1", "web"))], true));
    let mut renamed = service("s1", "api");
    renamed.meta = Some(Meta {
        version: 1,
        ..Default::default()
    });
    let (out, _) = t.apply(2, &batch(vec![update(renamed)], true));
    assert!(out.is_clean());
    assert!(
        t.service_by_name("web").is_none(),
        "the old name still resolves"
    );
    assert_eq!(t.service_by_name("api").unwrap().id, "s1");
    let (out, _) = t.apply(3, &batch(vec![create(service("s2", "web"))], true));
    assert!(out.is_clean(), "the old name is still taken: {out:?}");
}

#[test]
fn t40_atomic_batch_is_all_or_nothing() {
    let mut t = Tables::default();
    t.apply(1, &batch(vec![create(service("s1", "web"))], false));
    let (out, events) = t.apply(
        2,
        &batch(
            vec![
                create(task("t1", "s1", 1, "", TaskState::New)),
                create(service("s1", "dup")),
            ],
            true,
        ),
    );
    assert_eq!(out.rejected.len(), 1);
    assert!(events.is_empty());
    assert!(t.task("t1").is_none(), "atomic batch half-applied");
    assert_eq!(t.index, 2, "the entry is still consumed");

    // One action alone is rolled back without a copy: it writes nothing unless it applies.
    let before = t.encode_snapshot();
    let (out, events) = t.apply(3, &batch(vec![create(service("s2", "web"))], true));
    assert_eq!(out.rejected.len(), 1);
    assert!(events.is_empty());
    assert_eq!(t.encode_snapshot(), before);
    assert_eq!(t.service_by_name("web").unwrap().id, "s1");
}

#[test]
fn t50_task_patch_only_moves_forward() {
    let mut t = Tables::default();
    t.apply(
        1,
        &batch(
            vec![create(task("t1", "s1", 1, "", TaskState::Pending))],
            false,
        ),
    );
    let assign = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Assigned),
        node_id: "n1".into(),
        desired_state: None,
    };
    let (out, _) = t.apply(2, &batch(vec![patch_task(assign)], false));
    assert!(out.is_clean());
    assert_eq!(t.tasks_by_node("n1").count(), 1);
    let back = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Pending),
        ..Default::default()
    };
    let (out, _) = t.apply(3, &batch(vec![patch_task(back)], false));
    assert!(matches!(out.rejected[0].1, Conflict::NotForward { .. }));
    let same = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Assigned),
        ..Default::default()
    };
    let (out, _) = t.apply(3, &batch(vec![patch_task(same)], false));
    assert!(
        matches!(out.rejected[0].1, Conflict::NotForward { .. }),
        "a repeated status must not count as a change"
    );
    let other_node = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Assigned),
        node_id: "n2".into(),
        desired_state: None,
    };
    let (out, _) = t.apply(4, &batch(vec![patch_task(other_node)], false));
    assert!(matches!(
        out.rejected[0].1,
        Conflict::AlreadyAssigned { .. }
    ));
    let shutdown = TaskPatch {
        task_id: "t1".into(),
        desired_state: Some(TaskState::Shutdown as i32),
        ..Default::default()
    };
    let (out, _) = t.apply(5, &batch(vec![patch_task(shutdown)], false));
    assert!(out.is_clean());
    let done = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Complete),
        ..Default::default()
    };
    assert!(
        t.apply(6, &batch(vec![patch_task(done)], false))
            .0
            .is_clean()
    );
    let failed = TaskPatch {
        task_id: "t1".into(),
        status: status(TaskState::Failed),
        ..Default::default()
    };
    let (out, _) = t.apply(7, &batch(vec![patch_task(failed)], false));
    assert!(
        matches!(out.rejected[0].1, Conflict::NotForward { .. }),
        "a finished task must stay finished"
    );
    let task = t.task("t1").unwrap();
    assert_eq!(
        task.status.as_ref().unwrap().state,
        TaskState::Complete as i32
    );
    assert_eq!(task.desired_state, TaskState::Shutdown as i32);
    assert_eq!(task.meta.as_ref().unwrap().version, 6);
}

#[test]
fn t60_remove_unindexes() {
    let mut t = Tables::default();
    t.apply(
        1,
        &batch(
            vec![create(task("t1", "s1", 1, "n1", TaskState::Running))],
            false,
        ),
    );
    let (out, _) = t.apply(
        2,
        &batch(vec![remove(task("t1", "", 0, "", TaskState::New))], false),
    );
    assert!(out.is_clean());
    assert_eq!(t.tasks_by_node("n1").count(), 0);
    assert_eq!(t.tasks_by_service("s1").count(), 0);
    assert!(
        t.task_state_counts().is_empty(),
        "a removed task is still counted"
    );
    let (out, _) = t.apply(
        3,
        &batch(vec![remove(task("t1", "", 0, "", TaskState::New))], false),
    );
    assert!(matches!(out.rejected[0].1, Conflict::NotFound { .. }));
}

#[test]
fn t70_snapshot_round_trip_rebuilds_indexes() {
    let mut t = Tables::default();
    t.apply(
        4,
        &batch(
            vec![
                create(service("s1", "web")),
                create(Node {
                    id: "n1".into(),
                    ..Default::default()
                }),
                create(task("t1", "s1", 3, "n1", TaskState::Running)),
                create(swarm_proto::Cluster {
                    id: "c1".into(),
                    ..Default::default()
                }),
                create(swarm_proto::Artifact {
                    id: "a1".into(),
                    digest: "sha256:ab".into(),
                    ..Default::default()
                }),
            ],
            false,
        ),
    );
    let restored = Tables::from_snapshot(t.to_snapshot(), t.index);
    assert_eq!(restored.index, 4);
    assert_eq!(restored.tasks_by_node("n1").count(), 1);
    assert_eq!(restored.tasks_by_slot("s1", 3).count(), 1);
    assert_eq!(restored.service_by_name("web").unwrap().id, "s1");
    assert_eq!(restored.to_snapshot(), t.to_snapshot());
    assert_eq!(
        t.encode_snapshot(),
        prost::Message::encode_to_vec(&t.to_snapshot()),
        "the direct encoding differs from the message's"
    );
}

#[test]
fn t80_lookup_by_id_name_and_prefix() {
    let mut t = Tables::default();
    t.apply(
        1,
        &batch(
            vec![
                create(service("abc123", "web")),
                create(service("abd456", "api")),
            ],
            false,
        ),
    );
    assert_eq!(t.find_service("web").unwrap().id, "abc123");
    assert_eq!(t.find_service("abd").unwrap().id, "abd456");
    assert!(matches!(
        t.find_service("ab"),
        Err(LookupError::Ambiguous { .. })
    ));
    assert!(matches!(
        t.find_service("zzz"),
        Err(LookupError::NotFound { .. })
    ));
}

#[tokio::test]
async fn t90_watchers_see_only_their_node_and_service() {
    let store = testing::store();
    let (_, mut n1) = store.watch(WatchFilter::Node("n1".into()));
    let (_, mut n2) = store.watch(WatchFilter::Node("n2".into()));
    let (_, mut s1) = store.watch(WatchFilter::Service("s1".into()));
    let (_, mut all) = store.watch(WatchFilter::All);
    store
        .write(vec![
            create(task("t1", "s1", 1, "n1", TaskState::Assigned)),
            create(task("t2", "s2", 1, "n1", TaskState::Assigned)),
        ])
        .await
        .unwrap();
    let b = n1.recv().await.unwrap();
    assert_eq!(b.events.len(), 2);
    assert!(n2.try_recv().is_err(), "node n2 saw node n1's tasks");
    let b = s1.recv().await.unwrap();
    assert_eq!(b.events.len(), 1);
    assert_eq!(b.events[0].object().id(), "t1");
    assert_eq!(all.recv().await.unwrap().events.len(), 2);

    // Moving a task to another node is seen by both nodes, once each.
    let mut moved = (**store.view().task("t1").unwrap()).clone();
    moved.node_id = "n2".into();
    store.write_atomic(vec![update(moved)]).await.unwrap();
    assert_eq!(n1.recv().await.unwrap().events.len(), 1);
    assert_eq!(n2.recv().await.unwrap().events.len(), 1);
}

#[tokio::test]
async fn t91_watch_view_and_events_are_consecutive() {
    let store = testing::store();
    store
        .write(vec![create(service("s1", "web"))])
        .await
        .unwrap();
    let (view, mut w) = store.watch(WatchFilter::All);
    assert_eq!(view.index, 1);
    store
        .write(vec![create(service("s2", "api"))])
        .await
        .unwrap();
    let b = w.recv().await.unwrap();
    assert_eq!(b.index, 2);
    // restore closes watchers
    store.memory().restore(Tables::default());
    assert!(w.recv().await.is_none());
    let _: Arc<Tables> = store.view();
}
