//! What the guest sees of the host: args, env and working directory from the spec, mounts as
//! preopens (read-only and writable), nothing outside them, no inherited environment.

use super::*;

#[tokio::test]
async fn t40_env_args_and_workdir_come_from_the_spec_only() {
    let f = Fixture::new();
    let echo = f.add("echo-env", swarm_guests::ECHO_ENV);
    let mut t = task("t1", &echo)
        .args(&["one"])
        .env(&["GREETING=hi there", "EMPTY="])
        .build();
    if let Some(Runtime::Wasm(w)) = t.spec.as_mut().unwrap().runtime.as_mut() {
        w.workdir = "/work".into();
    }
    f.run(&t).await.unwrap();
    // The working directory is offered as `wasi:cli/environment.initial-cwd`; Rust's
    // wasip2 std (wasi-libc) does not read it yet and reports "/", so only the line's
    // presence is checked.
    let lines = f.lines("t1");
    assert_eq!(
        lines[..4],
        [
            "arg[0]=echo-env",
            "arg[1]=one",
            "env EMPTY=",
            "env GREETING=hi there",
        ]
    );
    assert!(lines[4].starts_with("cwd /"), "{lines:?}");
    assert_eq!(lines.len(), 5, "no host environment leaks in: {lines:?}");
}

#[tokio::test]
async fn t41_mounts_are_preopens_readonly_or_writable() {
    let f = Fixture::new();
    let echo = f.add("echo-env", swarm_guests::ECHO_ENV);
    let ro = tempfile::tempdir().unwrap();
    let rw = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("input.txt"), "x").unwrap();

    tracing::info!("--- list the read-only mount, write into the writable one");
    let t = task("t1", &echo)
        .env(&["ECHO_LIST=/in:/out", "ECHO_WRITE=/out/result.txt"])
        .mount(ro.path(), "/in", true)
        .mount(rw.path(), "/out", false)
        .build();
    f.run(&t).await.unwrap();
    let lines = f.lines("t1");
    assert!(
        lines.contains(&"ls /in: input.txt".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"ls /out: (empty)".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"wrote /out/result.txt".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read_to_string(rw.path().join("result.txt")).unwrap(),
        "written by echo-env\n"
    );

    tracing::info!("--- writing into the read-only mount is refused");
    let t = task("t2", &echo)
        .env(&["ECHO_WRITE=/in/evil.txt"])
        .mount(ro.path(), "/in", true)
        .build();
    let exit = f.run(&t).await.unwrap();
    assert_eq!(exit.code, 1, "{exit:?}");
    assert!(
        exit.message.contains("cannot write /in/evil.txt"),
        "{exit:?}"
    );
    assert!(!ro.path().join("evil.txt").exists());
}

#[tokio::test]
async fn t42_paths_outside_preopens_are_refused() {
    let f = Fixture::new();
    let hog = f.add("hog", swarm_guests::HOG);
    let dir = tempfile::tempdir().unwrap();
    let t = task("t1", &hog)
        .args(&["escape", "/data/../../etc/passwd"])
        .mount(dir.path(), "/data", false)
        .build();
    let exit = f.run(&t).await.unwrap();
    assert_eq!(exit.code, 1, "{exit:?}");
    assert!(!f.lines("t1").contains(&"ESCAPED".to_string()));
}

#[tokio::test]
async fn t43_a_missing_mount_source_is_not_found_with_its_path() {
    let f = Fixture::new();
    let echo = f.add("echo-env", swarm_guests::ECHO_ENV);
    let t = task("t1", &echo)
        .mount(Path::new("/nonexistent/swarm-test-dir"), "/d", false)
        .build();
    let mut c = f.controller(&t);
    let err = within("prepare", c.prepare()).await.unwrap_err();
    assert!(matches!(err, ExecError::NotFound(_)), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/swarm-test-dir"),
        "{err}"
    );
}

#[tokio::test]
async fn t44_unknown_ulimits_and_missing_artifacts_are_rejected() {
    let f = Fixture::new();
    let echo = f.add("echo-env", swarm_guests::ECHO_ENV);
    let mut t = task("t1", &echo).build();
    if let Some(Runtime::Wasm(w)) = t.spec.as_mut().unwrap().runtime.as_mut() {
        w.ulimits.push(Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 10,
        });
    }
    let err = f.backend.controller(&t).err().expect("rejected");
    assert!(err.is_fatal());
    assert!(
        err.to_string()
            .contains("ulimit \"nofile\" is not supported"),
        "{err}"
    );

    let missing = format!("gone:1@{}", digest_of(b"not registered"));
    let mut c = f.controller(&task("t2", &missing).build());
    let err = within("prepare", c.prepare()).await.unwrap_err();
    assert!(matches!(err, ExecError::NotFound(_)), "{err:?}");
}
