use swarm_proto::{ManagerStatus, NodeSpec};

use super::*;

fn node(id: &str, desired: NodeRole, role: NodeRole, raft_id: u64) -> Node {
    Node {
        id: id.into(),
        spec: Some(NodeSpec {
            desired_role: desired as i32,
            ..Default::default()
        }),
        role: role as i32,
        manager_status: (raft_id != 0).then(|| ManagerStatus {
            raft_id,
            addr: format!("127.0.0.1:{raft_id}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The leader is member 1; `voters` and `active` as given.
fn leader(voters: &[u64], active: &[u64]) -> RaftStatus {
    RaftStatus {
        id: 1,
        leader_id: 1,
        is_leader: true,
        voters: voters.to_vec(),
        active: active.to_vec(),
        ..Default::default()
    }
}

use NodeRole::{Manager, Worker};

#[test]
fn agreeing_roles_need_nothing() {
    let s = leader(&[1, 2, 3], &[1, 2, 3]);
    assert_eq!(step(&node("w", Worker, Worker, 0), &s), Step::Nothing);
    assert_eq!(step(&node("m", Manager, Manager, 2), &s), Step::Nothing);
}

#[test]
fn a_promotion_only_writes_the_role() {
    let s = leader(&[1], &[1]);
    assert_eq!(
        step(&node("w", Manager, Worker, 0), &s),
        Step::SetRole(Manager)
    );
}

#[test]
fn demoting_a_member_removes_it_from_raft_first() {
    let s = leader(&[1, 2, 3], &[1, 2, 3]);
    assert_eq!(
        step(&node("m2", Worker, Manager, 2), &s),
        Step::RemoveMember(2)
    );
}

#[test]
fn demoting_a_manager_that_never_joined_raft_only_writes_the_role() {
    let s = leader(&[1, 2], &[1, 2]);
    // Promoted, then demoted before it joined: no member, or a stale raft id.
    assert_eq!(
        step(&node("p", Worker, Manager, 0), &s),
        Step::SetRole(Worker)
    );
    assert_eq!(
        step(&node("p", Worker, Manager, 9), &s),
        Step::SetRole(Worker)
    );
}

#[test]
fn a_down_member_can_be_demoted_while_the_rest_hold_quorum() {
    // 3 managers, member 3 down: removing 3 leaves {1, 2}, both reachable.
    let s = leader(&[1, 2, 3], &[1, 2]);
    assert_eq!(
        step(&node("m3", Worker, Manager, 3), &s),
        Step::RemoveMember(3)
    );
}

#[test]
fn a_demotion_that_would_lose_quorum_waits() {
    // 3 managers, member 3 down: removing 2 leaves {1, 3} with only 1 reachable.
    let s = leader(&[1, 2, 3], &[1, 2]);
    let Step::Wait(why) = step(&node("m2", Worker, Manager, 2), &s) else {
        panic!("must wait")
    };
    assert!(why.contains("can't demote node m2"), "{why}");
    assert!(
        why.contains("only 1 of the 2 remaining managers are reachable and 2 are needed"),
        "{why}"
    );
    assert!(can_remove(&s, 2).is_err());
    assert!(can_remove(&s, 3).is_ok());
}

#[test]
fn the_last_manager_is_never_removed() {
    let s = leader(&[1], &[1]);
    assert!(can_remove(&s, 1).unwrap_err().contains("last manager"));
    assert!(matches!(
        step(&node("m1", Worker, Manager, 1), &s),
        Step::Wait(_)
    ));
}

#[test]
fn the_leader_hands_over_before_it_is_demoted() {
    let s = leader(&[1, 2, 3], &[1, 2, 3]);
    assert_eq!(
        step(&node("m1", Worker, Manager, 1), &s),
        Step::TransferLeadership(2)
    );
    // With 2 down, removing the leader would leave 3 alone of {2, 3}: wait instead.
    let s = leader(&[1, 2, 3], &[1, 3]);
    assert!(matches!(
        step(&node("m1", Worker, Manager, 1), &s),
        Step::Wait(_)
    ));
}

#[test]
fn five_managers_tolerate_one_down_when_demoting_another() {
    // Removing 2 leaves {1, 3, 4, 5} with 1, 3, 4 reachable: 3 ≥ quorum of 4 (3).
    let s = leader(&[1, 2, 3, 4, 5], &[1, 2, 3, 4]);
    assert_eq!(
        step(&node("m2", Worker, Manager, 2), &s),
        Step::RemoveMember(2)
    );
    // With 4 down as well, only 1 and 3 of {1, 3, 4, 5} are reachable.
    let s = leader(&[1, 2, 3, 4, 5], &[1, 2, 3]);
    assert!(matches!(
        step(&node("m2", Worker, Manager, 2), &s),
        Step::Wait(_)
    ));
}
