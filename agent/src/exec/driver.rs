//! The task state machine, as SwarmKit's `agent/exec/controller.go` `Do` runs it, split into
//! pure decisions (unit-tested without tokio) and the status each outcome produces. The task
//! manager does the I/O: it asks [`next_step`], calls the controller, and records the status
//! that [`after_success`], [`after_exit`] or [`after_error`] return.
//!
//! ```text
//!  ASSIGNED ─▶ ACCEPTED ─▶ PREPARING ─prepare()─▶ READY ─▶ STARTING ─start()─▶ RUNNING ─wait()─▶ COMPLETE | FAILED
//!      └──────────── desired ≥ SHUTDOWN (any state < COMPLETE): shutdown() ─▶ SHUTDOWN ─────────────┘
//!  fatal error: before STARTING ─▶ REJECTED, at/after STARTING ─▶ FAILED
//! ```
//!
//! Rules: states never go backwards; PREPARING, STARTING and RUNNING proceed even past the
//! desired state (RUNNING ─▶ COMPLETE for a job); every other step advances only while the
//! state is below the desired state; READY ─▶ STARTING only once desired ≥ RUNNING.

use swarm_proto::{TaskState, TaskStatus};

use super::{ExecError, ExitStatus};

/// What the driver does next for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing until the desired state changes: paused, finished, or already past desired.
    Idle,
    /// Record a new state without calling the controller.
    Advance {
        /// The state to record.
        to: TaskState,
        /// The status message to record with it.
        message: &'static str,
    },
    /// `prepare()`, then READY.
    Prepare,
    /// `start()`, then RUNNING.
    Start,
    /// `wait()`, then COMPLETE or FAILED.
    Wait,
    /// `shutdown()`, then SHUTDOWN.
    Shutdown,
}

impl Step {
    /// The controller call this step makes, for log lines and error messages.
    pub fn verb(self) -> &'static str {
        match self {
            Step::Idle | Step::Advance { .. } => "advance",
            Step::Prepare => "prepare",
            Step::Start => "start",
            Step::Wait => "wait",
            Step::Shutdown => "shutdown",
        }
    }
}

/// The next step for a task whose observed state is `state` and desired state is `desired`.
pub fn next_step(state: TaskState, desired: TaskState) -> Step {
    use TaskState as S;
    if desired >= S::Shutdown {
        return if state >= S::Complete {
            Step::Idle
        } else {
            Step::Shutdown
        };
    }
    if state > desired {
        return Step::Idle;
    }
    // These proceed even past the desired state (a job's RUNNING ends in COMPLETE).
    match state {
        S::Preparing => return Step::Prepare,
        S::Starting => return Step::Start,
        S::Running => return Step::Wait,
        _ => {}
    }
    // "Pause" states: move on only while below the desired state.
    if state >= desired {
        return Step::Idle;
    }
    match state {
        S::New | S::Pending | S::Assigned => Step::Advance {
            to: S::Accepted,
            message: "accepted",
        },
        S::Accepted => Step::Advance {
            to: S::Preparing,
            message: "preparing",
        },
        S::Ready if desired >= S::Running => Step::Advance {
            to: S::Starting,
            message: "starting",
        },
        _ => Step::Idle,
    }
}

/// `status` moved to `to` with `message` at `now_ns`. Never moves backwards: a `to` below the
/// current state returns `status` unchanged.
pub fn transition(status: &TaskStatus, to: TaskState, message: &str, now_ns: i64) -> TaskStatus {
    if to < TaskState::of(status.state) {
        return status.clone();
    }
    TaskStatus {
        state: to as i32,
        timestamp_ns: now_ns,
        message: message.to_string(),
        err: String::new(),
        exit_code: status.exit_code,
    }
}

/// The status after `step`'s controller call returned `Ok(())`.
pub fn after_success(status: &TaskStatus, step: Step, now_ns: i64) -> TaskStatus {
    match step {
        Step::Prepare => transition(status, TaskState::Ready, "prepared", now_ns),
        Step::Start => transition(status, TaskState::Running, "started", now_ns),
        Step::Shutdown => transition(status, TaskState::Shutdown, "shutdown", now_ns),
        Step::Advance { to, message } => transition(status, to, message, now_ns),
        Step::Idle | Step::Wait => status.clone(),
    }
}

