//! Unit tests of the replicated decision, on hand-built views.

use swarm_proto::{ReplicatedService, TaskState, service_spec::Mode};

use super::*;
use crate::orchestrator::testutil::{applied, desired, replicated, tables, task, tasks_of};

fn runnable_slots(view: &Tables, service: &str) -> Vec<u64> {
    let mut v: Vec<u64> = view
        .tasks_by_service(service)
        .filter(|t| is_runnable(t))
        .map(|t| t.slot)
        .collect();
    v.sort_unstable();
    v
}

fn scale(s: &mut Service, replicas: u64) {
    s.spec.as_mut().unwrap().mode = Some(Mode::Replicated(ReplicatedService { replicas }));
}

#[test]
fn t10_creates_slots_1_to_n() {
    let s = replicated("svc", 5);
    let view = tables(std::slice::from_ref(&s), &[], &[]);
    let actions = reconcile(&view, view.service("svc").unwrap());
    assert_eq!(actions.len(), 5);
    let after = applied(&view, actions);
    assert_eq!(runnable_slots(&after, "svc"), [1, 2, 3, 4, 5]);
    for t in tasks_of(&after, "svc") {
        assert_eq!(tasks::state(&t), TaskState::New);
        assert_eq!(t.spec_version, 7);
    }
    assert!(
        reconcile(&after, after.service("svc").unwrap()).is_empty(),
        "converged"
    );
}

#[test]
fn t11_fills_only_the_free_slots() {
    let s = replicated("svc", 4);
    let existing = [
        task(&s, 1, "n1", TaskState::Running, 1),
        task(&s, 3, "n1", TaskState::Running, 1),
        // Slot 2 only has history: it is free.
        desired(task(&s, 2, "n1", TaskState::Failed, 1), TaskState::Shutdown),
    ];
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let after = applied(&view, reconcile(&view, &s));
    assert_eq!(runnable_slots(&after, "svc"), [1, 2, 3, 4]);
}

#[test]
fn t12_a_task_finished_for_good_keeps_its_slot() {
    let s = replicated("svc", 2);
    let existing = [
        task(&s, 1, "n1", TaskState::Running, 1),
        desired(
            task(&s, 2, "n1", TaskState::Complete, 1),
            TaskState::Complete,
        ),
    ];
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    assert!(reconcile(&view, &s).is_empty());
}

#[test]
fn t20_scale_down_removes_the_highest_slots() {
    let mut s = replicated("svc", 5);
    let existing: Vec<_> = (1..=5)
        .map(|slot| task(&s, slot, &format!("n{slot}"), TaskState::Running, 1))
        .collect();
    scale(&mut s, 2);
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let actions = reconcile(&view, &s);
    assert_eq!(actions.len(), 3);
    let after = applied(&view, actions);
    assert_eq!(runnable_slots(&after, "svc"), [1, 2]);
    for t in tasks_of(&after, "svc").iter().filter(|t| t.slot > 2) {
        assert_eq!(tasks::desired(t), TaskState::Remove);
    }
}

#[test]
fn t21_scale_down_prefers_tasks_that_are_not_running() {
    let mut s = replicated("svc", 4);
    let existing = [
        task(&s, 1, "n1", TaskState::Pending, 1),
        task(&s, 2, "n2", TaskState::Running, 1),
        task(&s, 3, "n3", TaskState::Running, 1),
        task(&s, 4, "n4", TaskState::Running, 1),
    ];
    scale(&mut s, 2);
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let after = applied(&view, reconcile(&view, &s));
    assert_eq!(
        runnable_slots(&after, "svc"),
        [2, 3],
        "slot 1 was not running, slot 4 highest"
    );
}

#[test]
fn t22_scale_down_leaves_the_nodes_balanced() {
    let mut s = replicated("svc", 5);
    let existing = [
        task(&s, 1, "a", TaskState::Running, 1),
        task(&s, 2, "a", TaskState::Running, 1),
        task(&s, 3, "a", TaskState::Running, 1),
        task(&s, 4, "b", TaskState::Running, 1),
        task(&s, 5, "b", TaskState::Running, 1),
    ];
    scale(&mut s, 3);
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let after = applied(&view, reconcile(&view, &s));
    // Node a held 3 copies, b 2: the 3rd copy on a goes, then the higher of the 2nd copies.
    assert_eq!(runnable_slots(&after, "svc"), [1, 2, 4]);
}

#[test]
fn t23_a_removed_slot_takes_its_history_along() {
    let mut s = replicated("svc", 2);
    let existing = [
        task(&s, 1, "n1", TaskState::Running, 1),
        desired(task(&s, 2, "n1", TaskState::Failed, 1), TaskState::Shutdown),
        task(&s, 2, "n1", TaskState::Running, 2),
    ];
    scale(&mut s, 1);
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let after = applied(&view, reconcile(&view, &s));
    let slot2: Vec<_> = tasks_of(&after, "svc")
        .into_iter()
        .filter(|t| t.slot == 2)
        .collect();
    assert_eq!(slot2.len(), 2);
    assert!(slot2.iter().all(|t| tasks::desired(t) == TaskState::Remove));
}

#[test]
fn t24_scale_up_after_scale_down_reuses_removed_slots() {
    let s = replicated("svc", 3);
    let existing = [
        task(&s, 1, "n1", TaskState::Running, 1),
        desired(task(&s, 2, "n1", TaskState::Running, 1), TaskState::Remove),
        desired(task(&s, 3, "n1", TaskState::Shutdown, 1), TaskState::Remove),
    ];
    let view = tables(std::slice::from_ref(&s), &[], &existing);
    let after = applied(&view, reconcile(&view, &s));
    assert_eq!(runnable_slots(&after, "svc"), [1, 2, 3]);
}

#[test]
fn t30_other_modes_are_ignored() {
    let s = crate::orchestrator::testutil::global("g");
    let view = tables(std::slice::from_ref(&s), &[], &[]);
    assert!(reconcile(&view, &s).is_empty());
}

#[test]
fn t90_a_hundred_thousand_replicas_is_linear() {
    let s = replicated("big", 100_000);
    let view = tables(std::slice::from_ref(&s), &[], &[]);
    let started = std::time::Instant::now();
    let actions = reconcile(&view, &s);
    assert_eq!(actions.len(), 100_000);
    let after = applied(&view, actions);
    assert!(reconcile(&after, &s).is_empty());
    // A quadratic pass would take hours; linear takes well under a second in release builds.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
