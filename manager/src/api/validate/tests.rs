//! One test per rule: a good value passes, each bad value fails with a message that says why.

use swarm_proto::{
    Annotations, CaConfig, ClusterSpec, DispatcherConfig, EndpointSpec, GlobalJob, GlobalService,
    Mount, NodeSpec, OciRuntime, OrchestrationConfig, Placement, PortConfig, RaftConfig,
    ReplicatedJob, ReplicatedService, ResourceRequirements, Resources, RestartPolicy, ServiceSpec,
    TaskSpec, UpdateConfig, WasmRuntime, service_spec::Mode, task_spec::Runtime,
};

use super::*;

/// A valid replicated service running a wasm artifact; tests break one field at a time.
pub(crate) fn good_spec(name: &str) -> ServiceSpec {
    ServiceSpec {
        annotations: Some(Annotations {
            name: name.into(),
            ..Default::default()
        }),
        mode: Some(Mode::Replicated(ReplicatedService { replicas: 3 })),
        task: Some(TaskSpec {
            runtime: Some(Runtime::Wasm(WasmRuntime {
                artifact: "hello:1.0".into(),
                env: vec!["A=1".into(), "EMPTY=".into()],
                mounts: vec![Mount {
                    source: "/srv/data".into(),
                    target: "/data".into(),
                    readonly: true,
                }],
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn wasm(spec: &mut ServiceSpec) -> &mut WasmRuntime {
    match spec.task.as_mut().unwrap().runtime.as_mut().unwrap() {
        Runtime::Wasm(w) => w,
        Runtime::Oci(_) => panic!("not wasm"),
    }
}

fn task(spec: &mut ServiceSpec) -> &mut TaskSpec {
    spec.task.as_mut().unwrap()
}

#[track_caller]
fn assert_invalid(r: Result, needle: &str) {
    match r {
        Ok(()) => panic!("expected an error containing {needle:?}, got Ok"),
        Err(e) => assert!(
            e.0.contains(needle),
            "{:?} does not contain {needle:?}",
            e.0
        ),
    }
}

#[test]
fn t00_good_spec_passes() {
    service_spec(&good_spec("web")).unwrap();
}

#[test]
fn t01_name_is_required_and_follows_docker_rules() {
    for ok in ["web", "a", "web-1", "my_app.v2", "A1", &"a".repeat(63)] {
        service_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let mut spec = good_spec("web");
    spec.annotations = None;
    assert_invalid(service_spec(&spec), "service name is required (--name)");
    assert_invalid(
        service_name(&"a".repeat(64)),
        "is 64 characters long; the maximum is 63",
    );
    for bad in ["-web", "web-", "_x", "x.", "we b", "wéb", "web!", "a/b"] {
        assert_invalid(
            service_name(bad),
            "only letters, digits, '-', '_' and '.' are allowed",
        );
    }
}

#[test]
fn t02_label_keys_are_non_empty_without_whitespace() {
    let mut spec = good_spec("web");
    let labels = &mut spec.annotations.as_mut().unwrap().labels;
    labels.insert("com.example.team".into(), "a".into());
    service_spec(&spec).unwrap();
    spec.annotations
        .as_mut()
        .unwrap()
        .labels
        .insert("bad key".into(), "v".into());
    assert_invalid(
        service_spec(&spec),
        "label key \"bad key\" contains whitespace",
    );
}

#[test]
fn t03_mode_is_required() {
    let mut spec = good_spec("web");
    spec.mode = None;
    assert_invalid(service_spec(&spec), "service mode is required");
    for m in [
        Mode::Global(GlobalService {}),
        Mode::GlobalJob(GlobalJob {}),
    ] {
        spec.mode = Some(m);
        service_spec(&spec).unwrap();
    }
}

#[test]
fn t04_replicas_are_capped() {
    let mut spec = good_spec("web");
    for ok in [0, 1, MAX_REPLICAS] {
        spec.mode = Some(Mode::Replicated(ReplicatedService { replicas: ok }));
        service_spec(&spec).unwrap();
    }
    spec.mode = Some(Mode::Replicated(ReplicatedService {
        replicas: MAX_REPLICAS + 1,
    }));
    assert_invalid(
        service_spec(&spec),
        "replicas (--replicas) is 1000001, more than the maximum of 1000000",
    );
}

#[test]
fn t05_replicated_jobs_need_completions_and_concurrency() {
    let job = |max_concurrent, total_completions| {
        mode(Some(&Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent,
            total_completions,
        })))
    };
    job(1, 1).unwrap();
    job(2, 10).unwrap();
    job(10, 2).unwrap(); // more concurrency than work: allowed, as in Docker
    assert_invalid(
        job(1, 0),
        "total_completions (--replicas) must be at least 1, not 0",
    );
    assert_invalid(
        job(0, 5),
        "max_concurrent (--max-concurrent) must be at least 1, not 0",
    );
    assert_invalid(job(1, MAX_REPLICAS + 1), "more than the maximum of 1000000");
}

#[test]
fn t06_task_runtime_is_required() {
    let mut spec = good_spec("web");
    spec.task = None;
    assert_invalid(service_spec(&spec), "task spec is required");
    let mut spec = good_spec("web");
    task(&mut spec).runtime = None;
    assert_invalid(service_spec(&spec), "task runtime is required");
}

#[test]
fn t07_wasm_artifact_references() {
    let digest = "a".repeat(64);
    for ok in [
        "hello".to_string(),
        "hello:1.0".into(),
        "team/hello:latest".into(),
        format!("sha256:{digest}"),
        "registry.example.com/team/app:1.2".into(),
        "localhost:5000/app".into(),
        "localhost/app:v1".into(),
        format!("ghcr.io/org/app@sha256:{digest}"),
        "my-app_2.x:v1.0-rc_1".into(),
    ] {
        artifact(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    assert_invalid(artifact(""), "artifact is required");
    assert_invalid(artifact("sha256:abc"), "a digest is sha256: followed by 64");
    assert_invalid(
        artifact(&format!("sha256:{}", "A".repeat(64))),
        "64 lowercase hex",
    );
    assert_invalid(artifact("app@sha256:12"), "a digest is sha256:");
    assert_invalid(artifact("Hello"), "the name must be lowercase");
    assert_invalid(artifact("hello:"), "a tag is up to 128");
    assert_invalid(artifact("hello:-x"), "a tag is up to 128");
    assert_invalid(artifact("a//b"), "empty path component");
    assert_invalid(artifact("my app"), "a name component is lowercase letters");
    assert_invalid(
        artifact("-app"),
        "expected NAME[:TAG], sha256:<64 hex digits>",
    );

    let mut spec = good_spec("web");
    wasm(&mut spec).artifact.clear();
    assert_invalid(service_spec(&spec), "artifact is required");
}

#[test]
fn t08_oci_image_is_required() {
    let mut spec = good_spec("web");
    let oci = |image: &str| {
        Some(Runtime::Oci(OciRuntime {
            image: image.into(),
            ..Default::default()
        }))
    };
    task(&mut spec).runtime = oci("docker.io/library/alpine:3.20");
    service_spec(&spec).unwrap();
    task(&mut spec).runtime = oci(" ");
    assert_invalid(service_spec(&spec), "OCI image is required");
    task(&mut spec).runtime = oci("alpine latest");
    assert_invalid(service_spec(&spec), "contains whitespace");
}

#[test]
fn t09_env_entries_are_key_value() {
    env(&["A=1".into(), "B=".into(), "C=x=y".into()]).unwrap();
    assert_invalid(
        env(&["A".into()]),
        "invalid env entry \"A\": expected KEY=VALUE",
    );
    assert_invalid(env(&["=1".into()]), "the variable name is empty");
    assert_invalid(
        env(&["MY VAR=1".into()]),
        "the variable name contains whitespace",
    );
    let mut spec = good_spec("web");
    wasm(&mut spec).env.push("NOPE".into());
    assert_invalid(service_spec(&spec), "expected KEY=VALUE (--env)");
}

#[test]
fn t10_mounts_are_absolute_and_unique() {
    let m = |s: &str, t: &str| Mount {
        source: s.into(),
        target: t.into(),
        readonly: false,
    };
    mounts(&[m("/a", "/x"), m("/a", "/y")]).unwrap();
    assert_invalid(
        mounts(&[m("rel", "/x")]),
        "invalid mount source \"rel\": it must be an absolute path",
    );
    assert_invalid(mounts(&[m("", "/x")]), "invalid mount source \"\"");
    assert_invalid(
        mounts(&[m("/a", "x")]),
        "invalid mount target \"x\": it must be an absolute path",
    );
    assert_invalid(
        mounts(&[m("/a", "/x"), m("/b", "/x/")]),
        "duplicate mount target \"/x/\"",
    );
}

#[test]
fn t11_resources_are_non_negative_and_reservations_fit_limits() {
    let rr = |limit_cpu, limit_mem, res_cpu, res_mem| ResourceRequirements {
        limits: Some(Resources {
            nano_cpus: limit_cpu,
            memory_bytes: limit_mem,
        }),
        reservations: Some(Resources {
            nano_cpus: res_cpu,
            memory_bytes: res_mem,
        }),
    };
    resources(&rr(1_000_000_000, 64 << 20, 500_000_000, 32 << 20)).unwrap();
    resources(&rr(0, 0, 2_000_000_000, 1 << 30)).unwrap(); // no limits: any reservation
    resources(&rr(1_000_000_000, 64 << 20, 1_000_000_000, 64 << 20)).unwrap(); // equal is fine
    assert_invalid(
        resources(&rr(-1, 0, 0, 0)),
        "--limit-cpu must not be negative (got -1)",
    );
    assert_invalid(
        resources(&rr(0, 0, 0, -5)),
        "--reserve-memory must not be negative",
    );
    assert_invalid(
        resources(&rr(500_000_000, 0, 1_000_000_000, 0)),
        "the CPU reservation (1 CPUs, --reserve-cpu) is more than the CPU limit (0.5 CPUs, --limit-cpu)",
    );
    assert_invalid(
        resources(&rr(0, 100, 0, 200)),
        "the memory reservation (200 bytes, --reserve-memory) is more than the memory limit (100 bytes",
    );
}

#[test]
fn t12_restart_policy() {
    let mut r = RestartPolicy {
        condition: RestartCondition::RestartOnFailure as i32,
        delay_ms: Some(5_000),
        max_attempts: 3,
        window_ms: 60_000,
    };
    restart(&r).unwrap();
    r.condition = 7;
    assert_invalid(restart(&r), "unknown restart condition 7");
    r.condition = 0;
    r.delay_ms = Some(MAX_DURATION_MS + 1);
    assert_invalid(restart(&r), "restart delay (--restart-delay) of");
    r.delay_ms = None;
    r.window_ms = u64::MAX;
    assert_invalid(restart(&r), "restart window (--restart-window) of");
}

#[test]
fn t13_placement_constraints_are_parsed_by_the_scheduler() {
    let p = |constraints: &[&str], max_replicas| Placement {
        constraints: constraints.iter().map(|c| c.to_string()).collect(),
        max_replicas,
    };
    let replicated = Mode::Replicated(ReplicatedService { replicas: 2 });
    placement(
        &p(&["node.role==manager", "node.labels.zone != b"], 2),
        Some(&replicated),
    )
    .unwrap();
    assert_invalid(
        placement(&p(&["node.role=manager"], 0), Some(&replicated)),
        "\"node.role=manager\"",
    );
    assert_invalid(
        placement(&p(&[], 1), Some(&Mode::Global(GlobalService {}))),
        "max_replicas (--replicas-max-per-node) only applies to replicated services",
    );
}

#[test]
fn t14_update_and_rollback_config() {
    let good = UpdateConfig {
        parallelism: Some(2),
        delay_ms: 10_000,
        failure_action: UpdateFailureAction::UpdateRollback as i32,
        monitor_ms: Some(5_000),
        max_failure_ratio: 0.25,
        order: UpdateOrder::StartFirst as i32,
    };
    update_config(&good, "update", "--update").unwrap();
    for ratio in [0.0, 1.0] {
        update_config(
            &UpdateConfig {
                max_failure_ratio: ratio,
                ..good
            },
            "update",
            "--update",
        )
        .unwrap();
    }
    for ratio in [-0.1, 1.5, f32::NAN] {
        assert_invalid(
            update_config(
                &UpdateConfig {
                    max_failure_ratio: ratio,
                    ..good
                },
                "update",
                "--update",
            ),
            "update max_failure_ratio (--update-max-failure-ratio) must be between 0 and 1",
        );
    }
    assert_invalid(
        update_config(
            &UpdateConfig {
                failure_action: 9,
                ..good
            },
            "update",
            "--update",
        ),
        "unknown update failure action 9",
    );
    assert_invalid(
        update_config(&UpdateConfig { order: 5, ..good }, "update", "--update"),
        "unknown update order 5",
    );
    assert_invalid(
        update_config(
            &UpdateConfig {
                delay_ms: u64::MAX,
                ..good
            },
            "update",
            "--update",
        ),
        "update delay (--update-delay)",
    );
    // Through the service spec: the rollback config may not roll back.
    let mut spec = good_spec("web");
    spec.rollback = Some(good);
    assert_invalid(service_spec(&spec), "a rollback can't fail by rolling back");
}

#[test]
fn t15_published_ports() {
    let port = |target, published, protocol: &str| PortConfig {
        name: String::new(),
        protocol: protocol.into(),
        target_port: target,
        published_port: published,
    };
    let e = |ports| EndpointSpec { ports };
    endpoint(&e(vec![
        port(80, 8080, ""),
        port(53, 8080, "udp"),
        port(443, 65535, "tcp"),
    ]))
    .unwrap();
    assert_invalid(
        endpoint(&e(vec![port(0, 80, "")])),
        "target port 0 is out of range",
    );
    assert_invalid(
        endpoint(&e(vec![port(80, 0, "")])),
        "published port 0 is out of range",
    );
    assert_invalid(
        endpoint(&e(vec![port(80, 70000, "")])),
        "published port 70000 is out of range",
    );
    assert_invalid(
        endpoint(&e(vec![port(80, 8080, ""), port(81, 8080, "TCP")])),
        "port 8080/tcp is published more than once",
    );
    assert_invalid(
        endpoint(&e(vec![port(80, 8080, "icmp")])),
        "unknown protocol \"icmp\"",
    );
}

#[test]
fn t16_node_spec_enums() {
    node_spec(&NodeSpec {
        annotations: None,
        desired_role: 1,
        availability: 2,
    })
    .unwrap();
    let bad_role = NodeSpec {
        desired_role: 3,
        ..Default::default()
    };
    assert_invalid(node_spec(&bad_role), "unknown node role 3");
    let bad_avail = NodeSpec {
        availability: -1,
        ..Default::default()
    };
    assert_invalid(
        node_spec(&bad_avail),
        "unknown node availability -1 (--availability active|pause|drain)",
    );
}

fn good_cluster() -> ClusterSpec {
    ClusterSpec {
        annotations: None,
        orchestration: Some(OrchestrationConfig {
            task_history_retention_limit: 5,
        }),
        raft: Some(RaftConfig {
            snapshot_interval: 10_000,
            log_entries_for_slow_followers: 500,
            heartbeat_tick: 1,
            election_tick: 10,
            tick_ms: 100,
            check_quorum: true,
            pre_vote: true,
        }),
        dispatcher: Some(DispatcherConfig {
            heartbeat_period_ms: 5_000,
        }),
        ca_config: Some(CaConfig {
            node_cert_expiry_secs: 90 * 24 * 3600,
        }),
        encryption: None,
    }
}

#[test]
fn t17_cluster_spec() {
    cluster_spec(&good_cluster()).unwrap();
    cluster_spec(&ClusterSpec::default()).unwrap();
    let mut short = good_cluster();
    short.ca_config = Some(CaConfig {
        node_cert_expiry_secs: 59,
    });
    assert_eq!(
        cluster_spec(&short).unwrap_err().to_string(),
        "node certificate expiry (--cert-expiry) must be at least 60 s, not 59 s"
    );

    let mut s = good_cluster();
    s.orchestration
        .as_mut()
        .unwrap()
        .task_history_retention_limit = -1;
    assert_invalid(
        cluster_spec(&s),
        "task_history_retention_limit (--task-history-limit) must not be negative",
    );

    let raft = |f: fn(&mut RaftConfig)| {
        let mut s = good_cluster();
        f(s.raft.as_mut().unwrap());
        cluster_spec(&s)
    };
    assert_invalid(
        raft(|r| r.heartbeat_tick = 0),
        "raft heartbeat_tick must be at least 1",
    );
    assert_invalid(
        raft(|r| r.election_tick = 1),
        "raft election_tick (1) must be greater than heartbeat_tick (1)",
    );
    assert_invalid(
        raft(|r| r.tick_ms = 9),
        "raft tick_ms must be at least 10, not 9",
    );
    assert_invalid(raft(|r| r.snapshot_interval = 0), "raft snapshot_interval");

    let mut s = good_cluster();
    s.dispatcher.as_mut().unwrap().heartbeat_period_ms = 999;
    assert_invalid(
        cluster_spec(&s),
        "heartbeat period (--dispatcher-heartbeat) must be at least 1s, not 999 ms",
    );
}

#[test]
fn wasm_tasks_accept_only_the_cpu_ulimit() {
    let u = |name: &str, soft, hard| swarm_proto::Ulimit {
        name: name.into(),
        soft,
        hard,
    };
    assert!(wasm_ulimits(&[u("cpu", 10, 10)]).is_ok());
    assert!(wasm_ulimits(&[u("cpu", 5, -1)]).is_ok());
    let err = |us: &[swarm_proto::Ulimit]| wasm_ulimits(us).unwrap_err().to_string();
    assert!(err(&[u("nofile", 1, 1)]).contains("not supported for WASM tasks"));
    assert!(err(&[u("cpu", 1, 1), u("cpu", 2, 2)]).contains("given twice"));
    assert!(err(&[u("cpu", 0, 0)]).contains("seconds > 0"));
    assert!(err(&[u("cpu", 5, 2)]).contains("soft <= hard"));
}
