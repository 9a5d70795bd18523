//! The broker actor driven command by command: who is sent what, when a subscription ends,
//! and that a stuck listener cannot hold anyone up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use swarm_proto::{LogMessage, LogOptions, SubscribeLogsMessage, SubscriptionMessage};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::actor::{Broker, Command, SubscriberTx};
use super::plan::Resolved;

fn resolved(nodes: &[(&str, &[&str])]) -> Resolved {
    Resolved {
        service_ids: vec!["svc".into()],
        tasks_by_node: nodes
            .iter()
            .map(|(n, ts)| {
                let ts: BTreeSet<String> = ts.iter().map(|t| t.to_string()).collect();
                (n.to_string(), ts)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

type Listener = mpsc::Receiver<Result<SubscriptionMessage, Status>>;
type Subscriber = mpsc::Receiver<Result<SubscribeLogsMessage, Status>>;

fn listen(b: &mut Broker, node: &str, listener: u64, capacity: usize) -> Listener {
    let (tx, rx) = mpsc::channel(capacity);
    b.handle(Command::Listen {
        node: node.into(),
        listener,
        tx,
    });
    rx
}

fn subscribe(
    b: &mut Broker,
    id: &str,
    r: Resolved,
    follow: bool,
) -> (Subscriber, CancellationToken) {
    let (tx, rx) = mpsc::channel(8);
    let done = CancellationToken::new();
    b.handle(Command::Subscribe {
        id: id.into(),
        resolved: r,
        options: LogOptions {
            follow,
            tail: -1,
            streams: vec![],
        },
        tx,
        done: done.clone(),
    });
    (rx, done)
}

fn publishing(b: &mut Broker, id: &str, node: &str) -> Option<(SubscriberTx, CancellationToken)> {
    let (reply, mut rx) = oneshot::channel();
    b.handle(Command::Publishing {
        id: id.into(),
        node: node.into(),
        reply,
    });
    rx.try_recv().expect("the actor answers at once")
}

fn task_ids(msg: &SubscriptionMessage) -> Vec<&str> {
    msg.selector
        .as_ref()
        .unwrap()
        .task_ids
        .iter()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn t10_one_shot_subscription_sends_each_node_its_tasks_and_reports_missing_nodes() {
    let mut b = Broker::new(Duration::from_secs(10));
    let mut n1 = listen(&mut b, "n1", 1, 8);
    let (mut sub, done) = subscribe(
        &mut b,
        "s1",
        resolved(&[("n1", &["t1", "t2"]), ("n2", &["t3"])]),
        false,
    );

    let msg = n1.try_recv().unwrap().unwrap();
    assert_eq!((msg.id.as_str(), msg.close), ("s1", false));
    assert_eq!(task_ids(&msg), ["t1", "t2"]);

    let (tx, _) = publishing(&mut b, "s1", "n1").expect("n1 is part of s1");
    assert!(publishing(&mut b, "s1", "n9").is_none(), "n9 is not");
    tx.send(Ok(SubscribeLogsMessage {
        messages: vec![LogMessage::default()],
    }))
    .await
    .unwrap();
    drop(tx);
    assert!(!done.is_cancelled());
    b.handle(Command::Closed {
        id: "s1".into(),
        node: "n1".into(),
    });
    assert!(done.is_cancelled(), "n1 closed and n2 is down: complete");

    assert_eq!(sub.recv().await.unwrap().unwrap().messages.len(), 1);
    let err = sub.recv().await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(err.message().contains("incomplete log stream"), "{err:?}");
    assert!(err.message().contains("n2"), "{err:?}");
    assert!(sub.recv().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn t20_follow_reaches_nodes_that_connect_later_and_cancel_tells_them() {
    let mut b = Broker::new(Duration::from_secs(10));
    let (_sub, done) = subscribe(&mut b, "s1", resolved(&[("n1", &["t1"])]), true);
    let mut n1 = listen(&mut b, "n1", 1, 8);
    assert_eq!(task_ids(&n1.try_recv().unwrap().unwrap()), ["t1"]);

    b.handle(Command::AddTask {
        id: "s1".into(),
        node: "n1".into(),
        task: "t1".into(),
    });
    assert!(
        n1.try_recv().is_err(),
        "a task it already has is not resent"
    );
    b.handle(Command::AddTask {
        id: "s1".into(),
        node: "n1".into(),
        task: "t4".into(),
    });
    assert_eq!(task_ids(&n1.try_recv().unwrap().unwrap()), ["t1", "t4"]);

    let mut n2 = listen(&mut b, "n2", 2, 8);
    b.handle(Command::AddTask {
        id: "s1".into(),
        node: "n2".into(),
        task: "t5".into(),
    });
    assert_eq!(task_ids(&n2.try_recv().unwrap().unwrap()), ["t5"]);

    b.handle(Command::Cancel { id: "s1".into() });
    assert!(done.is_cancelled());
    for n in [&mut n1, &mut n2] {
        let close = n.try_recv().unwrap().unwrap();
        assert_eq!((close.id.as_str(), close.close), ("s1", true));
    }
}

#[tokio::test]
async fn t30_a_stuck_listener_is_dropped_and_its_one_shot_subscriptions_complete() {
    let mut b = Broker::new(Duration::from_secs(10));
    let _n1 = listen(&mut b, "n1", 1, 1);
    let (_s1, d1) = subscribe(&mut b, "s1", resolved(&[("n1", &["t1"])]), false);
    assert!(!d1.is_cancelled(), "sent, waiting for n1");
    let (_s2, d2) = subscribe(&mut b, "s2", resolved(&[("n1", &["t1"])]), false);
    assert!(
        d1.is_cancelled() && d2.is_cancelled(),
        "n1's full listener was dropped: nothing more will come from it"
    );
}

#[tokio::test]
async fn t40_a_replaced_listener_ending_does_not_disconnect_the_node() {
    let mut b = Broker::new(Duration::from_secs(10));
    let _old = listen(&mut b, "n1", 1, 8);
    let mut new = listen(&mut b, "n1", 2, 8);
    b.handle(Command::Unlisten {
        node: "n1".into(),
        listener: 1,
    });
    let (_s, done) = subscribe(&mut b, "s1", resolved(&[("n1", &["t1"])]), false);
    assert!(!done.is_cancelled());
    assert_eq!(task_ids(&new.try_recv().unwrap().unwrap()), ["t1"]);
}
