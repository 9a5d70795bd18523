//! Flags → ServiceSpec, through clap as the binary parses them.

use clap::Parser;
use swarm_proto::{
    Annotations, Mount, OciRuntime, PortConfig, ReplicatedService, Resources, RestartPolicy,
};

use super::*;

#[derive(Parser, Debug)]
struct Create {
    #[command(flatten)]
    f: CreateFlags,
}

#[derive(Parser, Debug)]
struct Update {
    #[command(flatten)]
    f: UpdateFlags,
}

fn lookup(k: &str) -> Option<String> {
    (k == "FROM_CLIENT").then(|| "yes".to_string())
}

/// `service create ARGS…` → spec, or the error text (clap's or ours).
fn create(args: &[&str]) -> Result<ServiceSpec, String> {
    let c = Create::try_parse_from(std::iter::once("create").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    create_spec(&c.f, &lookup).map_err(|e| e.to_string())
}

fn create_err(args: &[&str]) -> String {
    create(args).expect_err("should fail")
}

/// `service update ARGS…` applied to `current`.
fn update(current: &ServiceSpec, args: &[&str]) -> Result<ServiceSpec, String> {
    let u = Update::try_parse_from(std::iter::once("update").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    update_spec(current, &u.f, &lookup).map_err(|e| e.to_string())
}

fn wasm(spec: &ServiceSpec) -> &WasmRuntime {
    match spec.task.as_ref().and_then(|t| t.runtime.as_ref()) {
        Some(Runtime::Wasm(w)) => w,
        other => panic!("not a wasm runtime: {other:?}"),
    }
}

fn task(spec: &ServiceSpec) -> &TaskSpec {
    spec.task.as_ref().unwrap()
}

#[test]
fn t10_minimal_create_is_one_replica_of_the_artifact() {
    let spec = create(&["hello:1"]).unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::Replicated(ReplicatedService { replicas: 1 }))
    );
    assert_eq!(wasm(&spec).artifact, "hello:1");
    assert!(wasm(&spec).args.is_empty());
    assert_eq!(spec.annotations.as_ref().unwrap().name, "");
    assert_eq!(
        task(&spec).restart,
        None,
        "unset flags leave SwarmKit defaults"
    );
    assert_eq!(task(&spec).resources, None);
    assert_eq!(spec.update, None);
    assert_eq!(spec.rollback, None);
    assert_eq!(spec.endpoint, None);
}

#[test]
fn t11_name_labels_and_trailing_args() {
    let spec = create(&[
        "--name",
        "web",
        "-l",
        "tier=front",
        "--label",
        "canary",
        "hello:1",
        "--port",
        "80",
        "-v",
    ])
    .unwrap();
    let a = spec.annotations.as_ref().unwrap();
    assert_eq!(a.name, "web");
    assert_eq!(sorted_labels(&a.labels), ["canary=", "tier=front"]);
    assert_eq!(
        wasm(&spec).args,
        ["--port", "80", "-v"],
        "flags after ARTIFACT belong to it"
    );
}

#[test]
fn t12_modes() {
    let spec = create(&["--replicas", "3", "a"]).unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::Replicated(ReplicatedService { replicas: 3 }))
    );
    let spec = create(&["--mode", "global", "a"]).unwrap();
    assert_eq!(spec.mode, Some(Mode::Global(GlobalService {})));
    let spec = create(&["--mode", "global-job", "a"]).unwrap();
    assert_eq!(spec.mode, Some(Mode::GlobalJob(GlobalJob {})));
    let spec = create(&["--mode", "replicated-job", "--replicas", "5", "a"]).unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 5,
            total_completions: 5
        }))
    );
    let spec = create(&[
        "--mode",
        "replicated-job",
        "--replicas",
        "5",
        "--max-concurrent",
        "2",
        "a",
    ])
    .unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 2,
            total_completions: 5
        }))
    );
    let spec = create(&["--mode", "replicated-job", "a"]).unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 1,
            total_completions: 1
        }))
    );
}

#[test]
fn t13_mode_conflicts() {
    assert_eq!(
        create_err(&["--mode", "global", "--replicas", "2", "a"]),
        "--replicas can only be used with replicated or replicated-job mode"
    );
    assert_eq!(
        create_err(&["--max-concurrent", "2", "a"]),
        "--max-concurrent can only be used with replicated-job mode"
    );
    assert_eq!(
        create_err(&["--mode", "global", "--max-replicas", "2", "a"]),
        "--max-replicas can only be used with replicated or replicated-job mode"
    );
    let e = create_err(&["--mode", "daemonset", "a"]);
    assert!(
        e.contains("invalid value 'daemonset' for '--mode <MODE>'"),
        "{e}"
    );
    let e = create_err(&["--replicas", "many", "a"]);
    assert!(e.contains("'--replicas <N>'"), "{e}");
    let e = create_err(&[]);
    assert!(e.contains("<ARTIFACT>"), "{e}");
}

