//! End to end with the WASI backend: the example guests pushed with `swarmctl artifact push`,
//! run by a real `swarm-manager` (its in-process agent) or `swarm-agent` on wasmtime, observed
//! through `swarmctl service ps/inspect/logs`. Deadlines on every wait.

use std::time::Duration;

use serde_json::Value;
use swarm_tests::{ManagerProc, free_port, spawn_agent_with, state_of, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// Pushes `path` as `name:1`.
fn push(m: &ManagerProc, path: &str, name: &str) {
    m.ctl_ok(&["artifact", "push", path, &format!("{name}:1")]);
}

/// `service create -d --name NAME [flags…] NAME:1 [args…]`.
fn create(m: &ManagerProc, name: &str, flags: &[&str], args: &[&str]) {
    let artifact = format!("{name}:1");
    let mut a = vec!["service", "create", "-d", "--name", name];
    a.extend(flags);
    a.push(&artifact);
    a.extend(args);
    m.ctl_ok(&a);
}

/// Waits until the service's newest task is in `state`; returns it.
fn task_in(m: &ManagerProc, service: &str, state: &str) -> Value {
    wait_for(
        &format!("a task of {service} to be {state}"),
        CONVERGE,
        || m.tasks(service).into_iter().find(|t| state_of(t) == state),
    )
}

/// `service logs NAME` (stdout, stderr) once both contain what `done` wants.
fn logs_until(
    m: &ManagerProc,
    service: &str,
    done: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    wait_for(&format!("the logs of {service}"), CONVERGE, || {
        let out = m.ctl(&["service", "logs", service]);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        (out.status.success() && done(&o, &e)).then_some((o, e))
    })
}

fn err_of(task: &Value) -> String {
    task["status"]["err"].as_str().unwrap_or("").to_string()
}

#[test]
fn w10_every_guest_runs_through_the_whole_stack() {
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &[]).unwrap();
    let once = ["--restart-condition", "none"];

    push(&m, swarm_guests::HELLO, "hello");
    create(&m, "hello", &once, &["from", "tests"]);
    let t = task_in(&m, "hello", "COMPLETE");
    assert_eq!(t["status"]["exit_code"].as_i64().unwrap_or(0), 0);
    let (out, _) = logs_until(&m, "hello", |o, _| o.contains("hello from swarm"));
    assert!(out.contains("hello from swarm from tests"), "{out}");
    // Docker's prefix: name.slot.taskid@node |
    assert!(
        out.lines()
            .any(|l| l.starts_with("hello.1.") && l.contains("@manager-1")),
        "{out}"
    );

    push(&m, swarm_guests::HELLO_P1, "hello-p1");
    create(&m, "hello-p1", &once, &[]);
    task_in(&m, "hello-p1", "COMPLETE");

    push(&m, swarm_guests::EXIT_CODE_P1, "exit-code");
    create(&m, "exit-code", &once, &["3"]);
    let t = task_in(&m, "exit-code", "FAILED");
    assert_eq!(t["status"]["exit_code"].as_i64(), Some(3), "{t}");

    push(&m, swarm_guests::CRASHER, "crasher");
    create(&m, "crasher", &once, &[]);
    let t = task_in(&m, "crasher", "FAILED");
    let err = err_of(&t);
    assert!(
        err.starts_with("wasm trap: ") && err.contains("unreachable"),
        "{t}"
    );
    logs_until(&m, "crasher", |o, _| o.contains("about to crash"));

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("greeting.txt"), "hi").unwrap();
    let mount = format!("type=bind,source={},target=/data", data.display());
    push(&m, swarm_guests::ECHO_ENV, "echo-env");
    create(
        &m,
        "echo-env",
        &[
            &once[..],
            &[
                "--env",
                "COLOR=blue",
                "--env",
                "ECHO_LIST=/data",
                "--env",
                "ECHO_WRITE=/data/out.txt",
                "--mount",
                &mount,
            ],
        ]
        .concat(),
        &["a", "b"],
    );
    task_in(&m, "echo-env", "COMPLETE");
    let (out, _) = logs_until(&m, "echo-env", |o, _| o.contains("greeting.txt"));
    assert!(out.contains("COLOR=blue"), "{out}");
    assert!(out.contains("a"), "{out}");
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "written by echo-env\n"
    );

    push(&m, swarm_guests::SLEEPER, "sleeper");
    create(&m, "sleeper", &["--replicas", "2"], &[]);
    wait_for("2 sleepers RUNNING", CONVERGE, || {
        (m.tasks("sleeper")
            .iter()
            .filter(|t| state_of(t) == "RUNNING")
            .count()
            == 2)
            .then_some(())
    });
    logs_until(&m, "sleeper", |o, _| o.contains("sleeper tick 1"));
    m.ctl_ok(&["service", "scale", "-d", "sleeper=1"]);
    let t = task_in(&m, "sleeper", "SHUTDOWN");
    assert!(err_of(&t).is_empty(), "{t}");
}

