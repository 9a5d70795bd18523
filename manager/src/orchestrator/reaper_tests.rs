//! Unit tests of the reaper's decision.

use super::*;
use crate::orchestrator::testutil::{
    applied, cluster, desired, global, node, replicated, tables, task,
};

fn slot(service: &str, slot: u64) -> Dirty {
    Dirty::Slot {
        service: service.into(),
        slot,
    }
}

fn ids(view: &Tables, service: &str) -> BTreeSet<String> {
    view.tasks_by_service(service)
        .map(|t| t.id.clone())
        .collect()
}

#[test]
fn t10_keeps_the_retention_limit_of_old_tasks_per_slot_oldest_deleted_first() {
    let s = replicated("svc", 2);
    let mut slot1: Vec<Task> = (1..=8)
        .map(|i| desired(task(&s, 1, "n1", TaskState::Failed, i), TaskState::Shutdown))
        .collect();
    slot1.push(task(&s, 1, "n1", TaskState::Running, 100));
    let slot2: Vec<Task> = (1..=3)
        .map(|i| desired(task(&s, 2, "n1", TaskState::Failed, i), TaskState::Shutdown))
        .collect();
    let all: Vec<Task> = slot1.iter().chain(&slot2).cloned().collect();
    let view = tables(std::slice::from_ref(&s), &[node("n1")], &all);
    let actions = reap(&view, &[slot("svc", 1), slot("svc", 2)], 5);
    assert_eq!(
        actions.len(),
        3,
        "8 old in slot 1, keep 5; slot 2 is under the limit"
    );
    let after = applied(&view, actions);
    let left = ids(&after, "svc");
    for t in &slot1[..3] {
        assert!(!left.contains(&t.id), "oldest deleted");
    }
    for t in slot1[3..].iter().chain(&slot2) {
        assert!(left.contains(&t.id));
    }
    assert!(reap(&after, &[slot("svc", 1)], 5).is_empty(), "converged");
}

#[test]
fn t11_tasks_still_stopping_are_not_history_yet() {
    let s = replicated("svc", 1);
    let stopping: Vec<Task> = (1..=3)
        .map(|i| {
            desired(
                task(&s, 1, "n1", TaskState::Running, i),
                TaskState::Shutdown,
            )
        })
        .collect();
    let view = tables(std::slice::from_ref(&s), &[node("n1")], &stopping);
    assert!(reap(&view, &[slot("svc", 1)], 0).is_empty());
}

#[test]
fn t12_negative_limit_keeps_everything_zero_keeps_nothing() {
    let s = replicated("svc", 1);
    let old: Vec<Task> = (1..=3)
        .map(|i| {
            desired(
                task(&s, 1, "n1", TaskState::Complete, i),
                TaskState::Shutdown,
            )
        })
        .collect();
    let view = tables(std::slice::from_ref(&s), &[node("n1")], &old);
    assert!(reap(&view, &[slot("svc", 1)], -1).is_empty());
    assert_eq!(reap(&view, &[slot("svc", 1)], 0).len(), 3);
}

#[test]
fn t14_a_task_finished_for_good_is_not_history() {
    let s = replicated("svc", 1);
    let old = desired(task(&s, 1, "n1", TaskState::Failed, 1), TaskState::Shutdown);
    let done = desired(
        task(&s, 1, "n1", TaskState::Complete, 2),
        TaskState::Complete,
    );
    let view = tables(
        std::slice::from_ref(&s),
        &[node("n1")],
        &[old.clone(), done.clone()],
    );
    let after = applied(&view, reap(&view, &[slot("svc", 1)], 0));
    assert_eq!(ids(&after, "svc"), BTreeSet::from([done.id.clone()]));
}

#[test]
fn t13_global_history_is_per_node() {
    let s = global("g");
    let old: Vec<Task> = ["a", "a", "a", "b"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            desired(
                task(&s, 0, n, TaskState::Failed, i as i64),
                TaskState::Shutdown,
            )
        })
        .collect();
    let view = tables(std::slice::from_ref(&s), &[node("a"), node("b")], &old);
    let dirty = [
        Dirty::Node {
            service: "g".into(),
            node: "a".into(),
        },
        Dirty::Node {
            service: "g".into(),
            node: "b".into(),
        },
    ];
    let after = applied(&view, reap(&view, &dirty, 1));
    let left = ids(&after, "g");
    assert_eq!(left.len(), 2);
    assert!(left.contains(&old[2].id) && left.contains(&old[3].id));
}

#[test]
fn t20_remove_desired_tasks_go_once_stopped_or_never_assigned() {
    let s = replicated("svc", 1);
    let stopped = desired(task(&s, 2, "n1", TaskState::Shutdown, 1), TaskState::Remove);
    let completed = desired(task(&s, 3, "n1", TaskState::Complete, 1), TaskState::Remove);
    let pending = desired(task(&s, 4, "", TaskState::Pending, 1), TaskState::Remove);
    let running = desired(task(&s, 5, "n1", TaskState::Running, 1), TaskState::Remove);
    let on_gone_node = desired(
        task(&s, 6, "gone", TaskState::Running, 1),
        TaskState::Remove,
    );
    let all = [stopped, completed, pending, running.clone(), on_gone_node];
    let view = tables(std::slice::from_ref(&s), &[node("n1")], &all);
    let dirty: Vec<Dirty> = all.iter().map(|t| Dirty::Task(t.id.clone())).collect();
    let after = applied(&view, reap(&view, &dirty, 5));
    assert_eq!(ids(&after, "svc"), BTreeSet::from([running.id.clone()]));
}

#[test]
fn t21_tasks_of_removed_services_are_marked_then_deleted() {
    let gone = replicated("gone", 1);
    let running = task(&gone, 1, "n1", TaskState::Running, 1);
    let failed = task(&gone, 2, "n1", TaskState::Failed, 1);
    let view = tables(&[], &[node("n1")], &[running.clone(), failed.clone()]);
    let dirty = [
        Dirty::Task(running.id.clone()),
        Dirty::Task(failed.id.clone()),
    ];
    let after = applied(&view, reap(&view, &dirty, 5));
    assert!(after.task(&failed.id).is_none());
    assert_eq!(
        tasks::desired(after.task(&running.id).unwrap()),
        TaskState::Remove
    );
}

#[test]
fn t30_retention_limit_comes_from_the_cluster() {
    let view = tables(&[], &[], &[]);
    assert_eq!(retention_limit(&view), DEFAULT_RETENTION);
    let mut t = view.clone();
    crate::orchestrator::testutil::apply(&mut t, 100, vec![store::create(cluster(2))]);
    assert_eq!(retention_limit(&t), 2);
}
