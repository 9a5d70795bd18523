//! Reporter actor tests: coalescing, retries, supersession while in flight, resync.
//! Timers run on paused time, so backoff waits cost nothing.

use std::sync::Arc;

use swarm_proto::{TaskState, TaskStatus};

use super::*;
use crate::testutil::{TestSink, all_in, latest, wait_for};

fn st(state: TaskState, msg: &str) -> TaskStatus {
    TaskStatus {
        state: state as i32,
        message: msg.into(),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn many_statuses_before_a_flush_send_only_the_last() {
    let reporter = Reporter::spawn();
    for i in 0..50 {
        reporter.report("t1", st(TaskState::Running, &format!("m{i}")));
    }
    let sink = Arc::new(TestSink::new());
    let mut batches = sink.batches();
    reporter.connect(sink.clone());
    wait_for(&mut batches, "first batch", |b| !b.is_empty()).await;
    let sent = batches.borrow().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 1);
    assert_eq!(sent[0][0].status.as_ref().unwrap().message, "m49");
    assert_eq!(reporter.unacked().await, 0);
    assert_eq!(sink.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_send_is_retried_until_acknowledged() {
    let reporter = Reporter::spawn();
    let sink = Arc::new(TestSink::new());
    sink.fail_next(3);
    let mut batches = sink.batches();
    reporter.connect(sink.clone());
    reporter.report("t1", st(TaskState::Running, "running"));
    wait_for(&mut batches, "acknowledged after retries", |b| {
        all_in(b, &["t1"], TaskState::Running)
    })
    .await;
    assert_eq!(sink.attempts(), 4);
    assert_eq!(reporter.unacked().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_status_superseded_in_flight_is_sent_after_the_ack() {
    let reporter = Reporter::spawn();
    let sink = Arc::new(TestSink::gated());
    let mut batches = sink.batches();
    reporter.connect(sink.clone());
    reporter.report("t1", st(TaskState::Starting, "starting"));
    // The first send is held at the gate; these coalesce behind it.
    assert_eq!(reporter.unacked().await, 1);
    reporter.report("t1", st(TaskState::Running, "running"));
    reporter.report("t2", st(TaskState::Running, "running"));
    sink.open(2);
    wait_for(&mut batches, "two batches", |b| b.len() == 2).await;
    let sent = batches.borrow().clone();
    assert_eq!(sent[0][0].status.as_ref().unwrap().message, "starting");
    assert_eq!(sent[1].len(), 2);
    assert!(all_in(&sent, &["t1", "t2"], TaskState::Running));
    assert_eq!(reporter.unacked().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_new_session_resends_every_known_status_but_not_forgotten_ones() {
    let reporter = Reporter::spawn();
    let first = Arc::new(TestSink::new());
    let mut batches = first.batches();
    reporter.connect(first.clone());
    reporter.report("a", st(TaskState::Running, "a"));
    reporter.report("gone", st(TaskState::Shutdown, "gone"));
    reporter.forget("gone");
    wait_for(&mut batches, "first session", |b| latest(b).len() == 2).await;
    assert_eq!(reporter.unacked().await, 0);

    reporter.disconnect();
    let second = Arc::new(TestSink::new());
    let mut batches = second.batches();
    reporter.connect(second.clone());
    wait_for(&mut batches, "re-report", |b| !b.is_empty()).await;
    let resent = latest(&batches.borrow());
    assert_eq!(resent.keys().collect::<Vec<_>>(), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn statuses_wait_for_a_session() {
    let reporter = Reporter::spawn();
    reporter.report("a", st(TaskState::Running, "a"));
    reporter.disconnect();
    assert_eq!(reporter.unacked().await, 1);
    let sink = Arc::new(TestSink::new());
    let mut batches = sink.batches();
    reporter.connect(sink);
    wait_for(&mut batches, "delivered", |b| {
        all_in(b, &["a"], TaskState::Running)
    })
    .await;
}
