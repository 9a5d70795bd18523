//! The raft driver: one loop that owns the raft-rs `RawNode` and does its I/O.
//!
//! ```text
//!   tick ─┐
//! propose ─┼─▶ RawNode ──Ready──▶ 1. send leader messages
//!    step ─┘                      2. install snapshot (follower)
//!                                 3. apply committed entries to the store, answer proposers
//!                                 4. persist entries + hard state (fsync; a
//!                                    commit index alone is written lazily)
//!                                 5. send messages that needed the persist
//!                                 6. advance, apply what the light ready committed
//!                                    (at most MAX_APPLY_PER_READY bytes of entries a
//!                                    round; the rest in the next rounds)
//!                                 7. when one is due (`snapshot_policy`): start a snapshot
//!                                    of the store, made by a thread (`snapshotter`)
//!   log written ─▶ on_persist_ready (leader)
//! ```
//! This is raft-rs's documented Ready order (`examples/five_mem_node`). A storage error is
//! fatal: the loop stops rather than run on state it could not make durable. On each tick
//! the leader also promotes a learner that has caught up to voter ([`promote`]).
//!
//! The leader does step 4 in parallel ([`LogWriter`], raft thesis §10.2.1): it stages the
//! entries in the log's memory and hands the fsync to the writer thread, then goes on
//! stepping acknowledgements and proposals; raft counts its own copy only once the writer
//! reports it on disk (`on_persist_ready`), and applies only entries both committed (on a
//! majority's disks) and on its own. A follower's `Ready`, and any with a snapshot, is
//! handled synchronously after draining the writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use prost::Message as _;
use raft::prelude::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, HardState,
};
use raft::{RawNode, SnapshotStatus, StateRole};
use swarm_proto::{StoreBatch, StoreSnapshot};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::coalesce;
use super::handle::{Command, RaftHandle, RaftStatus, Reply};
use super::log_writer::{LogWriter, Persisted};
use super::membership::promote;

type ConfReply = tokio::sync::oneshot::Sender<Result<ConfState, StoreError>>;
use super::options::RaftOptions;
use super::snapshot_policy::SnapshotProgress;
use super::snapshotter::Snapshotter;
use super::storage::RaftStorage;
use super::transport::Transport;
use crate::metrics;
use crate::store::{MemoryStore, StoreError, Tables};

/// Why the driver could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Storage(#[from] super::storage::StorageError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(
        "raft snapshot at index {index} does not decode ({source}); the raft database is corrupted"
    )]
    Snapshot {
        index: u64,
        source: prost::DecodeError,
    },
    #[error("raft entry {index} does not decode ({detail}); the raft database is corrupted")]
    Entry { index: u64, detail: String },
    #[error(
        "this manager (raft member {0:x}) was removed from the swarm's managers (demoted); it goes on as a worker"
    )]
    Removed(u64),
}

/// Starts the driver: restores the store from the stored snapshot, then runs the loop until
/// `shutdown`. Committed entries after the snapshot are replayed by raft through the first
/// Readies. The join handle yields the error that stopped the loop, if any.
pub fn start(
    options: RaftOptions,
    storage: RaftStorage,
    memory: Arc<MemoryStore>,
    transport: Arc<dyn Transport>,
    shutdown: CancellationToken,
) -> Result<(RaftHandle, tokio::task::JoinHandle<Result<(), DriverError>>), DriverError> {
    let snapshot = storage.snapshot_now()?;
    let index = snapshot.get_metadata().index;
    let tables = if snapshot.data.is_empty() {
        Tables::from_snapshot(StoreSnapshot::default(), index)
    } else {
        let decoded = StoreSnapshot::decode(&snapshot.data[..])
            .map_err(|source| DriverError::Snapshot { index, source })?;
        Tables::from_snapshot(decoded, index)
    };
    memory.restore(tables);

    let ConfState {
        voters, learners, ..
    } = storage.conf_state();
    let logger = super::logger::tracing_logger();
    let raw = RawNode::new(&options.raft_config(index), storage, &logger)?;
    let (tx, rx) = mpsc::channel(4096);
    let (written_tx, written) = mpsc::unbounded_channel();
    let writer = LogWriter::start(raw.store().clone(), written_tx);
    let (status_tx, status) = watch::channel(RaftStatus {
        id: options.id,
        applied: index,
        voters,
        learners,
        ..Default::default()
    });
    let driver = Driver {
        raw,
        memory,
        transport,
        proposals: Vec::new(),
        waiters: HashMap::new(),
        conf_waiters: Vec::new(),
        status: status_tx,
        snapshots: SnapshotProgress::at(index, snapshot.data.len()),
        heard: HashMap::new(),
        snapshotter: Snapshotter::default(),
        writer,
        options,
    };
    let join = tokio::spawn(driver.run(rx, written, shutdown));
    Ok((RaftHandle { tx, status }, join))
}

