//! What the node supervisor does next, from the role its certificate holds and whether its
//! manager runs (SwarmKit's `superviseManager`): pure, so every case is a unit test.

use swarm_proto::NodeRole;

/// The supervisor's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Stay,
    /// The certificate says manager and none runs: start one (resume or join raft).
    StartManager,
    /// The certificate says worker and a manager runs: it was demoted; stop it for good.
    StopManager,
}

/// The next move. An unknown role (no agent, or its certificate not loaded yet) changes
/// nothing.
pub fn next(certified: Option<NodeRole>, manager_running: bool) -> Move {
    match (certified, manager_running) {
        (Some(NodeRole::Manager), false) => Move::StartManager,
        (Some(NodeRole::Worker), true) => Move::StopManager,
        _ => Move::Stay,
    }
}

/// How a manager starts on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerStart {
    /// state.json names a manager: resume it from its raft data.
    Resume,
    /// Promoted (no state.json, or a demoted node's): join raft through this manager.
    Join(String),
    /// Promoted, but no manager address is known yet (no session is up).
    NoRemote,
}

/// How to start the manager, from what state.json says (`None`: no file) and the manager of
/// the agent's current session.
pub fn manager_start(
    state_is_manager: Option<bool>,
    session_manager: Option<&str>,
) -> ManagerStart {
    match (state_is_manager, session_manager) {
        (Some(true), _) => ManagerStart::Resume,
        (_, Some(addr)) => ManagerStart::Join(addr.to_string()),
        (_, None) => ManagerStart::NoRemote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manager_follows_the_certified_role() {
        use NodeRole::{Manager, Worker};
        assert_eq!(next(Some(Manager), false), Move::StartManager);
        assert_eq!(next(Some(Manager), true), Move::Stay);
        assert_eq!(next(Some(Worker), true), Move::StopManager);
        assert_eq!(next(Some(Worker), false), Move::Stay);
        assert_eq!(
            next(None, true),
            Move::Stay,
            "--no-agent: no certified role"
        );
        assert_eq!(next(None, false), Move::Stay);
    }

    #[test]
    fn a_promoted_node_joins_through_its_session_manager_and_a_manager_resumes() {
        assert_eq!(manager_start(Some(true), Some("m:1")), ManagerStart::Resume);
        assert_eq!(manager_start(Some(true), None), ManagerStart::Resume);
        assert_eq!(
            manager_start(None, Some("m:1")),
            ManagerStart::Join("m:1".into())
        );
        assert_eq!(
            manager_start(Some(false), Some("m:1")),
            ManagerStart::Join("m:1".into()),
            "demoted, then promoted again"
        );
        assert_eq!(manager_start(None, None), ManagerStart::NoRemote);
    }
}