#[test]
fn t20_env_workdir_mounts() {
    let spec = create(&[
        "-e",
        "A=1",
        "--env",
        "B=two words",
        "-e",
        "FROM_CLIENT",
        "-e",
        "NOT_SET",
        "-w",
        "/srv",
        "--mount",
        "type=bind,source=/data,target=/data,readonly",
        "--mount",
        "src=/logs,dst=/logs",
        "a",
    ])
    .unwrap();
    let w = wasm(&spec);
    assert_eq!(w.env, ["A=1", "B=two words", "FROM_CLIENT=yes"]);
    assert_eq!(w.workdir, "/srv");
    assert_eq!(
        w.mounts,
        [
            Mount {
                source: "/data".into(),
                target: "/data".into(),
                readonly: true
            },
            Mount {
                source: "/logs".into(),
                target: "/logs".into(),
                readonly: false
            },
        ]
    );
}

#[test]
fn t21_env_and_mount_errors_name_the_flag() {
    assert_eq!(
        create_err(&["-e", "=1", "a"]),
        "invalid --env \"=1\": missing variable name (expected KEY=VALUE)"
    );
    assert_eq!(
        create_err(&["--mount", "type=volume,source=v,target=/d", "a"]),
        "invalid --mount \"type=volume,source=v,target=/d\": unsupported mount type \"volume\" (only type=bind is supported)"
    );
    assert_eq!(
        create_err(&["--mount", "target=/d", "a"]),
        "invalid --mount \"target=/d\": missing source=PATH"
    );
}

#[test]
fn t30_resources() {
    let spec = create(&[
        "--limit-memory",
        "64MiB",
        "--limit-cpu",
        "0.5",
        "--reserve-memory",
        "32m",
        "--reserve-cpu",
        "0.25",
        "a",
    ])
    .unwrap();
    let r = task(&spec).resources.unwrap();
    assert_eq!(
        r.limits,
        Some(Resources {
            nano_cpus: 500_000_000,
            memory_bytes: 64 << 20
        })
    );
    assert_eq!(
        r.reservations,
        Some(Resources {
            nano_cpus: 250_000_000,
            memory_bytes: 32 << 20
        })
    );
}

#[test]
fn t31_resource_errors_name_the_flag() {
    assert!(
        create_err(&["--limit-memory", "12XB", "a"])
            .starts_with("invalid --limit-memory \"12XB\": unknown unit \"XB\""),
    );
    assert!(
        create_err(&["--reserve-memory", "lots", "a"])
            .starts_with("invalid --reserve-memory \"lots\": ")
    );
    assert_eq!(
        create_err(&["--limit-cpu", "half", "a"]),
        "invalid --limit-cpu \"half\": expected a number of CPUs such as 0.5 or 2"
    );
    assert!(create_err(&["--reserve-cpu", "0.0000000001", "a"]).contains("too precise"));
}

#[test]
fn t40_restart_policy() {
    let spec = create(&[
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "500ms",
        "--restart-max-attempts",
        "3",
        "--restart-window",
        "1m30s",
        "a",
    ])
    .unwrap();
    assert_eq!(
        task(&spec).restart,
        Some(RestartPolicy {
            condition: RestartCondition::RestartOnFailure as i32,
            delay_ms: Some(500),
            max_attempts: 3,
            window_ms: 90_000,
        })
    );
    let spec = create(&["--restart-condition", "none", "a"]).unwrap();
    let r = task(&spec).restart.unwrap();
    assert_eq!(
        (r.condition, r.delay_ms),
        (RestartCondition::RestartNone as i32, None)
    );
    assert_eq!(
        create_err(&["--restart-delay", "5", "a"]),
        "invalid --restart-delay \"5\": missing unit (use ms, s, m or h, as in 500ms, 5s or 1m30s)"
    );
    assert!(
        create_err(&["--restart-window", "1d", "a"])
            .starts_with("invalid --restart-window \"1d\": unknown unit \"d\"")
    );
    assert!(
        create_err(&["--restart-condition", "always", "a"])
            .contains("'--restart-condition <CONDITION>'")
    );
}

