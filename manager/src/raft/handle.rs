//! [`RaftHandle`]: how the rest of the manager talks to the raft driver.

use std::time::Instant;

use raft::prelude::{ConfChange, ConfState, Message};
use swarm_proto::StoreBatch;
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::{ApplyOutcome, Proposer, StoreError};

/// What the driver publishes about this member after each Ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// This member's raft id.
    pub id: u64,
    /// The leader's raft id, 0 when unknown.
    pub leader_id: u64,
    pub term: u64,
    pub is_leader: bool,
    /// Index of the last entry applied to the store.
    pub applied: u64,
    /// The raft ids of the voting members, as last applied.
    pub voters: Vec<u64>,
    /// The raft ids of the learners (joined managers still catching up; they do not count
    /// toward quorum and are promoted to voters by the leader), as last applied.
    pub learners: Vec<u64>,
    /// On the leader: the members heard from within the last election timeout (itself
    /// included). Empty on followers.
    pub active: Vec<u64>,
}

impl RaftStatus {
    /// Every raft member: the voters, then the learners.
    pub fn members(&self) -> Vec<u64> {
        self.voters.iter().chain(&self.learners).copied().collect()
    }
}

pub(super) type Reply = oneshot::Sender<Result<ApplyOutcome, StoreError>>;

/// Requests to the driver's loop.
pub(super) enum Command {
    Propose {
        batch: StoreBatch,
        reply: Reply,
        at: Instant,
    },
    Step(Box<Message>),
    /// A membership change, answered with the new voters once it is applied.
    ConfChange {
        change: ConfChange,
        reply: oneshot::Sender<Result<ConfState, StoreError>>,
    },
    /// Hand leadership to this member (leader only; ignored elsewhere).
    TransferLeader(u64),
    /// The transport could not deliver to this member.
    Unreachable(u64),
    /// The transport finished (`true`) or failed sending a snapshot to this member.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
}

/// A cheap, cloneable handle to a running raft driver.
#[derive(Clone)]
pub struct RaftHandle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) status: watch::Receiver<RaftStatus>,
}

impl RaftHandle {
    /// The member's status, updated after every Ready.
    pub fn status(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }

    /// True when this member is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.status.borrow().is_leader
    }

    /// Whether this member leads, and the leader's raft id (0 when unknown), read together
    /// without copying the status (every proxied call asks).
    pub fn leadership(&self) -> (bool, u64) {
        let s = self.status.borrow();
        (s.is_leader, s.leader_id)
    }

    /// Hands a message from a peer to raft.
    pub async fn step(&self, message: Message) -> Result<(), StoreError> {
        self.tx
            .send(Command::Step(Box::new(message)))
            .await
            .map_err(|_| StoreError::Dropped("raft is shut down".into()))
    }

    /// Proposes a membership change and waits until it is applied (leader only). Raft takes
    /// one change at a time: a change proposed while another is pending is refused.
    pub async fn change_membership(&self, change: ConfChange) -> Result<ConfState, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::ConfChange { change, reply })
            .await
            .map_err(|_| StoreError::Dropped("raft is shut down".into()))?;
        rx.await.map_err(|_| {
            StoreError::Dropped("raft shut down before the change was applied".into())
        })?
    }

    /// Asks raft to hand leadership to member `to` (raft's leader transfer: the leader
    /// stops taking proposals, brings `to` up to date and tells it to campaign at once).
    /// Ignored unless this member leads; watch [`Self::status`] for the outcome.
    pub fn transfer_leader(&self, to: u64) {
        let _ = self.tx.try_send(Command::TransferLeader(to));
    }

    /// Tells raft that `to` could not be reached (it then probes instead of streaming).
    pub fn report_unreachable(&self, to: u64) {
        let _ = self.tx.try_send(Command::Unreachable(to));
    }

    /// Tells raft how sending a snapshot to `to` ended.
    pub fn report_snapshot(&self, to: u64, ok: bool) {
        let _ = self.tx.try_send(Command::SnapshotSent { to, ok });
    }

    /// Waits until this member leads, or `deadline` passes.
    pub async fn wait_leader(&self, deadline: std::time::Duration) -> Result<(), StoreError> {
        let mut status = self.status();
        tokio::time::timeout(deadline, status.wait_for(|s| s.is_leader))
            .await
            .map_err(|_| StoreError::NotLeader { leader: None })?
            .map_err(|_| StoreError::Dropped("raft is shut down".into()))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Proposer for RaftHandle {
    async fn propose(&self, batch: StoreBatch) -> Result<ApplyOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Propose {
                batch,
                reply,
                at: Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Dropped("raft is shut down".into()))?;
        rx.await.map_err(|_| {
            StoreError::Dropped("raft shut down before the write was applied".into())
        })?
    }
}
