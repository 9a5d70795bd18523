//! Unit tests of the rollout state machine, on hand-built views and a hand-moved clock.

use std::sync::Arc;

use swarm_proto::Task;

use super::*;
use crate::orchestrator::testutil::{applied, node, replicated, tables, task};
use crate::store;

const MONITOR: Duration = Duration::from_secs(5);

/// A 3-replica service at v1 with running tasks, and the same service at v2 (new spec and
/// the given update config).
fn fixture(config: UpdateConfig) -> (Tables, Service) {
    let v1 = replicated("svc", 3);
    let mut v2 = v1.clone();
    v2.meta.as_mut().unwrap().version = 9;
    let spec = v2.spec.as_mut().unwrap();
    spec.task.as_mut().unwrap().force_update = 1;
    spec.update = Some(config);
    let ts: Vec<Task> = (1..=3)
        .map(|s| task(&v1, s, "n1", TaskState::Running, 1))
        .collect();
    (tables(std::slice::from_ref(&v2), &[node("n1")], &ts), v2)
}

fn config(parallelism: u64, delay_ms: u64, action: UpdateFailureAction) -> UpdateConfig {
    UpdateConfig {
        parallelism: Some(parallelism),
        delay_ms,
        failure_action: action as i32,
        monitor_ms: Some(MONITOR.as_millis() as u64),
        ..Default::default()
    }
}

/// Writes the step's slot updates; returns the new view and the new task ids.
fn write(view: &Tables, r: &mut Rollout, step: Step) -> (Tables, Vec<String>) {
    let mut actions: Vec<_> = step.cleanup;
    let mut ids = Vec::new();
    for (a, id) in step.slots {
        actions.extend(a);
        ids.push(id);
    }
    r.launched(ids.clone());
    (applied(view, actions), ids)
}

/// Steps at `now` and writes what the step asks for.
fn advance(view: &Tables, r: &mut Rollout, svc: &Service, now: Instant) -> (Tables, Vec<String>) {
    let step = r.step(view, svc, now);
    write(view, r, step)
}

/// The agent reports `s` for task `id`.
fn report(view: &Tables, id: &str, s: TaskState) -> Tables {
    let mut t: Task = (**view.task(id).unwrap()).clone();
    t.status.as_mut().unwrap().state = s as i32;
    t.desired_state = TaskState::Running as i32;
    applied(view, vec![store::update(t)])
}

