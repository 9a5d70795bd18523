//! The convergence decision, case by case.

use super::*;
use swarm_proto::{GlobalJob, GlobalService, Meta, ReplicatedJob, ReplicatedService, TaskStatus};

/// A task in `slot` on `node`, created at `created`, in `state`, meant to be `desired`.
fn task(
    id: &str,
    slot: u64,
    node: &str,
    created: i64,
    state: TaskState,
    desired: TaskState,
) -> Task {
    Task {
        id: id.into(),
        slot,
        node_id: node.into(),
        meta: Some(Meta {
            version: 1,
            created_at_ns: created,
            updated_at_ns: created,
        }),
        status: Some(TaskStatus {
            state: state as i32,
            ..Default::default()
        }),
        desired_state: desired as i32,
        spec_version: 1,
        ..Default::default()
    }
}

fn with_err(mut t: Task, e: &str) -> Task {
    t.status.as_mut().unwrap().err = e.into();
    t
}

fn with_version(mut t: Task, v: u64) -> Task {
    t.spec_version = v;
    t
}

fn replicas(n: u64) -> Mode {
    Mode::Replicated(ReplicatedService { replicas: n })
}

fn eval(mode: &Mode, tasks: &[Task]) -> Progress {
    evaluate(Some(mode), tasks, 0, &HashMap::new())
}

use TaskState::*;

#[test]
fn replicated_converges_when_every_slot_runs() {
    let tasks: Vec<Task> = (1..=3)
        .map(|s| task(&format!("t{s}"), s, "n1", 1, Running, Running))
        .collect();
    let p = eval(&replicas(3), &tasks);
    assert!(p.converged);
    assert_eq!((p.done, p.total), (3, 3));
    assert_eq!(summary(&p), "overall progress: 3 out of 3 tasks");
    assert_eq!(p.lines[0].label, "1/3");
    assert_eq!(
        format_line(&p.lines[0]),
        "1/3: running   [==================================================>]"
    );
}

#[test]
fn replicated_in_progress_counts_running_slots_only() {
    let tasks = vec![
        task("a", 1, "n1", 1, Running, Running),
        task("b", 2, "n1", 1, Preparing, Running),
        task("c", 3, "", 1, Pending, Running),
    ];
    let p = eval(&replicas(5), &tasks);
    assert!(!p.converged);
    assert_eq!((p.done, p.total), (1, 5));
    assert_eq!(p.lines.len(), 3, "slots without a task have no line yet");
    assert_eq!(
        format_line(&p.lines[1]),
        format!("2/5: preparing [{}>{}]", "=".repeat(31), " ".repeat(19))
    );
    assert_eq!(
        format_line(&p.lines[2]),
        format!("3/5: pending   [{}>{}]", "=".repeat(12), " ".repeat(38))
    );
}

#[test]
fn no_tasks_yet_is_not_converged_unless_zero_replicas() {
    assert!(!eval(&replicas(2), &[]).converged);
    assert!(eval(&replicas(0), &[]).converged);
}

#[test]
fn failed_task_shows_its_error() {
    let tasks = vec![
        task("a", 1, "n1", 1, Running, Running),
        with_err(task("b", 2, "n1", 1, Failed, Shutdown), "exit code 3"),
    ];
    let p = eval(&replicas(2), &tasks);
    assert!(!p.converged);
    assert_eq!(p.lines[1].status, LineStatus::Error("exit code 3".into()));
    assert_eq!(format_line(&p.lines[1]), "2/2: exit code 3");
}

#[test]
fn replacement_of_a_failed_task_notes_the_failure() {
    let tasks = vec![
        with_err(task("old", 1, "n1", 1, Failed, Shutdown), "boom"),
        task("new", 1, "n1", 2, Starting, Running),
    ];
    let p = eval(&replicas(1), &tasks);
    assert_eq!(
        p.lines[0].status,
        LineStatus::State {
            state: Starting,
            note: Some("previous task failed: boom".into())
        }
    );
    assert_eq!(
        format_line(&p.lines[0]),
        "1/1: starting  (previous task failed: boom)"
    );
}

#[test]
fn unschedulable_pending_task_shows_why() {
    let tasks = vec![with_err(
        task("a", 1, "", 1, Pending, Running),
        "no suitable node (1 node not available)",
    )];
    let p = eval(&replicas(1), &tasks);
    assert_eq!(
        p.lines[0].status,
        LineStatus::Error("no suitable node (1 node not available)".into())
    );
}

#[test]
fn failed_task_without_message_names_exit_code() {
    let mut t = task("a", 1, "n1", 1, Failed, Shutdown);
    t.status.as_mut().unwrap().exit_code = 2;
    let p = eval(&replicas(1), &[t]);
    assert_eq!(
        p.lines[0].status,
        LineStatus::Error("failed (exit code 2)".into())
    );
}

