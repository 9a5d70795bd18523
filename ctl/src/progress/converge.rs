//! The convergence decision: from a service's mode and its tasks, how far it is from what
//! was asked, what each slot's progress line says, and whether it has converged.
//!
//! Pure (no I/O, no clock), so every case is a unit test. The rules, after
//! `docker/cli/cli/command/service/progress/progress.go`:
//!
//! * Only tasks created from the spec being waited for count: `spec_version >=
//!   min_spec_version` (0 when the task spec did not change, e.g. a scale).
//! * Tasks are grouped by slot (replicated) or node (global). In each group the task shown
//!   is the one still meant to run (desired state ≤ COMPLETE, not failed or shut down),
//!   most advanced first, newest on ties; if there is none, the newest task (so a failure
//!   shows its error).
//! * Replicated: converged when slots 1..=replicas each show a RUNNING task and no other
//!   slot still runs one. Global: when at least one node has a task and every such node
//!   shows a RUNNING one. Replicated job: when `total_completions` tasks are COMPLETE.
//!   Global job: when at least one node has a task and every such node has completed.

use std::collections::{BTreeMap, HashMap};

use swarm_proto::service_spec::Mode;
use swarm_proto::{Task, TaskState};

use crate::output::short_id;

/// What the progress display shows at one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// One line per slot (replicated) or node (global).
    pub lines: Vec<Line>,
    /// Tasks running (services) or completed (jobs).
    pub done: u64,
    /// Tasks wanted.
    pub total: u64,
    /// True for job modes: `done` counts completions.
    pub job: bool,
    /// The service has reached what was asked.
    pub converged: bool,
}

/// One slot's (or node's) progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `3/5` for slot 3 of 5, or the node's hostname.
    pub label: String,
    pub status: LineStatus,
}

/// What a progress line shows.
#[derive(Debug, Clone, PartialEq)]
pub enum LineStatus {
    /// The task's state, with a note when an earlier task of the slot failed.
    State {
        state: TaskState,
        note: Option<String>,
    },
    /// The task failed, or cannot progress: the error the manager or agent reported.
    Error(String),
}

/// Evaluates a service's progress. `hostnames` maps node ids to names for global lines.
pub fn evaluate(
    mode: Option<&Mode>,
    tasks: &[Task],
    min_spec_version: u64,
    hostnames: &HashMap<String, String>,
) -> Progress {
    let current: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.spec_version >= min_spec_version)
        .collect();
    match mode {
        Some(Mode::Replicated(r)) => replicated(&current, r.replicas),
        Some(Mode::Global(_)) => global(&current, hostnames, false),
        Some(Mode::ReplicatedJob(j)) => replicated_job(&current, j.total_completions),
        Some(Mode::GlobalJob(_)) => global(&current, hostnames, true),
        None => replicated(&current, 0),
    }
}

/// The summary line: `overall progress: 3 out of 5 tasks`.
pub fn summary(p: &Progress) -> String {
    let suffix = if p.job { " complete" } else { "" };
    format!(
        "overall progress: {} out of {} tasks{suffix}",
        p.done, p.total
    )
}

/// Width of the progress bar, as Docker draws it.
const BAR_WIDTH: usize = 50;

/// A line as drawn: `1/5: running   [==================================================>]`.
pub fn format_line(line: &Line) -> String {
    match &line.status {
        LineStatus::Error(e) => format!("{}: {}", line.label, one_line(e)),
        LineStatus::State { state, note: None } => {
            format!(
                "{}: {:<10}{}",
                line.label,
                state.display_name(),
                bar(*state)
            )
        }
        LineStatus::State {
            state,
            note: Some(n),
        } => format!(
            "{}: {:<10}({})",
            line.label,
            state.display_name(),
            one_line(n)
        ),
    }
}

/// `[====>    ]`, filled by how far the state is on the way to RUNNING.
fn bar(state: TaskState) -> String {
    const STEPS: [TaskState; 8] = [
        TaskState::New,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
    ];
    let step = match state {
        TaskState::Complete => STEPS.len(),
        s => STEPS.iter().position(|x| *x == s).map_or(0, |i| i + 1),
    };
    let filled = step * BAR_WIDTH / STEPS.len();
    format!(
        "[{}>{}]",
        "=".repeat(filled),
        " ".repeat(BAR_WIDTH - filled)
    )
}

/// Newlines would break the line-by-line redraw.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn state(t: &Task) -> TaskState {
    TaskState::of(t.status.as_ref().map_or(0, |s| s.state))
}