#[test]
fn t50_update_and_rollback_configs() {
    let spec = create(&[
        "--update-parallelism",
        "2",
        "--update-delay",
        "10s",
        "--update-failure-action",
        "rollback",
        "--update-monitor",
        "30s",
        "--update-max-failure-ratio",
        "0.25",
        "--update-order",
        "start-first",
        "--rollback-parallelism",
        "0",
        "--rollback-delay",
        "1s",
        "--rollback-failure-action",
        "continue",
        "--rollback-monitor",
        "2s",
        "--rollback-max-failure-ratio",
        "1",
        "--rollback-order",
        "stop-first",
        "a",
    ])
    .unwrap();
    assert_eq!(
        spec.update,
        Some(UpdateConfig {
            parallelism: Some(2),
            delay_ms: 10_000,
            failure_action: UpdateFailureAction::UpdateRollback as i32,
            monitor_ms: Some(30_000),
            max_failure_ratio: 0.25,
            order: UpdateOrder::StartFirst as i32,
        })
    );
    assert_eq!(
        spec.rollback,
        Some(UpdateConfig {
            parallelism: Some(0),
            delay_ms: 1000,
            failure_action: UpdateFailureAction::UpdateContinue as i32,
            monitor_ms: Some(2000),
            max_failure_ratio: 1.0,
            order: UpdateOrder::StopFirst as i32,
        })
    );
    let spec = create(&["--update-delay", "1s", "a"]).unwrap();
    let u = spec.update.unwrap();
    assert_eq!(
        (u.parallelism, u.monitor_ms),
        (None, None),
        "unset means the manager's default"
    );
    assert_eq!(spec.rollback, None);
}

#[test]
fn t51_update_config_errors_name_the_flag() {
    assert_eq!(
        create_err(&["--update-max-failure-ratio", "2", "a"]),
        "invalid --update-max-failure-ratio \"2\": expected a number between 0 and 1 (e.g. 0.2)"
    );
    assert!(
        create_err(&["--rollback-max-failure-ratio", "x", "a"])
            .starts_with("invalid --rollback-max-failure-ratio \"x\"")
    );
    assert!(
        create_err(&["--update-delay", "soon", "a"]).starts_with("invalid --update-delay \"soon\"")
    );
    assert!(
        create_err(&["--update-monitor", "5", "a"]).starts_with("invalid --update-monitor \"5\"")
    );
    assert!(
        create_err(&["--rollback-delay", "5", "a"]).starts_with("invalid --rollback-delay \"5\"")
    );
    assert!(
        create_err(&["--rollback-monitor", "5", "a"])
            .starts_with("invalid --rollback-monitor \"5\"")
    );
    assert!(
        create_err(&["--rollback-failure-action", "rollback", "a"])
            .contains("'--rollback-failure-action <ACTION>'")
    );
    assert!(
        create_err(&["--update-order", "random", "a"])
            .contains("[possible values: stop-first, start-first]")
    );
}

#[test]
fn t60_placement_and_ports() {
    let spec = create(&[
        "--constraint",
        "node.role==manager",
        "--constraint",
        "node.labels.zone!=b",
        "--max-replicas",
        "2",
        "-p",
        "8080:80",
        "--publish",
        "published=9090,target=90",
        "a",
    ])
    .unwrap();
    let p = task(&spec).placement.as_ref().unwrap();
    assert_eq!(p.constraints, ["node.role==manager", "node.labels.zone!=b"]);
    assert_eq!(p.max_replicas, 2);
    let ports = &spec.endpoint.as_ref().unwrap().ports;
    assert_eq!(ports.len(), 2);
    assert_eq!(
        (
            ports[0].published_port,
            ports[0].target_port,
            ports[0].protocol.as_str()
        ),
        (8080, 80, "tcp")
    );
    assert_eq!((ports[1].published_port, ports[1].target_port), (9090, 90));
    let spec = create(&["--replicas-max-per-node", "1", "a"]).unwrap();
    assert_eq!(
        task(&spec).placement.as_ref().unwrap().max_replicas,
        1,
        "Docker's flag name works too"
    );
}

#[test]
fn t61_placement_and_port_errors_name_the_flag() {
    assert_eq!(
        create_err(&["--constraint", "node.role=manager", "a"]),
        "invalid --constraint \"node.role=manager\": expected KEY==VALUE or KEY!=VALUE, where KEY is node.id, node.hostname, node.role, node.labels.<label> or engine.labels.<label>"
    );
    assert!(
        create_err(&["--constraint", "node.zone==a", "a"])
            .starts_with("invalid --constraint \"node.zone==a\": unknown key")
    );
    assert_eq!(
        create_err(&["-p", "8080:80/udp", "a"]),
        "invalid --publish \"8080:80/udp\": unsupported protocol \"udp\" (only tcp)"
    );
}