struct Driver {
    raw: RawNode<RaftStorage>,
    memory: Arc<MemoryStore>,
    transport: Arc<dyn Transport>,
    /// Proposals received this round, proposed together at its end ([`coalesce`]).
    proposals: Vec<(StoreBatch, (Reply, Instant))>,
    /// Proposals of this member waiting for their entry to apply, by request id.
    waiters: HashMap<u64, (Reply, Instant)>,
    /// Membership changes of this member waiting to apply, by the index of their entry.
    conf_waiters: Vec<(u64, ConfReply)>,
    status: watch::Sender<RaftStatus>,
    /// The last snapshot made or installed, and the log applied since.
    snapshots: SnapshotProgress,
    /// When each peer was last heard from: the leader's view of who is reachable.
    heard: HashMap<u64, Instant>,
    snapshotter: Snapshotter,
    /// Writes the leader's log in parallel with the loop.
    writer: LogWriter,
    options: RaftOptions,
}

/// Commands handled per wake-up before the loop looks at Ready (bounds latency under load).
const COMMANDS_PER_ROUND: usize = 4096;

impl Driver {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut written: mpsc::UnboundedReceiver<Persisted>,
        shutdown: CancellationToken,
    ) -> Result<(), DriverError> {
        self.lead_if_sole_voter();
        let mut ticker = tokio::time::interval(self.options.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                _ = ticker.tick() => {
                    self.raw.tick();
                    self.promote_caught_up_learner();
                    self.publish_status();
                    let applied = self.status.borrow().applied;
                    if let Err(e) = self.maybe_snapshot(applied) {
                        tracing::error!(error = %e, "raft driver stopping");
                        break Err(e);
                    }
                }
                done = written.recv() => {
                    if let Err(e) = self.on_written(done, &mut written) {
                        tracing::error!(error = %e, "raft driver stopping");
                        break Err(e);
                    }
                }
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break Ok(()) };
                    self.handle(cmd);
                    for _ in 0..COMMANDS_PER_ROUND {
                        match rx.try_recv() {
                            Ok(cmd) => self.handle(cmd),
                            Err(_) => break,
                        }
                    }
                    self.propose_round();
                }
                // Committed entries left over from the last Ready (a round applies at most
                // MAX_APPLY_PER_READY of them): go on once ticks and messages had their turn.
                _ = tokio::task::yield_now(), if self.raw.has_ready() => {}
            }
            if self.raw.has_ready()
                && let Err(e) = self.on_ready()
            {
                match e {
                    DriverError::Removed(_) => tracing::info!(reason = %e, "raft driver stopping"),
                    _ => tracing::error!(error = %e, "raft driver stopping"),
                }
                break Err(e);
            }
        };
        self.fail_waiters("raft is shut down");
        // Dropping the driver drops the writer, which finishes its queue and closes the log.
        if let Err(e) = self.snapshotter.finished(true) {
            tracing::error!(error = %e, "the last raft snapshot could not be made");
        }
        result
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Propose { batch, reply, at } => self.proposals.push((batch, (reply, at))),
            Command::Step(m) => {
                self.heard.insert(m.from, Instant::now());
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!(error = %e, "raft step");
                }
            }
            Command::ConfChange { change, reply } => self.propose_conf_change(change, reply),
            Command::TransferLeader(to) => {
                if self.raw.raft.state == StateRole::Leader && to != self.options.id {
                    tracing::info!(to = format_args!("{to:x}"), "transferring raft leadership");
                    self.raw.transfer_leader(to);
                }
            }
            Command::Unreachable(to) => self.raw.report_unreachable(to),
            Command::SnapshotSent { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
        }
    }

    fn propose_conf_change(&mut self, change: ConfChange, reply: ConfReply) {
        if self.raw.raft.state != StateRole::Leader {
            let leader = self.raw.raft.leader_id;
            let _ = reply.send(Err(StoreError::NotLeader {
                leader: (leader != 0).then(|| format!("raft member {leader:x}")),
            }));
            return;
        }
        if self.raw.raft.has_pending_conf() {
            let _ = reply.send(Err(StoreError::Raft(
                "another membership change is in progress; retry when it has applied".into(),
            )));
            return;
        }
        match self.raw.propose_conf_change(Vec::new(), change) {
            Ok(()) => {
                let index = self.raw.raft.raft_log.last_index();
                self.conf_waiters.push((index, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(StoreError::Raft(e.to_string())));
            }
        }
    }

    /// On the leader, with no membership change pending: proposes promoting the learner that
    /// has caught up ([`promote::learner_to_promote`]) to voter. Nobody waits on the change;
    /// the joiner sees itself among the voters once it applies.
    fn promote_caught_up_learner(&mut self) {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader || raft.has_pending_conf() {
            return;
        }
        let learners: Vec<(u64, u64)> = raft
            .prs()
            .conf()
            .learners()
            .iter()
            .filter_map(|id| raft.prs().get(*id).map(|p| (*id, p.matched)))
            .collect();
        let commit = raft.raft_log.committed;
        let Some(id) = promote::learner_to_promote(&learners, commit, promote::CATCH_UP_MARGIN)
        else {
            return;
        };
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddNode);
        cc.node_id = id;
        match self.raw.propose_conf_change(Vec::new(), cc) {
            Ok(()) => tracing::info!(
                raft_id = format_args!("{id:x}"),
                commit,
                "learner caught up: promoting it to voter"
            ),
            Err(e) => {
                tracing::warn!(raft_id = format_args!("{id:x}"), error = %e, "promoting a learner")
            }
        }
    }

    /// Proposes the store batches received this round, coalesced into as few entries as
    /// [`coalesce::groups`] allows.
    fn propose_round(&mut self) {
        let proposals = std::mem::take(&mut self.proposals);
        if proposals.is_empty() {
            return;
        }
        if self.raw.raft.state != StateRole::Leader {
            let leader = self.raw.raft.leader_id;
            for (_, (reply, _)) in proposals {
                let _ = reply.send(Err(StoreError::NotLeader {
                    leader: (leader != 0).then(|| format!("raft member {leader:x}")),
                }));
            }
            return;
        }
        for group in coalesce::groups(proposals) {
            let (batches, waiters): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|(batch, waiter)| {
                    let id = batch.request_id;
                    (batch, (id, waiter))
                })
                .unzip();
            match self.raw.propose(Vec::new(), coalesce::entry_data(batches)) {
                Ok(()) => self.waiters.extend(waiters),
                Err(e) => {
                    for (_, (reply, _)) in waiters {
                        let _ = reply.send(Err(StoreError::Raft(e.to_string())));
                    }
                }
            }
        }
    }

    /// The log writer made staged writes durable (reports queued meanwhile are folded in:
    /// the last one covers them all); raft may now count them.
    fn on_written(
        &mut self,
        done: Option<Persisted>,
        written: &mut mpsc::UnboundedReceiver<Persisted>,
    ) -> Result<(), DriverError> {
        let done = done.unwrap_or_else(|| {
            Err(super::storage::StorageError::InvalidOperation(
                "the raft log writer thread stopped".into(),
            ))
        });
        let number = std::iter::from_fn(|| written.try_recv().ok()).fold(done, |a, b| a.and(b))?;
        self.raw.on_persist_ready(number);
        Ok(())
    }

    fn on_ready(&mut self) -> Result<(), DriverError> {
        let mut ready = self.raw.ready();
        // The leader writes its log in parallel with the loop; anything else is handled in
        // order after the writes already queued (raft-rs: a synchronous advance declares
        // every earlier Ready persisted).
        let in_parallel = self.raw.raft.state == StateRole::Leader && ready.snapshot().is_empty();
        if !in_parallel {
            self.writer.drain();
        }
        if !ready.messages().is_empty() {
            self.transport.send(ready.take_messages());
        }
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot().clone())?;
        }
        let committed = ready.take_committed_entries();
        self.apply(committed)?;
        let hs: Option<HardState> = ready.hs().cloned();
        if ready.must_sync() && in_parallel {
            if let Some(staged) = self.raw.store().stage(ready.entries(), hs.as_ref())? {
                self.writer.write(ready.number(), staged);
            }
        } else if ready.must_sync() {
            let at = Instant::now();
            self.raw.store().persist(ready.entries(), hs.as_ref())?;
            metrics::RAFT_PERSIST_SECONDS.observe(at.elapsed().as_secs_f64());
        } else if let Some(hs) = hs {
            // No entries, and the term and vote are unchanged: only the commit index moved
            // (the leader heard from a majority, a follower from the leader). Like the light
            // ready's commit index below, it is written by the next transaction without an
            // fsync of its own; a commit index lost in a crash is learned again from the
            // leader. raft-rs's `must_sync` says exactly this, and etcd does the same.
            self.raw.store().set_commit(hs.commit);
        }
        if !ready.persisted_messages().is_empty() {
            // Only a non-leader has these (raft-rs), and it persisted synchronously above.
            self.transport.send(ready.take_persisted_messages());
        }
        if let Some(ss) = ready.ss() {
            self.on_role(ss.leader_id, ss.raft_state);
        }
        if in_parallel {
            // The writer reports the write; `on_written` then lets raft count it.
            self.raw.advance_append_async(ready);
        } else {
            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                // Not fsynced on its own: a lagging commit index is recovered from the log.
                self.raw.store().set_commit(commit);
            }
            self.transport.send(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(committed)?;
        }
        self.raw.advance_apply();
        self.lead_if_sole_voter();
        self.publish_status();
        // Only now is everything applied also durably committed in storage.
        let applied = self.status.borrow().applied;
        self.maybe_snapshot(applied)
    }

    fn install_snapshot(&mut self, snapshot: raft::prelude::Snapshot) -> Result<(), DriverError> {
        let index = snapshot.get_metadata().index;
        // A snapshot of our own being made must not compact the log this one replaces.
        self.snapshotter.finished(true)?;
        let at = Instant::now();
        let bytes = snapshot.data.len();
        let decoded = StoreSnapshot::decode(&snapshot.data[..])
            .map_err(|source| DriverError::Snapshot { index, source })?;
        let decode = at.elapsed();
        let cs = snapshot.get_metadata().get_conf_state().clone();
        self.raw.store().apply_snapshot(snapshot)?;
        let persist = at.elapsed() - decode;
        self.status.send_modify(|s| {
            s.voters = cs.voters;
            s.learners = cs.learners;
        });
        self.memory.restore(Tables::from_snapshot(decoded, index));
        metrics::RAFT_SNAPSHOTS
            .with_label_values(&["installed"])
            .inc();
        tracing::info!(
            index,
            bytes,
            ?decode,
            ?persist,
            took = ?at.elapsed(),
            "raft snapshot from the leader installed"
        );
        self.snapshots = SnapshotProgress::at(index, bytes);
        self.status.send_modify(|s| s.applied = index);
        Ok(())
    }

    /// Applies committed entries in order: store batches together, conf changes in place.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), DriverError> {
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let at = Instant::now();
        let mut batches: Vec<(u64, StoreBatch)> = Vec::new();
        for e in entries {
            self.snapshots.applied(e.data.len());
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {}
                EntryType::EntryNormal => {
                    let batch =
                        StoreBatch::decode(&e.data[..]).map_err(|err| DriverError::Entry {
                            index: e.index,
                            detail: err.to_string(),
                        })?;
                    let index = e.index;
                    batches.extend(coalesce::unpack(batch).into_iter().map(|b| (index, b)));
                }
                EntryType::EntryConfChange => {
                    self.flush(&mut batches);
                    self.apply_conf_change::<ConfChange>(&e)?;
                }
                EntryType::EntryConfChangeV2 => {
                    self.flush(&mut batches);
                    self.apply_conf_change::<ConfChangeV2>(&e)?;
                }
            }
        }
        self.flush(&mut batches);
        self.answer_conf_waiters(last, None);
        self.memory.skip_to(last);
        metrics::RAFT_APPLY_SECONDS.observe(at.elapsed().as_secs_f64());
        metrics::RAFT_APPLIED_ENTRIES.inc_by(last.saturating_sub(self.status.borrow().applied));
        self.status.send_modify(|s| s.applied = last);
        Ok(())
    }

    /// Applies a committed membership change to raft and records the new voters.
    fn apply_conf_change<C>(&mut self, e: &Entry) -> Result<(), DriverError>
    where
        C: protobuf::Message + raft_proto::ConfChangeI,
    {
        let cc = C::parse_from_bytes(&e.data).map_err(|err| DriverError::Entry {
            index: e.index,
            detail: err.to_string(),
        })?;
        let cs = self.raw.apply_conf_change(&cc)?;
        self.raw.store().set_conf_state(cs.clone())?;
        tracing::info!(index = e.index, voters = ?cs.voters, learners = ?cs.learners, "raft membership changed");
        self.status.send_modify(|s| {
            s.voters = cs.voters.clone();
            s.learners = cs.learners.clone();
        });
        self.answer_conf_waiters(e.index, Some(&cs));
        let me = self.options.id;
        let removed =
            |c: &ConfChange| c.node_id == me && c.get_change_type() == ConfChangeType::RemoveNode;
        if cc.as_v1().is_some_and(removed) && !cs.voters.contains(&me) && !cs.learners.contains(&me)
        {
            return Err(DriverError::Removed(me));
        }
        Ok(())
    }

    /// Answers the membership changes waiting on entries up to `index`: the one at `index`
    /// with `applied` (when it is a change), earlier ones as dropped (raft turned them into
    /// empty entries).
    fn answer_conf_waiters(&mut self, index: u64, applied: Option<&ConfState>) {
        let (done, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_waiters)
            .into_iter()
            .partition(|(i, _)| *i <= index);
        self.conf_waiters = pending;
        for (i, reply) in done {
            let outcome = match applied {
                Some(cs) if i == index => Ok(cs.clone()),
                _ => Err(StoreError::Dropped(
                    "the membership change was not applied (leadership changed); retry".into(),
                )),
            };
            let _ = reply.send(outcome);
        }
    }

    fn flush(&mut self, batches: &mut Vec<(u64, StoreBatch)>) {
        if batches.is_empty() {
            return;
        }
        let outcomes = self.memory.apply(batches);
        for ((_, batch), outcome) in batches.iter().zip(outcomes) {
            if let Some((reply, at)) = self.waiters.remove(&batch.request_id) {
                metrics::RAFT_COMMIT_SECONDS.observe(at.elapsed().as_secs_f64());
                let _ = reply.send(Ok(outcome));
            }
        }
        batches.clear();
    }

    /// Collects the snapshot made off the loop, if it is done, and starts the next one when
    /// one is due ([`SnapshotProgress::due`]: at least `snapshot_interval` entries and as
    /// many log bytes as the last snapshot held) or raft asked for one (a member needs a
    /// newer one than storage holds).
    fn maybe_snapshot(&mut self, applied: u64) -> Result<(), DriverError> {
        if let Some(made) = self.snapshotter.finished(false)?
            && made.index > self.snapshots.last_index
        {
            self.snapshots
                .taken(made.index, made.bytes, made.log_bytes_then);
        }
        if self.snapshotter.busy() {
            return Ok(());
        }
        let view = self.memory.view();
        let spec = view
            .the_cluster()
            .and_then(|c| c.spec.as_ref()?.raft.as_ref());
        self.options.follow_snapshot_spec(spec);
        let wanted = self.raw.store().snapshot_requested();
        if !self
            .snapshots
            .due(applied, self.options.snapshot_interval, wanted)
        {
            return Ok(());
        }
        if applied > self.raw.store().commit_index() {
            // Applied ahead of the commit index on disk (raft hands out committed entries
            // before their commit index is persisted): snapshot at a later round.
            return Ok(());
        }
        debug_assert_eq!(view.index, applied);
        let conf_state = self.raw.store().conf_state();
        self.snapshotter.start(
            self.raw.store().clone(),
            view,
            conf_state,
            self.options.keep_entries,
            self.snapshots.log_bytes(),
        );
        Ok(())
    }

    fn on_role(&mut self, leader_id: u64, role: StateRole) {
        let was_leader = self.status.borrow().is_leader;
        let is_leader = role == StateRole::Leader;
        metrics::RAFT_LEADER.set(i64::from(is_leader));
        if was_leader && !is_leader {
            self.fail_waiters("leadership lost before the write was committed");
        }
        self.status.send_modify(|s| {
            s.leader_id = leader_id;
            s.is_leader = is_leader;
        });
    }

    /// A one-voter swarm need not wait out an election timeout to lead (again): at start,
    /// or once the membership change that made it one has applied (raft refuses to campaign
    /// with a change pending, as after `--force-new-cluster` replays a promotion).
    fn lead_if_sole_voter(&mut self) {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader
            && self.status.borrow().voters == [self.options.id]
            && !raft.has_pending_conf()
            && let Err(e) = self.raw.campaign()
        {
            tracing::warn!(error = %e, "raft campaign as the only voter");
        }
    }

    fn publish_status(&mut self) {
        let term = self.raw.raft.term;
        let mut active: Vec<u64> = Vec::new();
        if self.raw.raft.state == StateRole::Leader {
            // Heard from within an election timeout. (raft's own `recent_active` is reset at
            // every quorum check, so it reads "unreachable" for a tick each time.)
            let me = self.options.id;
            let window = self.options.tick * self.options.election_tick as u32;
            let now = Instant::now();
            active = self
                .raw
                .raft
                .prs()
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| {
                    *id == me
                        || self
                            .heard
                            .get(id)
                            .is_some_and(|at| now.duration_since(*at) <= window)
                })
                .collect();
            active.sort_unstable();
        }
        self.status.send_if_modified(|s| {
            let changed = s.term != term || s.active != active;
            s.term = term;
            s.active = active;
            changed
        });
    }

    fn fail_waiters(&mut self, why: &str) {
        for (_, (reply, _)) in self.waiters.drain() {
            let _ = reply.send(Err(StoreError::Dropped(why.to_string())));
        }
        for (_, reply) in self.conf_waiters.drain(..) {
            let _ = reply.send(Err(StoreError::Dropped(why.to_string())));
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
