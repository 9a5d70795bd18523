//! CPU: a guest in an infinite loop is throttled to its `nano_cpus` share and killed by its
//! `cpu` ulimit, while another guest on the same backend keeps running and logging.

use std::time::Instant;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_a_spinning_guest_is_throttled_and_killed_while_others_run() {
    let f = Fixture::new();
    let hog = f.add("hog", swarm_guests::HOG);
    let sleeper = f.add("sleeper", swarm_guests::SLEEPER);

    tracing::info!("--- a sleeper starts and ticks");
    let mut quiet = f.controller(&task("sleeper", &sleeper).build());
    within("prepare", quiet.prepare()).await.unwrap();
    within("start", quiet.start()).await.unwrap();
    f.wait_for_line("sleeper", "sleeper tick 0").await;

    tracing::info!("--- a hog spins at half a CPU with 1 s of CPU time allowed");
    let t = task("hog", &hog)
        .args(&["loop"])
        .limits(500_000_000, 0)
        .cpu_ulimit(1)
        .build();
    let started = Instant::now();
    let result = f.run(&t).await;
    let elapsed = started.elapsed();
    match result {
        Err(ExecError::Workload(msg)) => assert_eq!(msg, "cpu limit of 1 s exceeded"),
        other => panic!("expected the cpu limit to end the hog, got {other:?}"),
    }
    // 1 s of CPU at half a CPU takes about 2 s of wall time.
    assert!(
        elapsed >= Duration::from_millis(1700),
        "not throttled: 1 s of CPU used in {elapsed:?}"
    );

    tracing::info!("--- the sleeper kept ticking meanwhile");
    f.wait_for_line("sleeper", "sleeper tick 2").await;
    within("shutdown", quiet.shutdown()).await.unwrap();
}

/// The default test runtime has one thread: without epoch yields the spinner would hold it
/// forever and the sleeper would never tick.
#[tokio::test]
async fn t31_an_unlimited_spinner_does_not_starve_a_guest_on_the_same_thread() {
    let f = Fixture::new();
    let hog = f.add("hog", swarm_guests::HOG);
    let sleeper = f.add("sleeper", swarm_guests::SLEEPER);
    let mut spinner = f.controller(&task("hog", &hog).args(&["loop"]).build());
    within("prepare", spinner.prepare()).await.unwrap();
    within("start", spinner.start()).await.unwrap();
    f.wait_for_line("hog", "hog: spinning").await;
    let mut s = f.controller(&task("sleeper", &sleeper).build());
    within("prepare", s.prepare()).await.unwrap();
    within("start", s.start()).await.unwrap();
    f.wait_for_line("sleeper", "sleeper tick 1").await;
    within("shutdown", spinner.shutdown()).await.unwrap();
    within("shutdown", s.shutdown()).await.unwrap();
}
