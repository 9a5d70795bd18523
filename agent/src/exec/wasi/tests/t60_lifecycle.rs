//! Controller lifecycle: prompt shutdown of a long-running guest, cancel-safe wait,
//! idempotent calls, remove deleting the logs, warm starts.

use std::time::Instant;

use super::*;

#[tokio::test]
async fn t60_shutdown_of_a_running_sleeper_is_prompt() {
    let f = Fixture::new();
    let sleeper = f.add("sleeper", swarm_guests::SLEEPER);
    let mut c = f.controller(&task("t1", &sleeper).build());
    within("shutdown before start", c.shutdown()).await.unwrap();
    within("prepare", c.prepare()).await.unwrap();
    within("start", c.start()).await.unwrap();
    within("start again", c.start()).await.unwrap();
    f.wait_for_line("t1", "sleeper tick 0").await;

    // The guest is cancelled at its next epoch yield (5 ms), not after a grace period; the
    // bound leaves room for a loaded CI machine and is still far below the 10 s grace.
    let started = Instant::now();
    within("shutdown", c.shutdown()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
    let exit = within("wait after shutdown", c.wait()).await.unwrap();
    assert_eq!(exit.message, "shut down");
}

#[tokio::test]
async fn t61_wait_is_cancel_safe() {
    let f = Fixture::new();
    let sleeper = f.add("sleeper", swarm_guests::SLEEPER);
    let mut c = f.controller(&task("t1", &sleeper).build());
    within("prepare", c.prepare()).await.unwrap();
    within("start", c.start()).await.unwrap();
    for _ in 0..3 {
        let waited = tokio::time::timeout(Duration::from_millis(50), c.wait()).await;
        assert!(waited.is_err(), "a sleeper does not exit: {waited:?}");
    }
    // Dropping those waits left the guest running: it keeps ticking.
    f.wait_for_line("t1", "sleeper tick 1").await;
    within("shutdown", c.shutdown()).await.unwrap();
}

#[tokio::test]
async fn t62_wait_repeats_the_outcome_and_remove_deletes_the_logs() {
    let f = Fixture::new();
    let exit_code = f.add("exit-code", swarm_guests::EXIT_CODE);
    let mut c = f.controller(&task("t1", &exit_code).args(&["5"]).build());
    within("prepare", c.prepare()).await.unwrap();
    within("start", c.start()).await.unwrap();
    let first = within("wait", c.wait()).await.unwrap();
    assert_eq!(first.code, 1, "{first:?}"); // see t11 for why 5 arrives as 1
    assert_eq!(within("wait again", c.wait()).await.unwrap(), first);
    assert!(!f.logs("t1").is_empty());
    let log = crate::tasklog::log_path(&logs_dir(f.state.path()), "t1");
    assert!(log.exists());
    within("remove", c.remove()).await.unwrap();
    assert!(!log.exists());
    within("remove again", c.remove()).await.unwrap();
}

#[tokio::test]
async fn t63_wait_without_a_started_guest_fails_the_task() {
    // After an agent restart, a RUNNING task's guest is gone with the old process.
    let f = Fixture::new();
    let sleeper = f.add("sleeper", swarm_guests::SLEEPER);
    let mut c = f.controller(&task("t1", &sleeper).build());
    let err = within("wait", c.wait()).await.unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("not running"), "{err}");
}