fn err(t: &Task) -> &str {
    t.status.as_ref().map_or("", |s| s.err.as_str())
}

fn created(t: &Task) -> i64 {
    t.meta.as_ref().map_or(0, |m| m.created_at_ns)
}

/// Still meant to run (or complete) and not given up on.
fn is_live(t: &Task) -> bool {
    TaskState::of(t.desired_state) <= TaskState::Complete && state(t) <= TaskState::Complete
}

fn is_failure(s: TaskState) -> bool {
    matches!(s, TaskState::Failed | TaskState::Rejected)
}

/// The task a group's line shows (see the module docs). `group` is not empty.
fn pick<'a>(group: &[&'a Task]) -> &'a Task {
    group
        .iter()
        .copied()
        .max_by(|a, b| {
            let key = |t: &Task| {
                (
                    is_live(t),
                    if is_live(t) { state(t) } else { TaskState::New },
                    created(t),
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        })
        .expect("groups are never empty")
}

/// The line status for a group.
fn status(group: &[&Task]) -> LineStatus {
    let t = pick(group);
    let s = state(t);
    if is_failure(s) {
        let e = err(t);
        return LineStatus::Error(if e.is_empty() {
            let code = t.status.as_ref().map_or(0, |st| st.exit_code);
            format!("{} (exit code {code})", s.display_name())
        } else {
            e.to_owned()
        });
    }
    if s < TaskState::Running && !err(t).is_empty() {
        return LineStatus::Error(err(t).to_owned());
    }
    let note = (s < TaskState::Running)
        .then(|| {
            group
                .iter()
                .filter(|o| o.id != t.id && is_failure(state(o)))
                .max_by_key(|o| created(o))
                .map(|o| {
                    let e = err(o);
                    format!(
                        "previous task failed: {}",
                        if e.is_empty() { "no error reported" } else { e }
                    )
                })
        })
        .flatten();
    LineStatus::State { state: s, note }
}

fn running(t: &Task) -> bool {
    is_live(t) && state(t) == TaskState::Running
}

fn replicated(tasks: &[&Task], replicas: u64) -> Progress {
    let mut by_slot: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        by_slot.entry(t.slot).or_default().push(t);
    }
    let mut lines = Vec::new();
    let mut done = 0;
    let mut stray_running = false;
    for (slot, group) in &by_slot {
        if (1..=replicas).contains(slot) {
            if running(pick(group)) {
                done += 1;
            }
            lines.push(Line {
                label: format!("{slot}/{replicas}"),
                status: status(group),
            });
        } else if group.iter().any(|t| running(t)) {
            stray_running = true;
        }
    }
    Progress {
        lines,
        done,
        total: replicas,
        job: false,
        converged: done == replicas && !stray_running,
    }
}

fn global(tasks: &[&Task], hostnames: &HashMap<String, String>, job: bool) -> Progress {
    let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        by_node.entry(t.node_id.as_str()).or_default().push(t);
    }
    let mut lines = Vec::new();
    let (mut done, mut total) = (0, 0);
    for (node, group) in &by_node {
        let shown = pick(group);
        let finished = if job {
            group.iter().any(|t| state(t) == TaskState::Complete)
        } else {
            running(shown)
        };
        if is_live(shown) || finished {
            total += 1;
        }
        if finished {
            done += 1;
        }
        let label = hostnames.get(*node).cloned().unwrap_or_else(|| {
            if node.is_empty() {
                "unassigned".into()
            } else {
                short_id(node, false).to_owned()
            }
        });
        lines.push(Line {
            label,
            status: status(group),
        });
    }
    Progress {
        lines,
        done,
        total,
        job,
        converged: total > 0 && done == total,
    }
}

fn replicated_job(tasks: &[&Task], total: u64) -> Progress {
    // Job tasks are grouped by slot when the manager numbers them, else one per task.
    let mut groups: BTreeMap<(u64, &str), Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        let key = if t.slot != 0 {
            (t.slot, "")
        } else {
            (0, t.id.as_str())
        };
        groups.entry(key).or_default().push(t);
    }
    let completed = tasks
        .iter()
        .filter(|t| state(t) == TaskState::Complete)
        .count() as u64;
    let lines = groups
        .values()
        .enumerate()
        .map(|(i, group)| {
            let slot = group[0].slot;
            let n = if slot != 0 { slot } else { i as u64 + 1 };
            Line {
                label: format!("{n}/{total}"),
                status: status(group),
            }
        })
        .collect();
    Progress {
        lines,
        done: completed.min(total),
        total,
        job: true,
        converged: completed >= total,
    }
}

#[cfg(test)]
mod tests;
