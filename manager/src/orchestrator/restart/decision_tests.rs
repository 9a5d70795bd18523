//! Unit tests of the restart policy.

use super::*;
use crate::orchestrator::testutil::{desired, node, node_in, node_with, replicated, tables, task};

fn policy(condition: RestartCondition, max_attempts: u64, window_ms: u64) -> RestartPolicy {
    RestartPolicy {
        condition: condition as i32,
        delay_ms: Some(100),
        max_attempts,
        window_ms,
    }
}

fn ended(state: TaskState, exit_code: i32) -> Task {
    let mut t = task(&replicated("svc", 1), 1, "n1", state, 1);
    t.status.as_mut().unwrap().exit_code = exit_code;
    t
}

const RESTART: Decision = Decision::Restart {
    after: Duration::from_millis(100),
};

#[test]
fn t10_condition_any_restarts_every_exit() {
    let p = policy(RestartCondition::RestartAny, 0, 0);
    let h = RestartHistory::default();
    let now = Instant::now();
    for s in [
        TaskState::Complete,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Shutdown,
    ] {
        assert_eq!(
            restart_decision(&p, &h, &ended(s, 0), StopCause::Exited, now),
            RESTART
        );
    }
}

#[test]
fn t11_condition_on_failure_skips_clean_completion() {
    let p = policy(RestartCondition::RestartOnFailure, 0, 0);
    let h = RestartHistory::default();
    let now = Instant::now();
    let d = |t: Task| restart_decision(&p, &h, &t, StopCause::Exited, now);
    assert_eq!(
        d(ended(TaskState::Complete, 0)),
        Decision::NoRestart(NoRestart::Completed)
    );
    assert_eq!(
        d(ended(TaskState::Complete, 3)),
        RESTART,
        "non-zero exit is a failure"
    );
    assert_eq!(d(ended(TaskState::Failed, 1)), RESTART);
    assert_eq!(d(ended(TaskState::Rejected, 0)), RESTART);
    assert_eq!(d(ended(TaskState::Orphaned, 0)), RESTART);
}

#[test]
fn t12_condition_none_never_restarts_an_exit() {
    let p = policy(RestartCondition::RestartNone, 0, 0);
    let h = RestartHistory::default();
    let t = ended(TaskState::Failed, 1);
    let now = Instant::now();
    assert_eq!(
        restart_decision(&p, &h, &t, StopCause::Exited, now),
        Decision::NoRestart(NoRestart::ConditionNone)
    );
    // ... but a task displaced from a drained node is still rescheduled.
    let running = ended(TaskState::Running, 0);
    assert_eq!(
        restart_decision(&p, &h, &running, StopCause::NodeDrained, now),
        Decision::Restart {
            after: Duration::ZERO
        }
    );
    assert_eq!(
        restart_decision(&p, &h, &running, StopCause::NodeDown, now),
        RESTART
    );
}

#[test]
fn t13_default_policy_is_any_after_five_seconds() {
    let t = ended(TaskState::Failed, 1);
    let p = policy_of(&t);
    assert_eq!(
        restart_decision(
            &p,
            &RestartHistory::default(),
            &t,
            StopCause::Exited,
            Instant::now()
        ),
        Decision::Restart {
            after: DEFAULT_DELAY
        }
    );
    assert_eq!(DEFAULT_DELAY, Duration::from_secs(5));
}

#[test]
fn t20_max_attempts_without_window_counts_forever() {
    let p = policy(RestartCondition::RestartAny, 2, 0);
    let t = ended(TaskState::Failed, 1);
    let mut h = RestartHistory::default();
    let now = Instant::now();
    for _ in 0..2 {
        assert_eq!(
            restart_decision(&p, &h, &t, StopCause::Exited, now),
            RESTART
        );
        h.record(t.spec_version, Duration::ZERO, now);
    }
    assert_eq!(
        restart_decision(
            &p,
            &h,
            &t,
            StopCause::Exited,
            now + Duration::from_secs(3600)
        ),
        Decision::NoRestart(NoRestart::MaxAttempts {
            attempts: 2,
            max: 2
        })
    );
}

#[test]
fn t21_max_attempts_within_window() {
    let window = Duration::from_secs(60);
    let p = policy(RestartCondition::RestartAny, 2, window.as_millis() as u64);
    let t = ended(TaskState::Failed, 1);
    let mut h = RestartHistory::default();
    let t0 = Instant::now();
    h.record(t.spec_version, window, t0);
    h.record(t.spec_version, window, t0 + Duration::from_secs(10));
    let at = |secs| {
        restart_decision(
            &p,
            &h,
            &t,
            StopCause::Exited,
            t0 + Duration::from_secs(secs),
        )
    };
    assert!(matches!(
        at(30),
        Decision::NoRestart(NoRestart::MaxAttempts { .. })
    ));
    // The first restart leaves the window after 60 s.
    assert_eq!(at(61), RESTART);
    assert_eq!(
        h.attempts(t.spec_version, window, t0 + Duration::from_secs(71)),
        0
    );
}

#[test]
fn t22_a_new_spec_starts_a_new_history() {
    let p = policy(RestartCondition::RestartAny, 1, 0);
    let mut t = ended(TaskState::Failed, 1);
    let mut h = RestartHistory::default();
    let now = Instant::now();
    h.record(t.spec_version, Duration::ZERO, now);
    assert!(matches!(
        restart_decision(&p, &h, &t, StopCause::Exited, now),
        Decision::NoRestart(_)
    ));
    t.spec_version += 1;
    assert_eq!(
        restart_decision(&p, &h, &t, StopCause::Exited, now),
        RESTART
    );
}

#[test]
fn t30_stop_causes() {
    let s = replicated("svc", 1);
    let nodes = [
        node("up"),
        node_in("down", NodeState::NodeDown),
        node_with("drained", NodeAvailability::Drain),
    ];
    let view = tables(std::slice::from_ref(&s), &nodes, &[]);
    let on = |n: &str, st: TaskState| task(&s, 1, n, st, 1);
    assert_eq!(
        stop_cause(&view, &on("up", TaskState::Running), false),
        None
    );
    assert_eq!(
        stop_cause(&view, &on("up", TaskState::Failed), false),
        Some(StopCause::Exited)
    );
    assert_eq!(
        stop_cause(&view, &on("down", TaskState::Running), false),
        Some(StopCause::NodeDown)
    );
    assert_eq!(
        stop_cause(&view, &on("drained", TaskState::Running), false),
        Some(StopCause::NodeDrained)
    );
    assert_eq!(
        stop_cause(&view, &on("gone", TaskState::Running), false),
        Some(StopCause::NodeRemoved)
    );
    assert_eq!(
        stop_cause(&view, &on("down", TaskState::Running), true),
        None,
        "global: not ours"
    );
    assert_eq!(stop_cause(&view, &on("", TaskState::Pending), false), None);
    let stopped = desired(on("up", TaskState::Failed), TaskState::Shutdown);
    assert_eq!(stop_cause(&view, &stopped, false), None, "already handled");
}
