use swarm_proto::{ManagerStatus, Node, NodeRole, StoreSnapshot};

use super::*;

fn node(id: &str, role: NodeRole, raft_id: u64) -> Node {
    Node {
        id: id.into(),
        role: role as i32,
        manager_status: (raft_id != 0).then(|| ManagerStatus {
            raft_id,
            addr: format!("127.0.0.1:{raft_id}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn view(nodes: Vec<Node>) -> Tables {
    Tables::from_snapshot(
        StoreSnapshot {
            nodes,
            ..Default::default()
        },
        1,
    )
}

#[test]
fn a_new_manager_joins_with_its_address_recorded() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("b", NodeRole::Manager, 0),
    ]);
    let Join::Add(updated) = join(&v, &[1], "b", 7, "127.0.0.1:9").unwrap() else {
        panic!("expected an add");
    };
    let status = updated.manager_status.unwrap();
    assert_eq!((status.raft_id, status.addr.as_str()), (7, "127.0.0.1:9"));
}

#[test]
fn a_retried_join_changes_nothing() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("b", NodeRole::Manager, 7),
    ]);
    assert_eq!(
        join(&v, &[1, 7], "b", 7, "x:1").unwrap(),
        Join::AlreadyMember
    );
}

#[test]
fn refusals_say_why() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("w", NodeRole::Worker, 0),
        node("b", NodeRole::Manager, 7),
    ]);
    let cases = [
        (join(&v, &[1], "w", 5, "x:1"), "is a worker"),
        (join(&v, &[1], "nope", 5, "x:1"), "not in the swarm"),
        (join(&v, &[1, 7], "a", 7, "x:1"), "taken by another manager"),
        (join(&v, &[1, 7], "b", 9, "x:1"), "already a manager"),
        (join(&v, &[1], "b", 0, "x:1"), "not a valid member id"),
        (join(&v, &[1], "b", 5, ""), "must give its address"),
    ];
    for (outcome, why) in cases {
        let e = outcome.unwrap_err().to_string();
        assert!(e.contains(why), "{e:?} should say {why:?}");
    }
}

#[test]
fn members_carry_node_and_address() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("b", NodeRole::Manager, 7),
    ]);
    let m = members(&v, &[1, 7, 9]);
    assert_eq!(m.len(), 3);
    assert_eq!(
        (m[1].node_id.as_str(), m[1].addr.as_str()),
        ("b", "127.0.0.1:7")
    );
    assert!(m[2].node_id.is_empty(), "an unknown member has no node");
}

#[test]
fn leaving_removes_the_member_but_never_the_last() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("b", NodeRole::Manager, 7),
    ]);
    assert_eq!(leave(&v, &[1, 7], &[], "b").unwrap(), 7);
    let e = leave(&v, &[1], &[], "a").unwrap_err().to_string();
    assert!(e.contains("last manager"), "{e}");
    let e = leave(&v, &[1], &[], "b").unwrap_err().to_string();
    assert!(e.contains("not a raft member"), "{e}");
}

#[test]
fn a_learner_can_leave_even_beside_a_single_voter() {
    let v = view(vec![
        node("a", NodeRole::Manager, 1),
        node("b", NodeRole::Manager, 7),
    ]);
    assert_eq!(leave(&v, &[1], &[7], "b").unwrap(), 7);
    let e = leave(&v, &[1], &[7], "a").unwrap_err().to_string();
    assert!(e.contains("last manager"), "{e}");
}
