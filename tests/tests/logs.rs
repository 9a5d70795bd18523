//! End to end, task logs: real `swarm-manager` (pure manager), two `swarm-agent`s and
//! `swarmctl service logs` / `task logs`.
//!
//! The null backend writes no output, so the test writes each running task's log file on
//! its agent (`<agent-state>/logs/<task-id>.log`, the tasklog JSON-lines format) and checks
//! what swarmctl prints: prefixes, order, stdout vs stderr, `--tail`, `-f`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use swarm_tests::{ManagerProc, Proc, bin, desired_of, spawn_agent, state_of, wait_for};

const CONVERGE: Duration = Duration::from_secs(30);

/// A running task: its id, slot and the agent state dir holding its logs.
struct RunningTask {
    id: String,
    slot: u64,
    hostname: String,
    logs: PathBuf,
}

fn hostnames(m: &ManagerProc) -> BTreeMap<String, String> {
    let nodes = m.ctl_json(&["node", "ls"]);
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["description"]["hostname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn running_tasks(m: &ManagerProc, service: &str, dir: &Path, want: usize) -> Vec<RunningTask> {
    let tasks: Vec<Value> = wait_for(
        &format!("{want} running tasks of {service}"),
        CONVERGE,
        || {
            let t: Vec<Value> = m
                .tasks(service)
                .into_iter()
                .filter(|t| state_of(t) == "RUNNING" && desired_of(t) == "RUNNING")
                .collect();
            (t.len() == want).then_some(t)
        },
    );
    let hosts = hostnames(m);
    tasks
        .iter()
        .map(|t| {
            let hostname = hosts[t["node_id"].as_str().unwrap()].clone();
            RunningTask {
                id: t["id"].as_str().unwrap().to_string(),
                slot: t["slot"].as_u64().unwrap(),
                logs: dir.join(&hostname).join("logs"),
                hostname,
            }
        })
        .collect()
}

/// Appends records to a task's current log file, as the writer would.
fn write_log(task: &RunningTask, records: &[(&str, &str)]) {
    std::fs::create_dir_all(&task.logs).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(task.logs.join(format!("{}.log", task.id)))
        .unwrap();
    for (i, (stream, line)) in records.iter().enumerate() {
        let time = 1_700_000_000_000_000_000_i64 + i as i64;
        let rec = serde_json::json!({"time": time.to_string(), "stream": stream, "log": line});
        writeln!(f, "{rec}").unwrap();
    }
}

fn prefix(t: &RunningTask) -> String {
    format!("web.{}.{}@{}    | ", t.slot, &t.id[..12], t.hostname)
}

/// The lines of `text` that start with `prefix`, prefix removed.
fn lines_of(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix).map(str::to_string))
        .collect()
}

fn ctl(m: &ManagerProc, args: &[&str]) -> (String, String) {
    let out = m.ctl(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "swarmctl {args:?} failed:\n{stderr}\n{stdout}"
    );
    (stdout, stderr)
}

#[test]
fn t10_service_and_task_logs_from_two_agents() {
    swarm_tests::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let _a1 = spawn_agent(&m, &dir.path().join("worker-1"), "worker-1").unwrap();
    let _a2 = spawn_agent(&m, &dir.path().join("worker-2"), "worker-2").unwrap();
    wait_for("two workers to join", CONVERGE, || {
        let hosts = hostnames(&m);
        let joined = |h: &str| hosts.values().any(|v| v == h);
        (joined("worker-1") && joined("worker-2")).then_some(())
    });

    tracing::info!("--- a service of two replicas, one log file per task");
    // An OCI-style reference needs no `artifact push`, and the null backend runs anything.
    m.ctl_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "2",
        "registry.test/web:1",
    ]);
    let tasks = running_tasks(&m, "web", dir.path(), 2);
    for t in &tasks {
        let s = t.slot.to_string();
        write_log(
            t,
            &[
                ("stdout", &format!("{s}-out-1")),
                ("stdout", &format!("{s}-out-2")),
                ("stderr", &format!("{s}-err-1")),
                ("stdout", &format!("{s}-out-3")),
            ],
        );
    }

    tracing::info!("--- service logs: every line, prefixed, stdout and stderr apart");
    let (stdout, stderr) = ctl(&m, &["service", "logs", "web"]);
    for t in &tasks {
        let s = t.slot;
        assert_eq!(
            lines_of(&stdout, &prefix(t)),
            [
                format!("{s}-out-1"),
                format!("{s}-out-2"),
                format!("{s}-out-3")
            ],
            "stdout:\n{stdout}"
        );
        assert_eq!(
            lines_of(&stderr, &prefix(t)),
            [format!("{s}-err-1")],
            "stderr:\n{stderr}"
        );
    }

    tracing::info!("--- --tail 2: the last two lines of each task");
    let (stdout, stderr) = ctl(&m, &["service", "logs", "--tail", "2", "web"]);
    for t in &tasks {
        let s = t.slot;
        assert_eq!(lines_of(&stdout, &prefix(t)), [format!("{s}-out-3")]);
        assert_eq!(lines_of(&stderr, &prefix(t)), [format!("{s}-err-1")]);
    }

    tracing::info!("--- --raw and --timestamps");
    let (stdout, _) = ctl(&m, &["service", "logs", "--raw", "--tail", "1", "web"]);
    let mut raw: Vec<&str> = stdout.lines().collect();
    raw.sort();
    assert_eq!(raw, ["1-out-3", "2-out-3"]);
    let (stdout, _) = ctl(&m, &["task", "logs", "-t", "--tail", "1", &tasks[0].id]);
    assert_eq!(
        lines_of(&stdout, &prefix(&tasks[0])),
        [format!(
            "2023-11-14T22:13:20.000000003Z {}-out-3",
            tasks[0].slot
        )]
    );

    tracing::info!("--- task logs: one task only");
    let (stdout, _) = ctl(&m, &["task", "logs", &tasks[1].id[..12]]);
    assert_eq!(lines_of(&stdout, &prefix(&tasks[1])).len(), 3);
    assert!(lines_of(&stdout, &prefix(&tasks[0])).is_empty(), "{stdout}");

    tracing::info!("--- -f: a line written afterwards arrives");
    let out = dir.path().join("follow.out");
    let args: Vec<String> = [
        "--socket",
        &m.socket().display().to_string(),
        "service",
        "logs",
        "-f",
        "--tail",
        "1",
        "web",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut follow = Proc::spawn("swarmctl -f", &bin("swarmctl"), &args, &out).unwrap();
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_for("the followed backlog", CONVERGE, || {
        let o = read();
        tasks
            .iter()
            .all(|t| lines_of(&o, &prefix(t)).contains(&format!("{}-out-3", t.slot)))
            .then_some(())
    });
    write_log(&tasks[1], &[("stdout", "appended-later")]);
    wait_for("the appended line to be followed", CONVERGE, || {
        lines_of(&read(), &prefix(&tasks[1]))
            .contains(&"appended-later".to_string())
            .then_some(())
    });
    assert!(
        follow.child.try_wait().unwrap().is_none(),
        "-f keeps streaming: {}",
        read()
    );
    follow.kill9();

    tracing::info!("--- an unknown service is a clear error");
    let bad = m.ctl(&["service", "logs", "nope"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nope") && err.contains("not found"), "{err}");
}
