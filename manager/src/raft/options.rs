//! Raft settings of one manager, from the cluster's `RaftConfig` with SwarmKit-derived defaults.

use std::time::Duration;

/// The most committed entries (in bytes) one Ready hands the driver to apply (raft-rs gives
/// at least one entry even if it is larger). A member applying a long run of large entries
/// (a leader's scheduler rewriting 100,000 tasks: 50 entries of 2,000 changes) applies them
/// a slice per loop round, ticking and answering heartbeats in between, instead of falling
/// silent for seconds, which made a two-member swarm's leader step down (check-quorum)
/// again and again.
pub const MAX_APPLY_PER_READY: u64 = 256 * 1024;

/// How the raft driver runs. Defaults: tick 100 ms, heartbeat every tick, election after 10
/// ticks (1 s), check-quorum and pre-vote on, a snapshot at most every 10,000 entries (and
/// only once the log since the last one is as large as it, see `snapshot_policy`) keeping
/// 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftOptions {
    /// This member's raft id (never 0, never reused).
    pub id: u64,
    pub tick: Duration,
    pub heartbeat_tick: usize,
    pub election_tick: usize,
    pub check_quorum: bool,
    pub pre_vote: bool,
    /// The fewest entries between two snapshots (unless a member needs one).
    pub snapshot_interval: u64,
    pub keep_entries: u64,
}

impl RaftOptions {
    /// Defaults for member `id`.
    pub fn new(id: u64) -> Self {
        Self {
            id,
            tick: Duration::from_millis(100),
            heartbeat_tick: 1,
            election_tick: 10,
            check_quorum: true,
            pre_vote: true,
            snapshot_interval: 10_000,
            keep_entries: 500,
        }
    }

    /// The cluster spec's settings, each zero field keeping its default.
    pub fn from_spec(id: u64, spec: Option<&swarm_proto::RaftConfig>) -> Self {
        let mut o = Self::new(id);
        if let Some(s) = spec {
            if s.tick_ms > 0 {
                o.tick = Duration::from_millis(s.tick_ms);
            }
            if s.heartbeat_tick > 0 {
                o.heartbeat_tick = s.heartbeat_tick as usize;
            }
            if s.election_tick > 0 {
                o.election_tick = s.election_tick as usize;
            }
            if s.snapshot_interval > 0 {
                o.snapshot_interval = s.snapshot_interval;
            }
            o.keep_entries = s.log_entries_for_slow_followers;
            o.check_quorum = s.check_quorum;
            o.pre_vote = s.pre_vote;
        }
        o
    }

    /// Takes the snapshot settings of the cluster spec `spec` (`swarmctl cluster update
    /// --snapshot-interval N --log-entries-for-slow-followers M`): a running member follows
    /// them whenever the spec changes, as SwarmKit reads them from the cluster object at each
    /// check (`getCurrentRaftConfig`). The other settings take effect at start. A zero
    /// interval (no spec) keeps the current one.
    pub fn follow_snapshot_spec(&mut self, spec: Option<&swarm_proto::RaftConfig>) {
        if let Some(s) = spec {
            if s.snapshot_interval > 0 {
                self.snapshot_interval = s.snapshot_interval;
            }
            self.keep_entries = s.log_entries_for_slow_followers;
        }
    }

    /// The cluster spec these options describe (what `init` writes).
    pub fn to_spec(&self) -> swarm_proto::RaftConfig {
        swarm_proto::RaftConfig {
            snapshot_interval: self.snapshot_interval,
            log_entries_for_slow_followers: self.keep_entries,
            heartbeat_tick: self.heartbeat_tick as u32,
            election_tick: self.election_tick as u32,
            tick_ms: self.tick.as_millis() as u64,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
        }
    }

    pub(super) fn raft_config(&self, applied: u64) -> raft::Config {
        raft::Config {
            id: self.id,
            election_tick: self.election_tick,
            heartbeat_tick: self.heartbeat_tick,
            applied,
            max_size_per_msg: 1024 * 1024,
            max_committed_size_per_ready: MAX_APPLY_PER_READY,
            max_inflight_msgs: 256,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            // Proposals that arrive together go to each follower in one MsgAppend (and get
            // one response) instead of one message per entry.
            batch_append: true,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trip_keeps_every_setting() {
        let mut o = RaftOptions::new(7);
        o.tick = Duration::from_millis(50);
        o.snapshot_interval = 123;
        o.pre_vote = false;
        assert_eq!(RaftOptions::from_spec(7, Some(&o.to_spec())), o);
        assert_eq!(RaftOptions::from_spec(7, None), RaftOptions::new(7));
    }

    #[test]
    fn a_running_member_follows_only_the_snapshot_settings() {
        let mut o = RaftOptions::new(7);
        let spec = swarm_proto::RaftConfig {
            snapshot_interval: 5,
            log_entries_for_slow_followers: 0,
            tick_ms: 10,
            ..Default::default()
        };
        o.follow_snapshot_spec(Some(&spec));
        assert_eq!((o.snapshot_interval, o.keep_entries), (5, 0));
        assert_eq!(
            o.tick,
            Duration::from_millis(100),
            "the tick applies at start"
        );
        o.follow_snapshot_spec(None);
        assert_eq!(o.snapshot_interval, 5, "no spec keeps the settings");
    }
}
