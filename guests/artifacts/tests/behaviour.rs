//! Each guest behaves as its `//!` header documents, run in real wasmtime + wasmtime-wasi.
//! Numbered from the plain guests to the hostile ones.

mod runner;

use std::time::Duration;

use runner::{Options, Outcome, run_component, run_core_module};
use wasmtime::Trap;
use wasmtime_wasi::FsPerms;

fn args(args: &[&str]) -> Options {
    Options {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Options::default()
    }
}

#[test]
fn t10_hello_greets_with_its_args() {
    let run = run_component(swarm_guests::HELLO, args(&[]), |_| {});
    assert_eq!(
        (run.outcome, run.stdout.as_str()),
        (Outcome::Exit(0), "hello from swarm\n")
    );
    let run = run_component(swarm_guests::HELLO, args(&["a", "b c"]), |_| {});
    assert_eq!(run.stdout, "hello from swarm a b c\n");
}

#[test]
fn t11_hello_p1_runs_as_a_core_module() {
    let run = run_core_module(swarm_guests::HELLO_P1, args(&["p1"]));
    assert_eq!(
        (run.outcome, run.stdout.as_str()),
        (Outcome::Exit(0), "hello from swarm p1\n")
    );
}

#[test]
fn t20_exit_code_exits_with_its_argument() {
    // WASI 0.2's `exit` carries only ok/err: every non-zero status reaches the host as 1.
    for (code, seen) in [(0, 0), (3, 1), (42, 1)] {
        let run = run_component(swarm_guests::EXIT_CODE, args(&[&code.to_string()]), |_| {});
        assert_eq!(run.stdout, format!("exiting with {code}\n"));
        assert_eq!(run.outcome, Outcome::Exit(seen), "stderr: {}", run.stderr);
    }
    let run = run_component(swarm_guests::EXIT_CODE, args(&["x"]), |_| {});
    assert_eq!(run.outcome, Outcome::Exit(1));
    assert!(
        run.stderr.contains("usage: exit-code N"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn t21_exit_code_p1_keeps_the_exact_status() {
    for code in [0, 3, 42] {
        let run = run_core_module(swarm_guests::EXIT_CODE_P1, args(&[&code.to_string()]));
        assert_eq!(run.stdout, format!("exiting with {code}\n"));
        assert_eq!(run.outcome, Outcome::Exit(code), "stderr: {}", run.stderr);
    }
    let run = run_core_module(swarm_guests::EXIT_CODE_P1, args(&[]));
    assert_eq!(run.outcome, Outcome::Exit(2), "usage errors exit 2");
}

#[test]
fn t30_crasher_traps() {
    let run = run_component(swarm_guests::CRASHER, args(&[]), |_| {});
    assert_eq!(run.stdout, "about to crash\n");
    assert_eq!(run.outcome, Outcome::Trap(Trap::UnreachableCodeReached));
}

#[test]
fn t40_echo_env_reports_args_env_cwd_and_mounts() {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::write(data.path().join("b.txt"), "b").expect("write b.txt");
    std::fs::create_dir(data.path().join("a-dir")).expect("mkdir a-dir");
    let run = run_component(swarm_guests::ECHO_ENV, args(&["x", "y z"]), |wasi| {
        wasi.env("ZED", "last")
            .env("ECHO_LIST", "/data")
            .env("ECHO_WRITE", "/data/out.txt")
            .preopened_dir(data.path(), "/data", FsPerms::ReadWrite)
            .expect("preopen /data");
    });
    let expected = "arg[0]=echo-env\narg[1]=x\narg[2]=y z\n\
                    env ECHO_LIST=/data\nenv ECHO_WRITE=/data/out.txt\nenv ZED=last\n\
                    cwd /\nls /data: a-dir\nls /data: b.txt\nwrote /data/out.txt\n";
    assert_eq!(run.stdout, expected, "stderr: {}", run.stderr);
    assert_eq!(run.outcome, Outcome::Exit(0));
    let written = std::fs::read_to_string(data.path().join("out.txt")).expect("out.txt written");
    assert_eq!(written, "written by echo-env\n");
}

#[test]
fn t41_echo_env_fails_on_a_read_only_mount() {
    let data = tempfile::tempdir().expect("temp dir");
    let run = run_component(swarm_guests::ECHO_ENV, args(&[]), |wasi| {
        wasi.env("ECHO_WRITE", "/ro/out.txt")
            .preopened_dir(data.path(), "/ro", FsPerms::ReadOnly)
            .expect("preopen /ro");
    });
    assert_eq!(run.outcome, Outcome::Exit(1));
    assert!(
        run.stderr.contains("echo-env: cannot write /ro/out.txt"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        !data.path().join("out.txt").exists(),
        "the read-only mount was written"
    );
}

#[test]
fn t50_sleeper_ticks_once_a_second_until_stopped() {
    let opts = Options {
        deadline: Duration::from_millis(1500),
        ..Options::default()
    };
    let run = run_component(swarm_guests::SLEEPER, opts, |_| {});
    assert_eq!(run.outcome, Outcome::Trap(Trap::Interrupt));
    assert!(
        run.stdout.starts_with("sleeper tick 0\nsleeper tick 1\n"),
        "stdout: {:?}",
        run.stdout
    );
}

#[test]
fn t51_quiet_sleeper_prints_nothing() {
    let opts = Options {
        deadline: Duration::from_millis(500),
        ..args(&["--quiet"])
    };
    let run = run_component(swarm_guests::SLEEPER, opts, |_| {});
    assert_eq!(run.outcome, Outcome::Trap(Trap::Interrupt));
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
}

#[test]
fn t60_hog_loop_spins_until_interrupted() {
    let opts = Options {
        deadline: Duration::from_millis(300),
        ..args(&["loop"])
    };
    let run = run_component(swarm_guests::HOG, opts, |_| {});
    assert_eq!(
        (run.outcome, run.stdout.as_str()),
        (Outcome::Trap(Trap::Interrupt), "hog: spinning\n")
    );
}

#[test]
fn t61_hog_memory_grows_until_the_limit() {
    let opts = Options {
        max_memory: 64 << 20,
        ..args(&["memory"])
    };
    let run = run_component(swarm_guests::HOG, opts, |_| {});
    // Rust's allocation-failure handler aborts, which is `unreachable` in wasm.
    assert_eq!(
        run.outcome,
        Outcome::Trap(Trap::UnreachableCodeReached),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stdout
            .starts_with("hog: allocated 16 MiB\nhog: allocated 32 MiB\n"),
        "stdout: {:?}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("allocated 64 MiB"),
        "stdout: {:?}",
        run.stdout
    );
}

#[test]
fn t62_hog_recurse_overflows_the_stack() {
    let run = run_component(swarm_guests::HOG, args(&["recurse"]), |_| {});
    assert_eq!(
        (run.outcome, run.stdout.as_str()),
        (Outcome::Trap(Trap::StackOverflow), "hog: recursing\n")
    );
}

#[test]
fn t63_hog_cannot_escape_its_preopens() {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::write(data.path().join("inside.txt"), "ok").expect("write inside.txt");
    let preopen = |wasi: &mut wasmtime_wasi::WasiCtxBuilder| {
        wasi.preopened_dir(data.path(), "/data", FsPerms::ReadOnly)
            .expect("preopen /data");
    };
    for path in ["/etc/passwd", "/data/../../../etc/passwd"] {
        let run = run_component(swarm_guests::HOG, args(&["escape", path]), preopen);
        assert_eq!(
            run.outcome,
            Outcome::Exit(1),
            "{path}: stdout {:?}",
            run.stdout
        );
        let wanted = format!("permission denied: path outside preopens: {path} (");
        assert!(
            run.stderr.starts_with(&wanted),
            "{path}: stderr {:?}",
            run.stderr
        );
    }
    // The control: a path inside the preopen opens, so the check above can fail.
    let run = run_component(
        swarm_guests::HOG,
        args(&["escape", "/data/inside.txt"]),
        preopen,
    );
    assert_eq!(
        (run.outcome, run.stdout.as_str()),
        (Outcome::Exit(0), "ESCAPED\n")
    );
}

#[test]
fn t70_hog_rejects_bad_arguments() {
    let run = run_component(swarm_guests::HOG, args(&["fly"]), |_| {});
    assert_eq!(
        run.outcome,
        Outcome::Exit(1),
        "status 2, seen as 1 through WASI 0.2"
    );
    assert!(run.stderr.contains("usage: hog"), "stderr: {}", run.stderr);
}
