//! The restart policy as pure functions: why a runnable task stopped ([`stop_cause`]) and
//! whether it gets a replacement ([`restart_decision`]).
//!
//! Rules (SwarmKit `restart/restart.go`, with the choices noted):
//! - A task that *exited* (observed COMPLETE, FAILED, REJECTED, SHUTDOWN, ORPHANED while still
//!   desired to run) is restarted according to its spec's `RestartPolicy`:
//!   `any` always; `on-failure` unless it completed cleanly (COMPLETE with exit code 0) —
//!   as in SwarmKit, an unexpected SHUTDOWN or ORPHANED counts as a failure; `none` never.
//!   `max_attempts` (0 = unlimited) caps restarts of one slot (one node, for a global service)
//!   within `window` (0 = forever), counted since the slot's spec last changed.
//! - A task *displaced* from a node that went DOWN, was DRAINED or was removed (replicated
//!   services only; the global orchestrator handles global tasks on such nodes) is always
//!   rescheduled: the restart condition governs what happens after the workload exits, and a
//!   relocation is not a restart attempt (it neither needs nor uses up `max_attempts`).
//!   SwarmKit applies the condition here too, so a `none` service lost replicas on every
//!   drain. The restart delay applies to a DOWN node, not to a drained or removed one (as in
//!   SwarmKit).

use std::collections::VecDeque;
use std::time::Duration;

use swarm_proto::{NodeAvailability, NodeState, RestartCondition, RestartPolicy, Task, TaskState};
use tokio::time::Instant;

use crate::orchestrator::task::{is_runnable, state};
use crate::store::Tables;

/// The restart delay when the policy sets none (SwarmKit's default).
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);

/// Why a runnable task is no longer running where it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Its workload ended (the task reached a terminal state).
    Exited,
    /// Its node is DOWN.
    NodeDown,
    /// Its node is drained.
    NodeDrained,
    /// Its node was removed from the cluster.
    NodeRemoved,
}

/// What to do with a stopped task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Replace it; the replacement may start `after` this long.
    Restart { after: Duration },
    /// Do not replace it.
    NoRestart(NoRestart),
}

/// Why a task is not restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoRestart {
    #[error("restart condition is none")]
    ConditionNone,
    #[error("restart condition is on-failure and the task completed")]
    Completed,
    #[error("restart policy allows {max} attempts and {attempts} were made")]
    MaxAttempts { attempts: u64, max: u64 },
}

/// The restarts made in one slot (or on one node, for a global service).
#[derive(Debug, Clone, Default)]
pub struct RestartHistory {
    /// The task spec version the counts are for; a new spec starts a new history.
    spec_version: u64,
    total: u64,
    /// When each restart within the longest window that matters happened, oldest first.
    times: VecDeque<Instant>,
}

impl RestartHistory {
    /// Restarts made for `spec_version` within `window` before `now` (all, for a zero window).
    pub fn attempts(&self, spec_version: u64, window: Duration, now: Instant) -> u64 {
        if spec_version != self.spec_version {
            return 0;
        }
        if window.is_zero() {
            return self.total;
        }
        let since = now.checked_sub(window);
        self.times
            .iter()
            .filter(|t| since.is_none_or(|s| **t > s))
            .count() as u64
    }

    /// Records a restart at `now`, dropping times older than `window`.
    pub fn record(&mut self, spec_version: u64, window: Duration, now: Instant) {
        if spec_version != self.spec_version {
            *self = RestartHistory {
                spec_version,
                ..Default::default()
            };
        }
        self.total += 1;
        if !window.is_zero() {
            if let Some(since) = now.checked_sub(window) {
                while self.times.front().is_some_and(|t| *t <= since) {
                    self.times.pop_front();
                }
            }
            self.times.push_back(now);
        }
    }
}

/// The task's restart policy (SwarmKit's defaults when its spec has none).
pub fn policy_of(task: &Task) -> RestartPolicy {
    task.spec
        .as_ref()
        .and_then(|s| s.restart)
        .unwrap_or_default()
}

/// The policy's delay before a replacement starts.
pub fn delay_of(policy: &RestartPolicy) -> Duration {
    policy.delay_ms.map_or(DEFAULT_DELAY, Duration::from_millis)
}

/// Why `task` needs the restart supervisor, or `None` when it does not: it is not runnable,
/// or it runs where it should. `global` tasks are only looked at when they exited.
pub fn stop_cause(view: &Tables, task: &Task, global: bool) -> Option<StopCause> {
    if !is_runnable(task) {
        return None;
    }
    if state(task).is_terminal() {
        return Some(StopCause::Exited);
    }
    if global || task.node_id.is_empty() {
        return None;
    }
    let Some(node) = view.node(&task.node_id) else {
        return Some(StopCause::NodeRemoved);
    };
    if node
        .status
        .as_ref()
        .is_some_and(|s| s.state == NodeState::NodeDown as i32)
    {
        Some(StopCause::NodeDown)
    } else if node
        .spec
        .as_ref()
        .is_some_and(|s| s.availability == NodeAvailability::Drain as i32)
    {
        Some(StopCause::NodeDrained)
    } else {
        None
    }
}

/// Whether `task`, stopped for `cause`, gets a replacement under `policy`, given the slot's
/// `history` of restarts, at `now`.
pub fn restart_decision(
    policy: &RestartPolicy,
    history: &RestartHistory,
    task: &Task,
    cause: StopCause,
    now: Instant,
) -> Decision {
    match cause {
        StopCause::NodeDrained | StopCause::NodeRemoved => {
            return Decision::Restart {
                after: Duration::ZERO,
            };
        }
        StopCause::NodeDown => {
            return Decision::Restart {
                after: delay_of(policy),
            };
        }
        StopCause::Exited => {}
    }
    let condition =
        RestartCondition::try_from(policy.condition).unwrap_or(RestartCondition::RestartAny);
    match condition {
        RestartCondition::RestartNone => return Decision::NoRestart(NoRestart::ConditionNone),
        RestartCondition::RestartOnFailure if completed_cleanly(task) => {
            return Decision::NoRestart(NoRestart::Completed);
        }
        _ => {}
    }
    if policy.max_attempts > 0 {
        let window = Duration::from_millis(policy.window_ms);
        let attempts = history.attempts(task.spec_version, window, now);
        if attempts >= policy.max_attempts {
            return Decision::NoRestart(NoRestart::MaxAttempts {
                attempts,
                max: policy.max_attempts,
            });
        }
    }
    Decision::Restart {
        after: delay_of(policy),
    }
}

fn completed_cleanly(task: &Task) -> bool {
    state(task) == TaskState::Complete && task.status.as_ref().is_none_or(|s| s.exit_code == 0)
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