/// The status after `wait()` returned: COMPLETE on exit 0, FAILED with the exit code and
/// `err = "task: non-zero exit (N)"` otherwise, as Docker words it, followed by `": "` and the
/// exit message when the backend gave one (e.g. the guest's last stderr line), which also
/// becomes the status `message`.
pub fn after_exit(status: &TaskStatus, exit: &ExitStatus, now_ns: i64) -> TaskStatus {
    if exit.code == 0 {
        let message = if exit.message.is_empty() {
            "finished"
        } else {
            &exit.message
        };
        return transition(status, TaskState::Complete, message, now_ns);
    }
    let message = if exit.message.is_empty() {
        "failed"
    } else {
        &exit.message
    };
    let mut next = transition(status, TaskState::Failed, message, now_ns);
    next.exit_code = exit.code;
    next.err = if exit.message.is_empty() {
        format!("task: non-zero exit ({})", exit.code)
    } else {
        format!("task: non-zero exit ({}): {}", exit.code, exit.message)
    };
    next
}

/// The status after a controller call (named by `verb`) failed with `err`: `None` when the
/// error is temporary (retry the step), else REJECTED before STARTING or FAILED from STARTING
/// on, with `err` set to the error text (with its causes).
pub fn after_error(
    status: &TaskStatus,
    verb: &str,
    err: &ExecError,
    now_ns: i64,
) -> Option<TaskStatus> {
    if err.is_temporary() {
        return None;
    }
    let to = if TaskState::of(status.state) < TaskState::Starting {
        TaskState::Rejected
    } else {
        TaskState::Failed
    };
    let mut next = transition(status, to, &format!("{verb} failed"), now_ns);
    next.err = crate::errors::chain(err);
    Some(next)
}

