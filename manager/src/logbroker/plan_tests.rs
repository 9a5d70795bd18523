//! Selector resolution and subscription completion, without tokio I/O.

use swarm_proto::TaskState;

use super::*;
use crate::orchestrator::testutil::{node, replicated, tables, task};

fn selector(services: &[&str], tasks: &[&str], nodes: &[&str]) -> LogSelector {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    LogSelector {
        service_ids: s(services),
        task_ids: s(tasks),
        node_ids: s(nodes),
    }
}

#[test]
fn a_service_resolves_to_its_scheduled_tasks_grouped_by_node() {
    let web = replicated("web", 3);
    let db = replicated("db", 1);
    let t1 = task(&web, 1, "n1", TaskState::Running, 1);
    let t2 = task(&web, 2, "n2", TaskState::Shutdown, 2);
    let t3 = task(&web, 3, "", TaskState::Pending, 3);
    let t4 = task(&db, 1, "n1", TaskState::Running, 4);
    let view = tables(
        &[web, db],
        &[node("n1"), node("n2")],
        &[t1.clone(), t2.clone(), t3, t4.clone()],
    );

    let r = resolve(&view, &selector(&["web"], &[], &[])).unwrap();
    assert_eq!(r.service_ids, ["web"]);
    let want: BTreeMap<String, BTreeSet<String>> = [
        ("n1".to_string(), [t1.id.clone()].into()),
        ("n2".to_string(), [t2.id.clone()].into()),
    ]
    .into();
    assert_eq!(r.tasks_by_node, want, "unscheduled tasks have no logs");

    let by_task = resolve(&view, &selector(&[], &[&t4.id[..8]], &[])).unwrap();
    assert_eq!(by_task.tasks_by_node["n1"], [t4.id.clone()].into());
    let by_node = resolve(&view, &selector(&[], &[], &["n1"])).unwrap();
    assert_eq!(by_node.tasks_by_node["n1"], [t1.id, t4.id].into());
}

#[test]
fn unknown_references_and_empty_selectors_are_errors() {
    let view = tables(&[replicated("web", 1)], &[], &[]);
    let e = resolve(&view, &selector(&["nope"], &[], &[])).unwrap_err();
    assert_eq!(e.to_string(), "service \"nope\" not found");
    let e = resolve(&view, &selector(&[], &[], &[])).unwrap_err();
    assert_eq!(e, SelectorError::Empty);
}

#[test]
fn a_one_shot_subscription_completes_when_every_node_closed_or_is_gone() {
    let t0 = Instant::now();
    let mut p = Progress::new(false);
    assert!(p.is_complete(), "no nodes: nothing to wait for");
    assert!(p.add("n1", true, t0));
    assert!(p.add("n2", true, t0));
    assert!(p.add("n3", false, t0));
    assert!(!p.add("n1", true, t0));
    assert_eq!(p.missing(), ["n3"], "a node that is down is not waited for");
    p.publishing("n1");
    p.closed("n1");
    assert!(!p.is_complete());
    p.disconnected("n2");
    assert!(p.is_complete());
    assert_eq!(p.missing(), ["n2", "n3"]);
}

#[test]
fn a_node_that_never_answers_is_given_up_after_the_timeout() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(10);
    let mut p = Progress::new(false);
    p.add("n1", true, t0);
    p.add("n2", true, t0);
    p.publishing("n2");
    p.expire(t0 + Duration::from_secs(9), timeout);
    assert_eq!(p.state("n1"), Some(NodeState::Sent(t0)));
    p.expire(t0 + timeout, timeout);
    assert_eq!(p.state("n1"), Some(NodeState::Missing));
    assert_eq!(
        p.state("n2"),
        Some(NodeState::Publishing),
        "a node streaming a long backlog is not cut off"
    );
    assert_eq!(p.active(), ["n2"]);
}

#[test]
fn a_following_subscription_never_completes_and_waits_for_nodes_to_return() {
    let t0 = Instant::now();
    let mut p = Progress::new(true);
    p.add("n1", true, t0);
    p.add("n2", false, t0);
    assert_eq!(p.state("n2"), Some(NodeState::Unreachable));
    p.disconnected("n1");
    p.expire(t0 + Duration::from_secs(3600), Duration::from_secs(1));
    assert_eq!(p.state("n1"), Some(NodeState::Unreachable));
    p.sent("n1", t0);
    p.closed("n1");
    p.closed("n2");
    assert!(!p.is_complete());
}