fn existing() -> ServiceSpec {
    let mut spec = create(&[
        "--name",
        "web",
        "--replicas",
        "2",
        "-l",
        "tier=front",
        "-l",
        "old=1",
        "-e",
        "A=1",
        "-e",
        "B=2",
        "--mount",
        "source=/a,target=/a",
        "--mount",
        "source=/b,target=/b",
        "--constraint",
        "node.role==worker",
        "-p",
        "8080:80",
        "-p",
        "8443:443",
        "hello:1",
        "x",
    ])
    .unwrap();
    spec.annotations.get_or_insert_default().name = "web".into();
    spec
}

#[test]
fn t70_update_without_flags_changes_nothing() {
    assert_eq!(update(&existing(), &[]).unwrap(), existing());
}

#[test]
fn t71_update_replicas_artifact_args_force() {
    let spec = update(
        &existing(),
        &[
            "--replicas",
            "5",
            "--image",
            "hello:2",
            "--args",
            "--port 81 'a b'",
            "--force",
        ],
    )
    .unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::Replicated(ReplicatedService { replicas: 5 }))
    );
    assert_eq!(wasm(&spec).artifact, "hello:2");
    assert_eq!(wasm(&spec).args, ["--port", "81", "a b"]);
    assert_eq!(task(&spec).force_update, 1);
    let spec = update(&spec, &["--artifact", "hello:3", "--force"]).unwrap();
    assert_eq!(wasm(&spec).artifact, "hello:3");
    assert_eq!(task(&spec).force_update, 2);

    let job = create(&["--mode", "replicated-job", "--replicas", "2", "a"]).unwrap();
    let spec = update(&job, &["--replicas", "7", "--max-concurrent", "3"]).unwrap();
    assert_eq!(
        spec.mode,
        Some(Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 3,
            total_completions: 7
        }))
    );
    let global = create(&["--mode", "global", "a"]).unwrap();
    assert_eq!(
        update(&global, &["--replicas", "2"]).unwrap_err(),
        "--replicas can only be used with replicated or replicated-job mode"
    );
    assert_eq!(
        update(&existing(), &["--args", "'open"]).unwrap_err(),
        "invalid --args \"'open\": unterminated ' quote"
    );
}

#[test]
fn t72_update_env_labels_constraints() {
    let spec = update(
        &existing(),
        &[
            "--env-add",
            "B=3",
            "--env-add",
            "C=4",
            "--env-rm",
            "A",
            "--label-add",
            "tier=back",
            "--label-rm",
            "old",
            "--constraint-rm",
            "node.role==worker",
            "--constraint-add",
            "node.labels.ssd==true",
        ],
    )
    .unwrap();
    assert_eq!(wasm(&spec).env, ["B=3", "C=4"]);
    assert_eq!(
        sorted_labels(&spec.annotations.as_ref().unwrap().labels),
        ["tier=back"]
    );
    assert_eq!(
        task(&spec).placement.as_ref().unwrap().constraints,
        ["node.labels.ssd==true"]
    );
    // The create spellings work as aliases of the -add flags.
    let spec = update(
        &existing(),
        &[
            "--env",
            "A=9",
            "--constraint",
            "node.role==worker",
            "--label",
            "x=y",
        ],
    )
    .unwrap();
    assert_eq!(wasm(&spec).env, ["A=9", "B=2"]);
    assert_eq!(
        task(&spec).placement.as_ref().unwrap().constraints,
        ["node.role==worker"],
        "no duplicates"
    );
    assert_eq!(spec.annotations.as_ref().unwrap().labels["x"], "y");
    assert!(
        update(&existing(), &["--constraint-add", "bogus"])
            .unwrap_err()
            .starts_with("invalid --constraint-add \"bogus\"")
    );
    assert!(
        update(&existing(), &["--env-add", "=x"])
            .unwrap_err()
            .starts_with("invalid --env-add \"=x\"")
    );
    assert!(
        update(&existing(), &["--label-add", "=x"])
            .unwrap_err()
            .starts_with("invalid --label-add \"=x\"")
    );
}