/// Whichever of two statuses is further along (ties keep `a`). The agent starts a task from
/// this so that neither a stale DB row nor a stale manager copy moves it backwards.
pub fn furthest(a: TaskStatus, b: TaskStatus) -> TaskStatus {
    if b.state > a.state { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState as S;

    const ALL: [S; 14] = [
        S::New,
        S::Pending,
        S::Assigned,
        S::Accepted,
        S::Preparing,
        S::Ready,
        S::Starting,
        S::Running,
        S::Complete,
        S::Shutdown,
        S::Failed,
        S::Rejected,
        S::Remove,
        S::Orphaned,
    ];

    fn status(state: S) -> TaskStatus {
        TaskStatus {
            state: state as i32,
            message: "old".into(),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_and_prepares_towards_running() {
        for s in [S::New, S::Pending, S::Assigned] {
            assert_eq!(
                next_step(s, S::Running),
                Step::Advance {
                    to: S::Accepted,
                    message: "accepted"
                }
            );
        }
        assert_eq!(
            next_step(S::Accepted, S::Running),
            Step::Advance {
                to: S::Preparing,
                message: "preparing"
            }
        );
        assert_eq!(next_step(S::Preparing, S::Running), Step::Prepare);
        assert_eq!(
            next_step(S::Ready, S::Running),
            Step::Advance {
                to: S::Starting,
                message: "starting"
            }
        );
        assert_eq!(next_step(S::Starting, S::Running), Step::Start);
        assert_eq!(next_step(S::Running, S::Running), Step::Wait);
    }

    #[test]
    fn ready_waits_for_desired_running() {
        assert_eq!(next_step(S::Preparing, S::Ready), Step::Prepare);
        assert_eq!(next_step(S::Ready, S::Ready), Step::Idle);
        assert_eq!(next_step(S::Ready, S::Starting), Step::Idle);
        assert_eq!(
            next_step(S::Ready, S::Complete),
            Step::Advance {
                to: S::Starting,
                message: "starting"
            }
        );
    }

    #[test]
    fn running_job_waits_past_desired_to_complete() {
        assert_eq!(next_step(S::Running, S::Complete), Step::Wait);
        assert_eq!(next_step(S::Complete, S::Complete), Step::Idle);
    }

    #[test]
    fn nothing_moves_when_past_desired() {
        assert_eq!(next_step(S::Running, S::Ready), Step::Idle);
        assert_eq!(next_step(S::Starting, S::Ready), Step::Idle);
        assert_eq!(next_step(S::Preparing, S::Accepted), Step::Idle);
        assert_eq!(next_step(S::Assigned, S::Assigned), Step::Idle);
    }

    #[test]
    fn desired_shutdown_stops_anything_not_finished() {
        for desired in [S::Shutdown, S::Remove, S::Orphaned, S::Failed, S::Rejected] {
            for state in ALL {
                let expected = if state >= S::Complete {
                    Step::Idle
                } else {
                    Step::Shutdown
                };
                assert_eq!(next_step(state, desired), expected, "{state:?}/{desired:?}");
            }
        }
    }

    #[test]
    fn terminal_states_never_step() {
        for state in [S::Complete, S::Shutdown, S::Failed, S::Rejected, S::Remove] {
            for desired in ALL {
                assert_eq!(
                    next_step(state, desired),
                    Step::Idle,
                    "{state:?}/{desired:?}"
                );
            }
        }
    }

    #[test]
    fn steps_never_lead_backwards() {
        for state in ALL {
            for desired in ALL {
                let next = match next_step(state, desired) {
                    Step::Advance { to, .. } => to,
                    Step::Prepare => S::Ready,
                    Step::Start => S::Running,
                    Step::Shutdown => S::Shutdown,
                    Step::Idle | Step::Wait => state,
                };
                assert!(next >= state, "{state:?}/{desired:?} → {next:?}");
            }
        }
    }

    #[test]
    fn successes_record_the_next_state() {
        let s = after_success(&status(S::Preparing), Step::Prepare, 7);
        assert_eq!(
            (S::of(s.state), s.message.as_str(), s.timestamp_ns),
            (S::Ready, "prepared", 7)
        );
        let s = after_success(&status(S::Starting), Step::Start, 8);
        assert_eq!(S::of(s.state), S::Running);
        let s = after_success(&status(S::Running), Step::Shutdown, 9);
        assert_eq!(S::of(s.state), S::Shutdown);
    }

    #[test]
    fn exit_zero_completes_and_non_zero_fails_with_code() {
        let done = after_exit(&status(S::Running), &ExitStatus::default(), 1);
        assert_eq!(S::of(done.state), S::Complete);
        assert_eq!(done.err, "");
        let exit = ExitStatus {
            code: 3,
            message: "open /etc/passwd: denied".into(),
        };
        let failed = after_exit(&status(S::Running), &exit, 2);
        assert_eq!(S::of(failed.state), S::Failed);
        assert_eq!(failed.exit_code, 3);
        assert_eq!(
            failed.err,
            "task: non-zero exit (3): open /etc/passwd: denied"
        );
        assert_eq!(failed.message, "open /etc/passwd: denied");
        let bare = ExitStatus {
            code: 4,
            message: String::new(),
        };
        assert_eq!(
            after_exit(&status(S::Running), &bare, 3).err,
            "task: non-zero exit (4)"
        );
    }

    #[test]
    fn fatal_errors_reject_before_starting_and_fail_after() {
        let err = ExecError::NotFound("artifact sha256:abc".into());
        for state in [S::Assigned, S::Accepted, S::Preparing, S::Ready] {
            let s = after_error(&status(state), "prepare", &err, 1).unwrap();
            assert_eq!(S::of(s.state), S::Rejected, "{state:?}");
            assert_eq!(s.err, "not found: artifact sha256:abc");
            assert_eq!(s.message, "prepare failed");
        }
        for state in [S::Starting, S::Running] {
            let s = after_error(&status(state), "start", &err, 1).unwrap();
            assert_eq!(S::of(s.state), S::Failed, "{state:?}");
        }
    }

    #[test]
    fn temporary_errors_retry() {
        let err = ExecError::Temporary("runtime busy".into());
        assert_eq!(after_error(&status(S::Preparing), "prepare", &err, 1), None);
    }

    #[test]
    fn transitions_never_go_backwards() {
        let s = transition(&status(S::Running), S::Accepted, "accepted", 5);
        assert_eq!(S::of(s.state), S::Running);
        assert_eq!(s.message, "old");
        let a = status(S::Running);
        let b = status(S::Assigned);
        assert_eq!(S::of(furthest(a.clone(), b.clone()).state), S::Running);
        assert_eq!(S::of(furthest(b, a).state), S::Running);
    }
}