#[test]
fn w20_hostile_guests_fail_alone_while_a_neighbour_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &[]).unwrap();
    let once = ["--restart-condition", "none"];
    push(&m, swarm_guests::SLEEPER, "neighbour");
    create(&m, "neighbour", &[], &[]);
    task_in(&m, "neighbour", "RUNNING");
    push(&m, swarm_guests::HOG, "hog");

    let cases: [(&str, Vec<&str>, &[&str], &str); 4] = [
        (
            "memory",
            vec!["--limit-memory", "64MiB"],
            &["memory"],
            "memory limit of 64 MiB exceeded",
        ),
        (
            "cpu",
            vec!["--ulimit", "cpu=2"],
            &["loop"],
            "cpu limit of 2 s exceeded",
        ),
        ("recurse", vec![], &["recurse"], "stack overflow"),
        (
            "escape",
            vec![],
            &["escape", "/etc/passwd"],
            "permission denied: path outside preopens",
        ),
    ];
    for (name, flags, args, want) in &cases {
        let service = format!("hog-{name}");
        let mut f = once.to_vec();
        f.extend(flags);
        let mut a = vec!["service", "create", "-d", "--name", &service];
        a.extend(&f);
        a.push("hog:1");
        a.extend(args.iter());
        m.ctl_ok(&a);
        let t = task_in(&m, &service, "FAILED");
        assert!(err_of(&t).contains(want), "{service}: want {want:?} in {t}");
    }
    // The neighbour never stopped and its log kept flowing throughout.
    let running = m.tasks("neighbour");
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(state_of(&running[0]), "RUNNING");
    let ticks = |o: &str| o.lines().filter(|l| l.contains("sleeper tick")).count();
    let (before, _) = logs_until(&m, "neighbour", |o, _| ticks(o) >= 1);
    let n = ticks(&before);
    logs_until(&m, "neighbour", |o, _| ticks(o) > n);
}

#[test]
fn w30_a_restarted_agent_loads_compiled_artifacts_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let m = ManagerProc::init(&dir.path().join("m"), &["--no-agent"]).unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let state = dir.path().join("agent");
    let flags = ["--backend", "wasi", "--metrics-addr", metrics.as_str()];
    let metric = |name: &str| swarm_tests::metric(&metrics, name);

    let mut agent = spawn_agent_with(&m, &state, "worker-1", &flags).unwrap();
    push(&m, swarm_guests::SLEEPER, "sleeper");
    create(&m, "sleeper", &[], &["--quiet"]);
    task_in(&m, "sleeper", "RUNNING");
    assert_eq!(metric("swarm_agent_wasm_compiles_total"), Some(1.0));

    agent.terminate(Duration::from_secs(10));
    let _agent = spawn_agent_with(&m, &state, "worker-1", &flags).unwrap();
    // A second service of the same artifact runs without compiling anything.
    push(&m, swarm_guests::SLEEPER, "sleeper2");
    create(&m, "sleeper2", &[], &["--quiet"]);
    task_in(&m, "sleeper2", "RUNNING");
    wait_for("the cache load to be counted", CONVERGE, || {
        (metric("swarm_agent_wasm_cache_loads_total")? >= 1.0).then_some(())
    });
    assert_eq!(metric("swarm_agent_wasm_compiles_total"), Some(0.0));
}