#[test]
fn update_waits_for_tasks_of_the_new_spec() {
    let old: Vec<Task> = (1..=2)
        .map(|s| task(&format!("o{s}"), s, "n1", 1, Running, Running))
        .collect();
    let p = evaluate(Some(&replicas(2)), &old, 7, &HashMap::new());
    assert!(!p.converged, "old tasks do not count");
    assert_eq!(p.done, 0);

    let mut tasks = old;
    tasks[0].desired_state = Shutdown as i32;
    tasks.push(with_version(task("n1", 1, "n1", 2, Running, Running), 7));
    let p = evaluate(Some(&replicas(2)), &tasks, 7, &HashMap::new());
    assert_eq!((p.done, p.converged), (1, false));

    tasks.push(with_version(task("n2", 2, "n1", 2, Running, Running), 7));
    assert!(evaluate(Some(&replicas(2)), &tasks, 7, &HashMap::new()).converged);
}

#[test]
fn start_first_prefers_the_running_task_of_a_slot() {
    let tasks = vec![
        task("old", 1, "n1", 1, Running, Running),
        task("new", 1, "n1", 2, Starting, Running),
    ];
    let p = eval(&replicas(1), &tasks);
    assert!(p.converged);
    assert_eq!(
        p.lines[0].status,
        LineStatus::State {
            state: Running,
            note: None
        }
    );
}

#[test]
fn scale_down_waits_for_extra_slots_to_stop() {
    let mut tasks: Vec<Task> = (1..=3)
        .map(|s| task(&format!("t{s}"), s, "n1", 1, Running, Running))
        .collect();
    let p = eval(&replicas(2), &tasks);
    assert!(!p.converged, "slot 3 still meant to run");
    assert_eq!(p.lines.len(), 2);
    tasks[2].desired_state = Shutdown as i32;
    assert!(eval(&replicas(2), &tasks).converged);
}

#[test]
fn global_converges_when_every_node_runs() {
    let hostnames: HashMap<String, String> = [("n1".to_string(), "alpha".to_string())].into();
    let mode = Mode::Global(GlobalService {});
    let mut tasks = vec![
        task("a", 0, "n1", 1, Running, Running),
        task("b", 0, "n2-0123456789abcdef", 1, Assigned, Running),
    ];
    let p = evaluate(Some(&mode), &tasks, 0, &hostnames);
    assert_eq!((p.done, p.total, p.converged), (1, 2, false));
    assert_eq!(p.lines[0].label, "alpha");
    assert_eq!(
        p.lines[1].label, "n2-012345678",
        "unknown nodes show a short id"
    );
    tasks[1].status.as_mut().unwrap().state = Running as i32;
    assert!(evaluate(Some(&mode), &tasks, 0, &hostnames).converged);
    assert!(
        !evaluate(Some(&mode), &[], 0, &hostnames).converged,
        "no task yet"
    );
}

#[test]
fn replicated_job_converges_on_completions() {
    let mode = Mode::ReplicatedJob(ReplicatedJob {
        max_concurrent: 2,
        total_completions: 3,
    });
    let mut tasks = vec![
        task("a", 1, "n1", 1, Complete, Complete),
        task("b", 2, "n1", 1, Running, Complete),
    ];
    let p = eval(&mode, &tasks);
    assert_eq!((p.done, p.total, p.job, p.converged), (1, 3, true, false));
    assert_eq!(summary(&p), "overall progress: 1 out of 3 tasks complete");
    assert_eq!(
        format_line(&p.lines[0]),
        "1/3: complete  [==================================================>]"
    );
    tasks[1].status.as_mut().unwrap().state = Complete as i32;
    tasks.push(task("c", 3, "n1", 2, Complete, Complete));
    assert!(eval(&mode, &tasks).converged);
}

#[test]
fn replicated_job_without_slots_lists_each_task() {
    let mode = Mode::ReplicatedJob(ReplicatedJob {
        max_concurrent: 2,
        total_completions: 2,
    });
    let tasks = vec![
        task("a", 0, "n1", 1, Complete, Complete),
        task("b", 0, "n1", 1, Running, Complete),
    ];
    let p = eval(&mode, &tasks);
    assert_eq!(
        p.lines.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(),
        ["1/2", "2/2"]
    );
    assert!(!p.converged);
}

#[test]
fn global_job_converges_when_every_node_completed() {
    let mode = Mode::GlobalJob(GlobalJob {});
    let mut tasks = vec![
        task("a", 0, "n1", 1, Complete, Complete),
        task("b", 0, "n2", 1, Running, Complete),
    ];
    let p = eval(&mode, &tasks);
    assert_eq!((p.done, p.total, p.converged), (1, 2, false));
    tasks[1].status.as_mut().unwrap().state = Complete as i32;
    assert!(eval(&mode, &tasks).converged);
}

#[test]
fn multi_line_errors_are_flattened() {
    let line = Line {
        label: "1/1".into(),
        status: LineStatus::Error("a\nb  c".into()),
    };
    assert_eq!(format_line(&line), "1/1: a b c");
}
