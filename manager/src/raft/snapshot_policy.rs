//! When the driver takes a raft snapshot: a pure decision from what was applied since the
//! last one.
//!
//! A snapshot encodes the whole store, so its cost grows with the store, while a fixed entry
//! interval spreads it over a fixed number of writes: with 100,000 services and SwarmKit's
//! 10,000-entry interval, every write would pay for encoding ten objects. So a snapshot waits
//! for `snapshot_interval` entries **and** for [`LOG_PER_SNAPSHOT`] times as many bytes of
//! applied log as the last snapshot held. Snapshotting then costs, amortized, at most a
//! quarter byte encoded (and stored) per byte written, whatever the store's size, and a
//! restart replays at most about four snapshots' worth of log on top of the snapshot. (With
//! a ratio of 1, snapshots still took a quarter of each follower's CPU under `swarm-bench
//! raft-writes`.) A follower that needs a snapshot the log cannot serve
//! gets one at once ([`SnapshotProgress::due`] with `requested`).

/// How many times its own size of log a snapshot waits for before the next.
pub(super) const LOG_PER_SNAPSHOT: u64 = 4;

/// The log since the last snapshot, as the driver tracks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SnapshotProgress {
    /// Index of the last snapshot (taken, installed or restored).
    pub last_index: u64,
    /// Size of that snapshot's data.
    last_bytes: u64,
    /// Bytes of entry data applied after it.
    log_bytes: u64,
}

impl SnapshotProgress {
    /// Right after a snapshot at `index` holding `bytes` of data.
    pub fn at(index: u64, bytes: usize) -> Self {
        Self {
            last_index: index,
            last_bytes: bytes as u64,
            log_bytes: 0,
        }
    }

    /// Counts `bytes` of entry data applied after the last snapshot.
    pub fn applied(&mut self, bytes: usize) {
        self.log_bytes = self.log_bytes.saturating_add(bytes as u64);
    }

    /// Bytes of entry data applied since the last snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// A snapshot at `index` holding `bytes` was stored. It was started when
    /// [`Self::log_bytes`] said `log_bytes_then`: what was applied after that counts towards
    /// the next one.
    pub fn taken(&mut self, index: u64, bytes: usize, log_bytes_then: u64) {
        let since = self.log_bytes.saturating_sub(log_bytes_then);
        *self = Self::at(index, bytes);
        self.log_bytes = since;
    }

    /// Whether to snapshot the store as applied up to `applied`: never at or below the last
    /// snapshot; at once when raft asked for one (`requested`); otherwise once both
    /// `interval` entries and [`LOG_PER_SNAPSHOT`] times the last snapshot's size of log have
    /// been applied.
    pub fn due(&self, applied: u64, interval: u64, requested: bool) -> bool {
        if applied <= self.last_index {
            return false;
        }
        requested
            || (applied - self.last_index >= interval
                && self.log_bytes >= LOG_PER_SNAPSHOT * self.last_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t10_waits_for_the_interval_and_for_a_multiple_of_the_last_snapshot() {
        let mut p = SnapshotProgress::at(100, 5_000);
        p.applied(LOG_PER_SNAPSHOT as usize * 5_000 - 1_000);
        assert!(!p.due(150, 100, false), "before the interval");
        assert!(
            !p.due(200, 100, false),
            "the log is smaller than the last snapshot"
        );
        p.applied(1_000);
        assert!(p.due(200, 100, false));
        assert!(!p.due(199, 100, false), "the interval still counts");
    }

    #[test]
    fn t11_what_applies_while_a_snapshot_is_encoded_counts_towards_the_next() {
        let mut p = SnapshotProgress::at(0, 0);
        p.applied(700);
        let then = p.log_bytes();
        p.applied(300);
        p.taken(10, 2_000, then);
        assert_eq!(p, {
            let mut q = SnapshotProgress::at(10, 2_000);
            q.applied(300);
            q
        });
    }

    #[test]
    fn t20_a_requested_snapshot_is_due_at_once_but_never_twice_at_one_index() {
        let p = SnapshotProgress::at(100, 1 << 30);
        assert!(p.due(101, 10_000, true));
        assert!(
            !p.due(100, 10_000, true),
            "nothing applied since the last one"
        );
    }

    #[test]
    fn t30_an_empty_store_snapshots_at_the_interval() {
        let p = SnapshotProgress::default();
        assert!(!p.due(9, 10, false));
        assert!(p.due(10, 10, false));
    }

    #[test]
    fn t40_snapshots_of_a_growing_store_get_geometrically_rarer() {
        // Every entry adds 100 bytes to the log and 100 to the store: the snapshots land at
        // 10, 50, 250… entries, so the bytes encoded stay below a third of the bytes written.
        let (mut p, mut taken, mut encoded) = (SnapshotProgress::default(), Vec::new(), 0);
        for index in 1..=1_000u64 {
            p.applied(100);
            if p.due(index, 10, false) {
                let bytes = index as usize * 100;
                encoded += bytes;
                taken.push(index);
                p = SnapshotProgress::at(index, bytes);
            }
        }
        assert_eq!(LOG_PER_SNAPSHOT, 4, "the landing points below assume 4");
        assert_eq!(taken, [10, 50, 250]);
        assert!(encoded * 3 < 1_000 * 100, "encoded {encoded} bytes");
    }
}
