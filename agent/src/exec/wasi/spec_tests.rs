//! Validation of task specs: every bad field is rejected with a message naming it.

use swarm_proto::{Mount, ResourceRequirements, Resources, TaskSpec, Ulimit};

use super::*;

const DIGEST: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn task(wasm: WasmRuntime, limits: Option<Resources>) -> Task {
    Task {
        spec: Some(TaskSpec {
            runtime: Some(Runtime::Wasm(wasm)),
            resources: limits.map(|l| ResourceRequirements {
                limits: Some(l),
                reservations: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn wasm() -> WasmRuntime {
    WasmRuntime {
        artifact: format!("hello:1@{DIGEST}"),
        ..Default::default()
    }
}

fn err(wasm: WasmRuntime, limits: Option<Resources>) -> String {
    RunSpec::from_task(&task(wasm, limits), &WasiLimits::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_full_spec_is_taken_apart() {
    let w = WasmRuntime {
        args: vec!["a".into(), "b c".into()],
        env: vec!["K=V=W".into(), "EMPTY=".into()],
        workdir: "/data".into(),
        mounts: vec![Mount {
            source: "/tmp".into(),
            target: "/data".into(),
            readonly: true,
        }],
        ulimits: vec![Ulimit {
            name: "cpu".into(),
            soft: 3,
            hard: 5,
        }],
        ..wasm()
    };
    let limits = Resources {
        nano_cpus: 500_000_000,
        memory_bytes: 64 << 20,
    };
    let s = RunSpec::from_task(&task(w, Some(limits)), &WasiLimits::default()).unwrap();
    assert_eq!(s.artifact, ArtifactRef::Pinned(DIGEST.into()));
    assert_eq!(s.argv, ["hello", "a", "b c"]);
    assert_eq!(
        s.env,
        [("K".into(), "V=W".into()), ("EMPTY".into(), String::new())]
    );
    assert_eq!(s.workdir.as_deref(), Some("/data"));
    assert!(s.mounts[0].readonly);
    assert_eq!(s.memory_bytes, 64 << 20);
    assert_eq!(s.nano_cpus, 500_000_000);
    assert_eq!(s.cpu_limit_secs, Some(3));
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let s = RunSpec::from_task(&task(wasm(), None), &WasiLimits::default()).unwrap();
    assert_eq!(s.memory_bytes, WasiLimits::default().default_memory_bytes);
    assert_eq!((s.nano_cpus, s.cpu_limit_secs, s.workdir), (0, None, None));
    let bare = WasmRuntime {
        artifact: DIGEST.into(),
        ..Default::default()
    };
    let s = RunSpec::from_task(&task(bare, None), &WasiLimits::default()).unwrap();
    assert_eq!(s.argv, [DIGEST]);
}

#[test]
fn bad_fields_are_rejected_with_their_names() {
    let e = err(
        WasmRuntime {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1,
                hard: 1,
            }],
            ..wasm()
        },
        None,
    );
    assert_eq!(
        e,
        "invalid task: ulimit \"nofile\" is not supported for WASM tasks (supported: cpu=SECONDS)"
    );
    let e = err(
        WasmRuntime {
            env: vec!["NOVALUE".into()],
            ..wasm()
        },
        None,
    );
    assert!(e.contains("\"NOVALUE\" is not KEY=VALUE"), "{e}");
    let e = err(
        WasmRuntime {
            workdir: "rel".into(),
            ..wasm()
        },
        None,
    );
    assert!(e.contains("must be an absolute guest path"), "{e}");
    let e = err(
        WasmRuntime {
            mounts: vec![Mount {
                source: "data".into(),
                target: "/d".into(),
                readonly: false,
            }],
            ..wasm()
        },
        None,
    );
    assert!(e.contains("mount source \"data\""), "{e}");
    let big = Resources {
        nano_cpus: 0,
        memory_bytes: 4 << 30,
    };
    assert_eq!(
        err(wasm(), Some(big)),
        "invalid task: memory limit of 4 GiB is above this node's maximum of 1 GiB per WASM task"
    );
    let e = err(
        WasmRuntime {
            artifact: "hello:1".into(),
            ..Default::default()
        },
        None,
    );
    assert!(e.contains("not pinned"), "{e}");
    let oci = Task {
        spec: Some(TaskSpec {
            runtime: Some(Runtime::Oci(Default::default())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = RunSpec::from_task(&oci, &WasiLimits::default()).unwrap_err();
    assert!(e.to_string().contains("not OCI containers"), "{e}");
}

#[test]
fn a_registry_reference_is_pulled_not_pinned() {
    let w = WasmRuntime {
        artifact: "127.0.0.1:5000/team/hello:1".into(),
        args: vec!["x".into()],
        ..Default::default()
    };
    let s = RunSpec::from_task(&task(w, None), &WasiLimits::default()).unwrap();
    assert_eq!(
        s.artifact,
        ArtifactRef::Registry("127.0.0.1:5000/team/hello:1".into())
    );
    assert_eq!(s.argv, ["hello", "x"]);
    let bad = WasmRuntime {
        artifact: "127.0.0.1:5000/Hello:1".into(),
        ..Default::default()
    };
    assert_eq!(
        err(bad, None),
        "invalid task: artifact '127.0.0.1:5000/Hello:1': invalid repository name (expected \
         HOST[:PORT]/REPO[:TAG|@sha256:HEX])"
    );
}