fn current_slots(view: &Tables, service: &Service) -> Vec<u64> {
    let mut v: Vec<u64> = view
        .tasks_by_service(&service.id)
        .filter(|t: &&Arc<Task>| {
            crate::orchestrator::task::is_runnable(t)
                && crate::orchestrator::task::is_up_to_date(t, service)
        })
        .map(|t| t.slot)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn t10_one_slot_at_a_time_each_waiting_for_the_previous_to_run() {
    let (view, svc) = fixture(config(1, 0, UpdateFailureAction::UpdatePause));
    let t0 = Instant::now();
    let mut r = Rollout::start(&view, &svc, false, t0).expect("dirty slots");
    let step = r.step(&view, &svc, t0);
    assert_eq!(step.slots.len(), 1);
    let (view, ids) = write(&view, &mut r, step);
    assert_eq!(current_slots(&view, &svc), [1]);
    assert!(
        r.step(&view, &svc, t0).slots.is_empty(),
        "slot 1's task does not run yet"
    );
    let view = report(&view, &ids[0], TaskState::Running);
    let step = r.step(&view, &svc, t0);
    assert_eq!(step.slots.len(), 1, "slot 2 next");
    let (view, ids) = write(&view, &mut r, step);
    assert_eq!(current_slots(&view, &svc), [1, 2]);
    let view = report(&view, &ids[0], TaskState::Running);
    let (view, ids) = advance(&view, &mut r, &svc, t0);
    let view = report(&view, &ids[0], TaskState::Running);
    assert_eq!(current_slots(&view, &svc), [1, 2, 3]);
    let step = r.step(&view, &svc, t0);
    assert!(step.slots.is_empty());
    assert_eq!(r.status, Status::Rolling, "still monitoring");
    assert_eq!(step.wake, Some(t0 + MONITOR));
    r.step(&view, &svc, t0 + MONITOR);
    assert_eq!(r.status, Status::Done);
}

#[test]
fn t11_delay_between_batches_and_parallelism_zero_is_all() {
    let (view, svc) = fixture(config(2, 1_000, UpdateFailureAction::UpdatePause));
    let t0 = Instant::now();
    let mut r = Rollout::start(&view, &svc, false, t0).unwrap();
    let (view, ids) = advance(&view, &mut r, &svc, t0);
    assert_eq!(ids.len(), 2);
    let view = ids
        .iter()
        .fold(view, |v, id| report(&v, id, TaskState::Running));
    let step = r.step(&view, &svc, t0);
    assert!(step.slots.is_empty());
    assert_eq!(step.wake, Some(t0 + Duration::from_secs(1)));
    let step = r.step(&view, &svc, t0 + Duration::from_secs(1));
    assert_eq!(step.slots.len(), 1);

    let (view, svc) = fixture(config(0, 0, UpdateFailureAction::UpdatePause));
    let mut r = Rollout::start(&view, &svc, false, t0).unwrap();
    assert_eq!(r.step(&view, &svc, t0).slots.len(), 3);
}

#[test]
fn t20_a_failure_pauses_the_update() {
    let (view, svc) = fixture(config(1, 0, UpdateFailureAction::UpdatePause));
    let t0 = Instant::now();
    let mut r = Rollout::start(&view, &svc, false, t0).unwrap();
    let (view, ids) = advance(&view, &mut r, &svc, t0);
    let view = report(&view, &ids[0], TaskState::Running);
    let view = report(&view, &ids[0], TaskState::Failed);
    let step = r.step(&view, &svc, t0 + Duration::from_secs(1));
    assert!(matches!(
        step.failed,
        Some((UpdateFailureAction::UpdatePause, _))
    ));
    assert!(step.slots.is_empty());
    assert!(matches!(r.status, Status::Paused(_)));
    assert!(
        r.step(&view, &svc, t0 + Duration::from_secs(2))
            .slots
            .is_empty(),
        "stays paused"
    );
}

#[test]
fn t21_continue_carries_on_and_rollback_is_reported() {
    let (view, svc) = fixture(config(1, 0, UpdateFailureAction::UpdateContinue));
    let t0 = Instant::now();
    let mut r = Rollout::start(&view, &svc, false, t0).unwrap();
    let (view, ids) = advance(&view, &mut r, &svc, t0);
    let view = report(&view, &ids[0], TaskState::Rejected);
    let step = r.step(&view, &svc, t0);
    assert!(step.failed.is_none());
    assert_eq!(step.slots.len(), 1, "on to the next slot");

    let (view, svc) = fixture(config(1, 0, UpdateFailureAction::UpdateRollback));
    let mut r = Rollout::start(&view, &svc, false, t0).unwrap();
    let (view, ids) = advance(&view, &mut r, &svc, t0);
    let view = report(&view, &ids[0], TaskState::Failed);
    let step = r.step(&view, &svc, t0);
    assert!(matches!(
        step.failed,
        Some((UpdateFailureAction::UpdateRollback, _))
    ));
}

#[test]
fn t30_defaults_are_swarmkits() {
    let s = Settings::of(None);
    assert_eq!(s.parallelism, 1);
    assert_eq!(s.delay, Duration::ZERO);
    assert_eq!(s.monitor, DEFAULT_MONITOR);
    assert_eq!(s.failure_action, UpdateFailureAction::UpdatePause);
    assert_eq!(s.max_failure_ratio, 0.0);
    assert_eq!(s.order, UpdateOrder::StopFirst);
}