#[test]
fn t73_update_mounts_and_ports() {
    let spec = update(
        &existing(),
        &[
            "--mount-rm",
            "/a",
            "--mount-add",
            "source=/bb,target=/b,ro",
            "--mount-add",
            "source=/c,target=/c",
            "--publish-rm",
            "443",
            "--publish-add",
            "8080:8000",
            "--publish-add",
            "9000:90",
        ],
    )
    .unwrap();
    assert_eq!(
        wasm(&spec).mounts,
        [
            Mount {
                source: "/bb".into(),
                target: "/b".into(),
                readonly: true
            },
            Mount {
                source: "/c".into(),
                target: "/c".into(),
                readonly: false
            },
        ]
    );
    let ports: Vec<(u32, u32)> = spec
        .endpoint
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .map(|p| (p.published_port, p.target_port))
        .collect();
    assert_eq!(
        ports,
        [(8080, 8000), (9000, 90)],
        "8080 re-published, 443 removed"
    );
    assert!(
        update(&existing(), &["--mount-add", "source=x,target=/x"])
            .unwrap_err()
            .starts_with("invalid --mount-add")
    );
    assert!(
        update(&existing(), &["--publish-add", "x"])
            .unwrap_err()
            .starts_with("invalid --publish-add \"x\"")
    );
    assert!(
        update(&existing(), &["--publish-rm", "x"])
            .unwrap_err()
            .starts_with("invalid --publish-rm \"x\"")
    );
}

#[test]
fn t74_update_common_flags() {
    let spec = update(
        &existing(),
        &[
            "--limit-memory",
            "1g",
            "--restart-condition",
            "any",
            "--update-parallelism",
            "3",
            "-w",
            "/work",
            "--max-replicas",
            "1",
        ],
    )
    .unwrap();
    assert_eq!(
        task(&spec).resources.unwrap().limits.unwrap().memory_bytes,
        1 << 30
    );
    assert_eq!(
        task(&spec).restart.unwrap().condition,
        RestartCondition::RestartAny as i32
    );
    assert_eq!(spec.update.unwrap().parallelism, Some(3));
    assert_eq!(wasm(&spec).workdir, "/work");
    let p = task(&spec).placement.as_ref().unwrap();
    assert_eq!(
        (p.max_replicas, p.constraints.len()),
        (1, 1),
        "constraints kept"
    );
    assert!(
        update(&existing(), &["--limit-cpu", "x"])
            .unwrap_err()
            .starts_with("invalid --limit-cpu \"x\"")
    );
}

#[test]
fn t75_update_edits_an_oci_runtime_in_place() {
    let spec = ServiceSpec {
        annotations: Some(Annotations::default()),
        task: Some(TaskSpec {
            runtime: Some(Runtime::Oci(OciRuntime {
                image: "nginx:1".into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let spec = update(&spec, &["--image", "nginx:2", "--env-add", "A=1"]).unwrap();
    match task(&spec).runtime.as_ref().unwrap() {
        Runtime::Oci(o) => {
            assert_eq!(o.image, "nginx:2");
            assert_eq!(o.env, ["A=1"]);
        }
        other => panic!("runtime changed kind: {other:?}"),
    }
}

#[test]
fn t76_publish_add_replaces_the_same_published_port() {
    let mut ports = vec![PortConfig {
        protocol: "tcp".into(),
        target_port: 80,
        published_port: 8080,
        ..Default::default()
    }];
    add_port(
        &mut ports,
        PortConfig {
            protocol: "tcp".into(),
            target_port: 81,
            published_port: 8080,
            ..Default::default()
        },
    );
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].target_port, 81);
}

#[test]
fn t80_runtime_oci_makes_a_container_task_and_unknown_runtimes_are_refused() {
    let spec = create(&[
        "--runtime",
        "oci",
        "--env",
        "A=1",
        "--mount",
        "type=bind,source=/srv,target=/data,readonly",
        "oci-layout:/srv/busybox:1",
        "sh",
        "-c",
        "echo hi",
    ])
    .unwrap();
    match task(&spec).runtime.as_ref().unwrap() {
        Runtime::Oci(o) => {
            assert_eq!(o.image, "oci-layout:/srv/busybox:1");
            assert_eq!(o.args, ["sh", "-c", "echo hi"]);
            assert_eq!(o.env, ["A=1"]);
            assert!(o.mounts[0].readonly);
        }
        other => panic!("not an oci runtime: {other:?}"),
    }
    // The default stays WASM.
    assert_eq!(wasm(&create(&["hello"]).unwrap()).artifact, "hello");
    let err = create_err(&["--runtime", "docker", "x"]);
    assert!(err.contains("invalid value 'docker'"), "{err}");
    assert!(err.contains("wasm, oci"), "{err}");
}

#[test]
fn t77_read_only_is_for_containers() {
    let spec = create(&["--runtime", "oci", "--read-only", "oci-layout:/srv/img"]).unwrap();
    match task(&spec).runtime.as_ref().unwrap() {
        Runtime::Oci(o) => assert!(o.read_only),
        other => panic!("not an OCI runtime: {other:?}"),
    }
    let e = create(&["--read-only", "app:1"]).unwrap_err().to_string();
    assert!(e.contains("--read-only applies to containers"), "{e}");
}
