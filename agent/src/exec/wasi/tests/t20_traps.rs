//! Guests that fault: a trap, stack exhaustion, and memory growth past the task's limit.

use super::*;

fn workload_error(result: Result<ExitStatus, ExecError>) -> String {
    match result {
        Err(e @ ExecError::Workload(_)) => {
            assert!(e.is_fatal());
            e.to_string()
        }
        other => panic!("expected a workload error, got {other:?}"),
    }
}

#[tokio::test]
async fn t20_a_trap_fails_the_task_with_the_trap_message() {
    let f = Fixture::new();
    let crasher = f.add("crasher", swarm_guests::CRASHER);
    let err = workload_error(f.run(&task("t1", &crasher).build()).await);
    assert!(err.starts_with("wasm trap: "), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(f.lines("t1"), ["about to crash"]);
}

#[tokio::test]
async fn t21_stack_exhaustion_says_stack_overflow() {
    let f = Fixture::new();
    let hog = f.add("hog", swarm_guests::HOG);
    let err = workload_error(f.run(&task("t1", &hog).args(&["recurse"]).build()).await);
    assert!(err.starts_with("wasm trap: "), "{err}");
    assert!(err.contains("stack overflow"), "{err}");
}

#[tokio::test]
async fn t22_memory_past_the_limit_names_the_limit() {
    let f = Fixture::new();
    let hog = f.add("hog", swarm_guests::HOG);
    let t = task("t1", &hog)
        .args(&["memory"])
        .limits(0, 64 << 20)
        .build();
    let err = workload_error(f.run(&t).await);
    assert!(err.starts_with("memory limit of 64 MiB exceeded"), "{err}");
    // It got close to the limit before failing.
    assert!(
        f.lines("t1").iter().any(|l| l == "hog: allocated 48 MiB"),
        "{:?}",
        f.lines("t1")
    );
}

#[tokio::test]
async fn t23_a_hand_written_unreachable_module_traps() {
    let f = Fixture::new();
    let trap = f.add_wat(
        "trap",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    let err = workload_error(f.run(&task("t1", &trap).build()).await);
    assert_eq!(err, "wasm trap: wasm `unreachable` instruction executed");
}
