//! The storage suite: raft-rs `MemStorage`'s own tests ported to [`RaftStorage`], then
//! durability, corruption and cache tests.
//!
//! Every log test runs under each of [`LIMITS`] — the whole tail cached, nothing cached (every
//! read hits redb), and a cache of a couple of entries (reads straddle memory and disk) — so
//! the cache path and the disk path are held to the same expectations.
//!
//! `MemStorage` seeds its tests by assigning `entries = [3, 4, 5]` directly; here the same log
//! is built through the public API (a snapshot at index 2, then `persist`), so index 2 is the
//! compacted "dummy" position and `term(2)` answers instead of `Compacted`.

use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{Error as RaftError, GetEntriesContext, Storage, StorageError as RaftStorageError};
use redb::Database;
use tempfile::TempDir;

use super::*;

/// Tail-cache budgets every log test runs under: all, nothing, about two small entries.
const LIMITS: [u64; 3] = [DEFAULT_CACHE_BYTES, 0, 10];

fn new_entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        ..Default::default()
    }
}

fn entry_with_data(index: u64, term: u64, len: usize) -> Entry {
    let mut e = new_entry(index, term);
    e.data = vec![(index % 251) as u8; len].into();
    e
}

fn size_of(e: &Entry) -> u64 {
    u64::from(e.compute_size())
}

fn new_snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().mut_conf_state().voters = voters;
    s
}

fn voters(ids: &[u64]) -> ConfState {
    ConfState {
        voters: ids.to_vec(),
        ..Default::default()
    }
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn all_entries(s: &RaftStorage) -> Vec<Entry> {
    s.entries(s.first_index(), s.last_index() + 1, None, ctx())
        .unwrap()
}

/// A storage in a temporary directory that can be closed and reopened.
struct Fixture {
    dir: TempDir,
    limit: u64,
    storage: Option<RaftStorage>,
}

impl Fixture {
    fn new(limit: u64) -> Self {
        let dir = TempDir::new().unwrap();
        let storage =
            RaftStorage::open_with_cache_limit(&dir.path().join("raft.redb"), limit).unwrap();
        Fixture {
            dir,
            limit,
            storage: Some(storage),
        }
    }

    /// `MemStorage`'s `entries = ents` seeding: a snapshot just before `ents`, then `ents`.
    fn seeded(limit: u64, ents: &[Entry]) -> Self {
        let f = Fixture::new(limit);
        let first = ents[0].index;
        f.s()
            .apply_snapshot(new_snapshot(first - 1, first - 1, vec![]))
            .unwrap();
        f.s().persist(ents, None).unwrap();
        f
    }

    fn s(&self) -> &RaftStorage {
        self.storage.as_ref().unwrap()
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("raft.redb")
    }

    fn close(&mut self) {
        self.storage = None;
    }

    fn reopen(&mut self) {
        self.close();
        self.storage = Some(RaftStorage::open_with_cache_limit(&self.path(), self.limit).unwrap());
    }
}

/// Rewrites one record behind the storage's back (the storage must be closed).
fn tamper(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

fn assert_corrupted(err: StorageError, path: &Path, needle: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, StorageError::Corrupted { .. }),
        "not Corrupted: {err:?}"
    );
    assert!(
        msg.contains(&path.display().to_string()),
        "message lacks the path: {msg}"
    );
    assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
}

// ---- ported from raft-rs MemStorage -----------------------------------------------------------

#[test]
fn t10_term() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    let cases = [
        (1, Err(RaftError::Store(RaftStorageError::Compacted))),
        (2, Ok(2)),
        (3, Ok(3)),
        (4, Ok(4)),
        (5, Ok(5)),
        (6, Err(RaftError::Store(RaftStorageError::Unavailable))),
    ];
    for limit in LIMITS {
        let f = Fixture::seeded(limit, &ents);
        for (i, (idx, want)) in cases.iter().enumerate() {
            assert_eq!(&f.s().term(*idx), want, "limit {limit} case #{i} idx {idx}");
        }
    }
}

#[test]
fn t11_entries_with_max_size() {
    let ents = [
        new_entry(3, 3),
        new_entry(4, 4),
        new_entry(5, 5),
        new_entry(6, 6),
    ];
    let max = u64::MAX;
    let (s1, s2, s3) = (size_of(&ents[1]), size_of(&ents[2]), size_of(&ents[3]));
    let cases = vec![
        (
            2,
            6,
            max,
            Err(RaftError::Store(RaftStorageError::Compacted)),
        ),
        (3, 4, max, Ok(vec![new_entry(3, 3)])),
        (4, 5, max, Ok(vec![new_entry(4, 4)])),
        (4, 6, max, Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
        (
            4,
            7,
            max,
            Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
        ),
        // even if max size is zero, the first entry is returned
        (4, 7, 0, Ok(vec![new_entry(4, 4)])),
        (4, 7, s1 + s2, Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
        (
            4,
            7,
            s1 + s2 + s3 / 2,
            Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
        ),
        (
            4,
            7,
            s1 + s2 + s3 - 1,
            Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
        ),
        (
            4,
            7,
            s1 + s2 + s3,
            Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
        ),
        // beyond MemStorage: an empty range, and past the end (MemStorage panics)
        (5, 5, max, Ok(vec![])),
        (
            4,
            8,
            max,
            Err(RaftError::Store(RaftStorageError::Unavailable)),
        ),
    ];
    for limit in LIMITS {
        let f = Fixture::seeded(limit, &ents);
        for (i, (lo, hi, max_size, want)) in cases.iter().enumerate() {
            let got = f.s().entries(*lo, *hi, *max_size, ctx());
            assert_eq!(&got, want, "limit {limit} case #{i}");
        }
    }
}

#[test]
fn t12_last_index() {
    for limit in LIMITS {
        let f = Fixture::seeded(limit, &[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]);
        assert_eq!(Storage::last_index(f.s()), Ok(5));
        f.s().persist(&[new_entry(6, 5)], None).unwrap();
        assert_eq!(Storage::last_index(f.s()), Ok(6));
        assert_eq!(f.s().last_index(), 6);
    }
}

#[test]
fn t13_first_index() {
    for limit in LIMITS {
        let f = Fixture::seeded(limit, &[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]);
        assert_eq!(Storage::first_index(f.s()), Ok(3));
        f.s().compact(4).unwrap();
        assert_eq!(Storage::first_index(f.s()), Ok(4));
        assert_eq!(f.s().first_index(), 4);
    }
}

#[test]
fn t14_compact() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    // (compact to, want first index, want its term, want remaining entries)
    let cases = [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)];
    for limit in LIMITS {
        for (i, (idx, windex, wterm, wlen)) in cases.into_iter().enumerate() {
            let mut f = Fixture::seeded(limit, &ents);
            f.s().compact(idx).unwrap();
            for phase in ["live", "reopened"] {
                let s = f.s();
                let index = s.first_index();
                assert_eq!(index, windex, "limit {limit} #{i} {phase}");
                let first = s.entries(index, index + 1, 1, ctx()).unwrap();
                assert_eq!(first[0].term, wterm, "limit {limit} #{i} {phase}");
                let len = s
                    .entries(index, s.last_index() + 1, 100, ctx())
                    .unwrap()
                    .len();
                assert_eq!(len, wlen, "limit {limit} #{i} {phase}");
                // beyond MemStorage: the term before first_index is still known
                assert_eq!(
                    s.term(index - 1),
                    Ok(index - 1),
                    "limit {limit} #{i} {phase}"
                );
                f.reopen();
            }
        }
        let f = Fixture::seeded(limit, &ents);
        let err = f.s().compact(7).unwrap_err();
        assert!(matches!(err, StorageError::InvalidOperation(_)), "{err:?}");
        assert_eq!(
            f.s().first_index(),
            3,
            "a refused compaction must not change the log"
        );
    }
}

#[test]
fn t15_create_snapshot() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    let nodes = vec![1, 2, 3];
    let unavailable = || {
        Err(RaftError::Store(
            RaftStorageError::SnapshotTemporarilyUnavailable,
        ))
    };
    // (snapshot at, want, request index). MemStorage fakes `index = request_index` when the
    // request is newer than its snapshot; a real snapshot cannot, so that case is unavailable.
    let cases = [
        (4, Ok(new_snapshot(4, 4, nodes.clone())), 0),
        (5, Ok(new_snapshot(5, 5, nodes.clone())), 5),
        (5, unavailable(), 6),
    ];
    for limit in LIMITS {
        for (i, (idx, want, request)) in cases.iter().enumerate() {
            let f = Fixture::seeded(limit, &ents);
            f.s()
                .persist(&[], Some(&hard_state(*idx, 0, *idx)))
                .unwrap();
            f.s()
                .create_snapshot(*idx, voters(&nodes), Vec::new(), 10)
                .unwrap();
            let got = f.s().snapshot(*request, 2);
            assert_eq!(&got, want, "limit {limit} #{i}");
            assert_eq!(
                f.s().snapshot_requested(),
                want.is_err(),
                "limit {limit} #{i}"
            );
        }
    }
    // Nothing stored yet: raft must wait for the driver to make one.
    let f = Fixture::new(0);
    assert_eq!(f.s().snapshot(0, 2), unavailable());
    assert!(f.s().snapshot_requested());
}

#[test]
fn t15b_a_snapshot_without_the_receiver_is_made_anew() {
    // A member that joined after the stored snapshot would refuse to restore it.
    let f = Fixture::seeded(0, &[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]);
    f.s().persist(&[], Some(&hard_state(5, 0, 5))).unwrap();
    f.s()
        .create_snapshot(4, voters(&[1, 2]), Vec::new(), 10)
        .unwrap();
    assert!(!f.s().snapshot_requested());
    assert!(
        f.s().snapshot(0, 9).is_err(),
        "member 9 is not in the snapshot"
    );
    assert!(
        f.s().snapshot_requested(),
        "the driver is asked for a new one"
    );
    f.s()
        .create_snapshot(5, voters(&[1, 2, 9]), Vec::new(), 10)
        .unwrap();
    assert!(!f.s().snapshot_requested());
    assert_eq!(f.s().snapshot(0, 9).unwrap().get_metadata().index, 5);
}

#[test]
fn t16_create_snapshot_keeps_entries_for_slow_followers() {
    for limit in LIMITS {
        let mut f = Fixture::new(limit);
        let ents: Vec<Entry> = (1..=20).map(|i| entry_with_data(i, 1, 3)).collect();
        f.s().persist(&ents, Some(&hard_state(1, 1, 18))).unwrap();
        f.s()
            .create_snapshot(15, voters(&[1, 2]), b"state@15".to_vec(), 5)
            .unwrap();
        for phase in ["live", "reopened"] {
            let s = f.s();
            // 5 entries before 15 are kept: 10..=14, then 15..=20.
            assert_eq!(
                (s.first_index(), s.last_index()),
                (10, 20),
                "{limit} {phase}"
            );
            assert_eq!(all_entries(s), ents[9..].to_vec(), "{limit} {phase}");
            assert_eq!(s.term(9), Ok(1), "{limit} {phase}");
            let snap = s.snapshot_now().unwrap();
            assert_eq!(snap.get_metadata().index, 15);
            assert_eq!(snap.get_metadata().term, 1);
            assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2]);
            assert_eq!(&snap.data[..], b"state@15");
            assert_eq!(s.snapshot(15, 2).unwrap(), snap);
            assert_eq!(
                s.hard_state(),
                hard_state(1, 1, 18),
                "a snapshot leaves the hard state"
            );
            f.reopen();
        }
        let s = f.s();
        let out_of_date = s.create_snapshot(15, voters(&[1]), vec![], 0).unwrap_err();
        assert!(
            matches!(out_of_date, StorageError::SnapshotOutOfDate { .. }),
            "{out_of_date:?}"
        );
        let uncommitted = s.create_snapshot(19, voters(&[1]), vec![], 0).unwrap_err();
        assert!(
            matches!(uncommitted, StorageError::InvalidOperation(_)),
            "{uncommitted:?}"
        );
        // keep_entries larger than the log: nothing to compact
        s.create_snapshot(18, voters(&[1]), vec![], 1000).unwrap();
        assert_eq!(s.first_index(), 10);
    }
}

#[test]
fn t17_append() {
    let ents = [new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)];
    let cases: Vec<(Vec<Entry>, Option<Vec<Entry>>)> = vec![
        (ents.to_vec(), Some(ents.to_vec())),
        (
            vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)],
            Some(vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)]),
        ),
        (
            vec![
                new_entry(3, 3),
                new_entry(4, 4),
                new_entry(5, 5),
                new_entry(6, 5),
            ],
            Some(vec![
                new_entry(3, 3),
                new_entry(4, 4),
                new_entry(5, 5),
                new_entry(6, 5),
            ]),
        ),
        // overwriting compacted raft logs is refused (MemStorage panics)
        (
            vec![new_entry(2, 3), new_entry(3, 3), new_entry(4, 5)],
            None,
        ),
        // truncate the existing entries and append
        (
            vec![new_entry(4, 5)],
            Some(vec![new_entry(3, 3), new_entry(4, 5)]),
        ),
        // direct append
        (
            vec![new_entry(6, 6)],
            Some(vec![
                new_entry(3, 3),
                new_entry(4, 4),
                new_entry(5, 5),
                new_entry(6, 6),
            ]),
        ),
        // beyond MemStorage: a gap, and non-contiguous input, are refused
        (vec![new_entry(7, 6)], None),
        (vec![new_entry(6, 6), new_entry(8, 6)], None),
    ];
    for limit in LIMITS {
        for (i, (append, want)) in cases.iter().enumerate() {
            let mut f = Fixture::seeded(limit, &ents);
            let res = f.s().persist(append, None);
            let want = match want {
                Some(want) => {
                    res.unwrap();
                    want.clone()
                }
                None => {
                    let err = res.unwrap_err();
                    assert!(
                        matches!(err, StorageError::InvalidOperation(_)),
                        "#{i}: {err:?}"
                    );
                    ents.to_vec()
                }
            };
            assert_eq!(all_entries(f.s()), want, "limit {limit} #{i} live");
            f.reopen();
            assert_eq!(all_entries(f.s()), want, "limit {limit} #{i} reopened");
            assert_eq!(f.s().last_index(), want.last().unwrap().index);
        }
    }
}

#[test]
fn t18_apply_snapshot() {
    let nodes = vec![1, 2, 3];
    for limit in LIMITS {
        let mut f = Fixture::new(limit);
        f.s()
            .persist(
                &[new_entry(1, 1), new_entry(2, 1)],
                Some(&hard_state(5, 2, 1)),
            )
            .unwrap();

        // Applied successfully: the conflicting log is dropped.
        let mut snap = new_snapshot(4, 4, nodes.clone());
        snap.data = b"leader state".to_vec().into();
        f.s().apply_snapshot(snap.clone()).unwrap();
        for phase in ["live", "reopened"] {
            let s = f.s();
            assert_eq!((s.first_index(), s.last_index()), (5, 4), "{limit} {phase}");
            assert_eq!(
                s.hard_state(),
                hard_state(5, 2, 4),
                "term kept at max, commit = index"
            );
            assert_eq!(s.conf_state(), voters(&nodes));
            assert_eq!(s.term(4), Ok(4));
            assert_eq!(s.snapshot_now().unwrap(), snap);
            assert_eq!(
                s.entries(4, 5, None, ctx()),
                Err(RaftError::Store(RaftStorageError::Compacted))
            );
            f.reopen();
        }

        // Out of date: older than what the log covers.
        let err = f
            .s()
            .apply_snapshot(new_snapshot(3, 3, nodes.clone()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::SnapshotOutOfDate {
                    index: 3,
                    covered: 4
                }
            ),
            "{err:?}"
        );

        // A snapshot whose index and term the log holds keeps the entries after it.
        f.s()
            .persist(&[new_entry(5, 5), new_entry(6, 5), new_entry(7, 5)], None)
            .unwrap();
        f.s()
            .apply_snapshot(new_snapshot(6, 5, nodes.clone()))
            .unwrap();
        assert_eq!(all_entries(f.s()), vec![new_entry(7, 5)], "{limit}");
        // One that conflicts (term differs) drops them all.
        f.s().persist(&[new_entry(8, 5)], None).unwrap();
        f.s()
            .apply_snapshot(new_snapshot(7, 6, nodes.clone()))
            .unwrap();
        assert_eq!((f.s().first_index(), f.s().last_index()), (8, 7), "{limit}");
        assert_eq!(f.s().hard_state().term, 6);
        f.reopen();
        assert_eq!(
            (f.s().first_index(), f.s().last_index()),
            (8, 7),
            "{limit} reopened"
        );
    }
}

// ---- durability --------------------------------------------------------------------------------

#[test]
fn t30_reopen_returns_what_was_persisted() {
    for limit in LIMITS {
        let mut f = Fixture::new(limit);
        let ents: Vec<Entry> = (1..=50)
            .map(|i| entry_with_data(i, 1 + i / 20, 7))
            .collect();
        f.s()
            .persist(&ents[..30], Some(&hard_state(1, 1, 0)))
            .unwrap();
        f.s()
            .persist(&ents[30..], Some(&hard_state(3, 2, 40)))
            .unwrap();
        f.s().set_conf_state(voters(&[1, 2, 3])).unwrap();
        f.s()
            .create_snapshot(35, voters(&[1, 2]), b"snap".to_vec(), 10)
            .unwrap();
        let before = (
            f.s().hard_state(),
            f.s().conf_state(),
            all_entries(f.s()),
            f.s().snapshot_now().unwrap(),
            f.s().initial_state().unwrap(),
        );

        f.reopen();
        let s = f.s();
        assert_eq!(s.hard_state(), hard_state(3, 2, 40));
        assert_eq!(s.conf_state(), voters(&[1, 2, 3]));
        assert_eq!((s.first_index(), s.last_index()), (25, 50));
        assert_eq!(all_entries(s), ents[24..].to_vec());
        assert_eq!(s.snapshot_now().unwrap().get_metadata().index, 35);
        let after = (
            s.hard_state(),
            s.conf_state(),
            all_entries(s),
            s.snapshot_now().unwrap(),
            s.initial_state().unwrap(),
        );
        assert_eq!(before.0, after.0);
        assert_eq!(before.1, after.1);
        assert_eq!(before.2, after.2);
        assert_eq!(before.3, after.3);
        assert_eq!(before.4.hard_state, after.4.hard_state);
        assert_eq!(before.4.conf_state, after.4.conf_state);
        assert!(!s.is_empty());
    }
}

#[test]
fn t31_hard_state_alone_is_persisted() {
    let mut f = Fixture::new(DEFAULT_CACHE_BYTES);
    f.s().persist(&[], Some(&hard_state(7, 3, 0))).unwrap();
    f.s().persist(&[], None).unwrap(); // nothing to do
    f.reopen();
    assert_eq!(f.s().hard_state(), hard_state(7, 3, 0));
    assert_eq!(f.s().last_index(), 0);
}

#[test]
fn t32_initialize_bootstraps_once() {
    let mut f = Fixture::new(DEFAULT_CACHE_BYTES);
    assert!(f.s().is_empty());
    assert!(!f.s().initial_state().unwrap().initialized());
    let err = f.s().initialize(ConfState::default()).unwrap_err();
    assert!(matches!(err, StorageError::InvalidOperation(_)), "{err:?}");
    assert!(f.s().is_empty(), "a refused initialize writes nothing");

    f.s().initialize(voters(&[1])).unwrap();
    for phase in ["live", "reopened"] {
        let s = f.s();
        assert!(!s.is_empty(), "{phase}");
        let state = s.initial_state().unwrap();
        assert!(state.initialized(), "{phase}");
        assert_eq!(state.conf_state, voters(&[1]));
        assert_eq!(state.hard_state, hard_state(1, 0, 1));
        assert_eq!((s.first_index(), s.last_index()), (2, 1), "{phase}");
        assert_eq!(s.term(1), Ok(1));
        let snap = s.snapshot_now().unwrap();
        assert_eq!(snap.get_metadata().index, 1);
        assert_eq!(snap.get_metadata().get_conf_state(), &voters(&[1]));
        assert!(snap.data.is_empty());
        let err = s.initialize(voters(&[1])).unwrap_err();
        assert!(
            matches!(err, StorageError::AlreadyInitialized { .. }),
            "{phase}: {err:?}"
        );
        assert!(
            err.to_string().contains(&f.path().display().to_string()),
            "{err}"
        );
        f.reopen();
    }

    // Any raft state at all makes it non-empty.
    let g = Fixture::new(0);
    g.s().persist(&[], Some(&hard_state(1, 0, 0))).unwrap();
    assert!(!g.s().is_empty());
    assert!(matches!(
        g.s().initialize(voters(&[1])),
        Err(StorageError::AlreadyInitialized { .. })
    ));
}

#[test]
fn t33_set_commit_rides_on_the_next_transaction() {
    let mut f = Fixture::new(DEFAULT_CACHE_BYTES);
    let ents: Vec<Entry> = (1..=6).map(|i| new_entry(i, 1)).collect();
    f.s()
        .persist(&ents[..5], Some(&hard_state(1, 1, 2)))
        .unwrap();
    f.s().set_commit(4);
    f.s().set_commit(3); // never lowers it
    assert_eq!(f.s().hard_state(), hard_state(1, 1, 4));
    assert_eq!(f.s().initial_state().unwrap().hard_state.commit, 4);
    // The next write (here entries only, no hard state from raft) carries the commit index.
    f.s().persist(&ents[5..], None).unwrap();
    f.reopen();
    assert_eq!(f.s().hard_state(), hard_state(1, 1, 4));

    // Any write does, e.g. a conf state change; a hard state given to persist wins over it.
    f.s().set_commit(5);
    f.s().set_conf_state(voters(&[1, 2])).unwrap();
    f.s().set_commit(6);
    f.s().persist(&[], Some(&hard_state(2, 0, 6))).unwrap();
    f.reopen();
    assert_eq!(f.s().hard_state(), hard_state(2, 0, 6));
    assert_eq!(f.s().conf_state(), voters(&[1, 2]));
}

// ---- corruption --------------------------------------------------------------------------------

#[test]
fn t40_garbage_file_is_corrupted_not_empty() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("raft.redb");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = RaftStorage::open(&path).unwrap_err();
    assert_corrupted(err, &path, "refusing to start");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "open must not rewrite a bad file"
    );

    // A short file too.
    std::fs::write(&path, b"not a database").unwrap();
    let err = RaftStorage::open(&path).unwrap_err();
    assert_corrupted(err, &path, "corrupted");
}

#[test]
fn t41_undecodable_metadata_is_an_error() {
    for (table, key) in [
        (META, KEY_HARD_STATE),
        (META, KEY_CONF_STATE),
        (META, KEY_TRUNCATED),
        (SNAPSHOT, KEY_SNAP_META),
    ] {
        let mut f = Fixture::new(0);
        f.s().initialize(voters(&[1])).unwrap();
        f.close();
        tamper(&f.path(), |txn| {
            txn.open_table(table)
                .unwrap()
                .insert(key, b"\xff\xff\xff".as_slice())
                .unwrap();
        });
        let err = RaftStorage::open(&f.path()).unwrap_err();
        assert_corrupted(err, &f.path(), key);
    }
}

#[test]
fn t42_undecodable_entry_is_an_error() {
    let mut f = Fixture::new(0);
    let ents: Vec<Entry> = (1..=10).map(|i| entry_with_data(i, 1, 5)).collect();
    f.s().persist(&ents, None).unwrap();
    f.close();
    tamper(&f.path(), |txn| {
        txn.open_table(ENTRIES)
            .unwrap()
            .insert(3, b"\xff\xff\xff".as_slice())
            .unwrap();
    });

    // With the whole tail cached, open decodes it and refuses.
    let err = RaftStorage::open(&f.path()).unwrap_err();
    assert_corrupted(err, &f.path(), "log entry 3");

    // Without a cache, old entries are decoded when read: the read fails, never skips.
    f.reopen();
    let s = f.s();
    assert_eq!(s.entries(4, 11, None, ctx()).unwrap(), ents[3..].to_vec());
    let err = s.entries(1, 11, None, ctx()).unwrap_err();
    assert!(
        err.to_string().contains("log entry 3 does not decode"),
        "{err}"
    );
    assert!(s.term(3).is_err());
    assert!(!matches!(
        s.term(3),
        Err(RaftError::Store(RaftStorageError::Compacted))
    ));
}

#[test]
fn t43_log_with_a_hole_is_corrupted() {
    let mut f = Fixture::new(DEFAULT_CACHE_BYTES);
    f.s()
        .persist(&(1..=5).map(|i| new_entry(i, 1)).collect::<Vec<_>>(), None)
        .unwrap();
    f.close();
    tamper(&f.path(), |txn| {
        txn.open_table(ENTRIES).unwrap().remove(3).unwrap();
    });
    let err = RaftStorage::open(&f.path()).unwrap_err();
    assert_corrupted(err, &f.path(), "holes");

    // A commit index past the end of the log is refused too.
    tamper(&f.path(), |txn| {
        txn.open_table(ENTRIES)
            .unwrap()
            .insert(3, new_entry(3, 1).write_to_bytes().unwrap().as_slice())
            .unwrap();
        let hs = hard_state(1, 0, 9).write_to_bytes().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(KEY_HARD_STATE, hs.as_slice())
            .unwrap();
    });
    let err = RaftStorage::open(&f.path()).unwrap_err();
    assert_corrupted(err, &f.path(), "commits index 9");
}

#[test]
fn t44_second_open_is_refused_while_in_use() {
    let f = Fixture::new(0);
    let err = RaftStorage::open(&f.path()).unwrap_err();
    assert!(matches!(err, StorageError::InUse { .. }), "{err:?}");
}

// ---- cache ----------------------------------------------------------------------------------

/// Applies the same history to a storage with each cache budget; every read must agree.
#[test]
fn t50_cache_and_disk_return_identical_entries() {
    let fixtures: Vec<Fixture> = [DEFAULT_CACHE_BYTES, 0, 10, 200, 1000]
        .into_iter()
        .map(Fixture::new)
        .collect();
    let mut term = 1;
    let mut rounds = 0;
    let history = |s: &RaftStorage, term: u64, rounds: u64| {
        let last = s.last_index();
        // Every third round overwrites a suffix, as a new leader would.
        let start = if rounds % 3 == 2 {
            last.saturating_sub(4).max(s.first_index())
        } else {
            last + 1
        };
        let ents: Vec<Entry> = (start..start + 12)
            .map(|i| entry_with_data(i, term, ((i * 7) % 40) as usize))
            .collect();
        s.persist(&ents, Some(&hard_state(term, 1, start + 6)))
            .unwrap();
        if rounds % 4 == 3 {
            s.create_snapshot(start + 6, voters(&[1]), vec![rounds as u8; 16], 8)
                .unwrap();
        }
    };
    while rounds < 12 {
        if rounds % 3 == 2 {
            term += 1;
        }
        for f in &fixtures {
            history(f.s(), term, rounds);
        }
        rounds += 1;
    }
    let reference = fixtures[0].s();
    let (first, last) = (reference.first_index(), reference.last_index());
    assert!(
        last > 80 && first > 1,
        "the history should have grown and compacted the log"
    );
    for f in &fixtures[1..] {
        let s = f.s();
        assert_eq!(
            (s.first_index(), s.last_index()),
            (first, last),
            "limit {}",
            f.limit
        );
        for lo in first..=last {
            assert_eq!(
                s.term(lo),
                reference.term(lo),
                "limit {} term {lo}",
                f.limit
            );
            for hi in [lo + 1, (lo + 5).min(last + 1), last + 1] {
                for max in [0, 60, 300, u64::MAX] {
                    assert_eq!(
                        s.entries(lo, hi, max, ctx()),
                        reference.entries(lo, hi, max, ctx()),
                        "limit {} [{lo},{hi}) max {max}",
                        f.limit
                    );
                }
            }
        }
        assert_eq!(s.term(first - 1), reference.term(first - 1));
        assert_eq!(s.snapshot_now().unwrap(), reference.snapshot_now().unwrap());
    }
}

#[test]
fn t51_cache_stays_within_its_budget() {
    let f = Fixture::new(1000);
    let ents: Vec<Entry> = (1..=100).map(|i| entry_with_data(i, 1, 90)).collect();
    f.s().persist(&ents, None).unwrap();
    let core = f.s().read_core();
    assert!(
        core.cache.bytes <= 1000,
        "cache holds {} bytes",
        core.cache.bytes
    );
    assert!(
        core.cache.entries.len() >= 9,
        "cache should hold the tail: {}",
        core.cache.entries.len()
    );
    assert_eq!(core.cache.entries.back().map(|(e, _)| e.index), Some(100));
    let cached: u64 = core.cache.entries.iter().map(|(e, _)| size_of(e)).sum();
    assert_eq!(
        cached, core.cache.bytes,
        "byte accounting matches the entries"
    );
}

/// A log holding the first 10 of the 20 entries returned (term 1).
fn half_written(limit: u64) -> (Fixture, Vec<Entry>) {
    let f = Fixture::new(limit);
    let ents: Vec<Entry> = (1..=20).map(|i| entry_with_data(i, 1, 30)).collect();
    f.s()
        .persist(&ents[..10], Some(&hard_state(1, 1, 0)))
        .unwrap();
    (f, ents)
}

#[test]
fn t52_staged_entries_are_readable_at_once_and_durable_once_written() {
    for limit in LIMITS {
        let (mut f, ents) = half_written(limit);

        // Two writes staged (the leader's log writer lags behind): raft reads them back at
        // once, from memory even with no cache budget.
        let a = f.s().stage(&ents[10..15], None).unwrap().unwrap();
        let b = f
            .s()
            .stage(&ents[15..], Some(&hard_state(1, 1, 12)))
            .unwrap()
            .unwrap();
        assert_eq!(f.s().last_index(), 20);
        assert_eq!(all_entries(f.s()), ents, "limit {limit}");
        // What would replace the log waits for the writer; writes of durable state do not.
        let err = f
            .s()
            .apply_snapshot(new_snapshot(30, 1, vec![1]))
            .unwrap_err();
        assert!(err.to_string().contains("staged write"), "{err}");
        let err = f.s().stage(&[new_entry(12, 2)], None).unwrap_err();
        assert!(err.to_string().contains("still being written"), "{err}");
        f.s().set_conf_state(voters(&[1])).unwrap();

        if limit == 0 {
            // A group commit: both in one transaction.
            f.s().write_staged(vec![a, b]).unwrap();
        } else {
            f.s().write_staged(vec![a]).unwrap();
            assert_eq!(all_entries(f.s()), ents, "limit {limit}: after one write");
            f.s().write_staged(vec![b]).unwrap();
        }
        assert_eq!(all_entries(f.s()), ents, "limit {limit}: after both writes");
        f.reopen();
        assert_eq!(all_entries(f.s()), ents, "limit {limit}: after reopening");
        assert_eq!(f.s().hard_state(), hard_state(1, 1, 12));
        assert_eq!(f.s().conf_state(), voters(&[1]));
    }
}

#[test]
fn t53_a_crash_before_staged_writes_land_leaves_a_log_that_restarts() {
    for limit in LIMITS {
        let (mut f, ents) = half_written(limit);
        // The commit index moves past the durable log, carried by a staged write (a majority
        // of followers has its entries), then the node's own snapshot is written meanwhile.
        let staged = f
            .s()
            .stage(&ents[10..], Some(&hard_state(1, 1, 18)))
            .unwrap()
            .unwrap();
        f.s()
            .create_snapshot(8, voters(&[1]), b"state at 8".to_vec(), 2)
            .unwrap();
        drop(staged); // the crash: the staged write never lands
        f.reopen();
        assert_eq!(f.s().last_index(), 10, "limit {limit}");
        assert_eq!(
            f.s().hard_state(),
            hard_state(1, 1, 10),
            "limit {limit}: the commit index on disk stops at the durable log"
        );
        assert_eq!(f.s().snapshot_now().unwrap().get_metadata().index, 8);
        assert_eq!(all_entries(f.s()), ents[5..10].to_vec(), "limit {limit}");
    }
}

// ---- raft-rs on top ----------------------------------------------------------------------------

/// Drives a one-member `RawNode` over the storage through election and proposals, restarts it
/// from the same file, and checks raft resumes from what was persisted.
#[test]
fn t60_drives_a_raw_node_across_restart() {
    use raft::{Config, RawNode};

    fn config() -> Config {
        let cfg = Config {
            id: 1,
            ..Default::default()
        };
        cfg.validate().unwrap();
        cfg
    }

    fn drain(node: &mut RawNode<RaftStorage>, applied: &mut Vec<Vec<u8>>) {
        while node.has_ready() {
            let mut ready = node.ready();
            if !ready.snapshot().is_empty() {
                node.store()
                    .apply_snapshot(ready.snapshot().clone())
                    .unwrap();
            }
            let committed = ready.take_committed_entries();
            applied.extend(
                committed
                    .iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| e.data.to_vec()),
            );
            node.store().persist(ready.entries(), ready.hs()).unwrap();
            let mut light = node.advance(ready);
            if let Some(commit) = light.commit_index() {
                node.store().set_commit(commit);
            }
            let committed = light.take_committed_entries();
            applied.extend(
                committed
                    .iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| e.data.to_vec()),
            );
            node.advance_apply();
        }
    }

    let logger = crate::raft::logger::tracing_logger();
    let mut f = Fixture::new(DEFAULT_CACHE_BYTES);
    f.s().initialize(voters(&[1])).unwrap();
    let mut applied = Vec::new();
    {
        let mut node = RawNode::new(&config(), f.s().clone(), &logger).unwrap();
        node.campaign().unwrap();
        drain(&mut node, &mut applied);
        assert_eq!(node.raft.state, raft::StateRole::Leader);
        for i in 0..5u8 {
            node.propose(vec![], vec![b'a' + i]).unwrap();
            drain(&mut node, &mut applied);
        }
    }
    assert_eq!(
        applied,
        vec![
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
            b"d".to_vec(),
            b"e".to_vec()
        ]
    );
    let (hs, last) = (f.s().hard_state(), f.s().last_index());
    assert_eq!(hs.commit, last, "everything proposed is committed");

    // Restart as the driver does: state machine from the snapshot (index 1), then raft replays
    // what the disk says is committed; the commit index of the last LightReady may be lost.
    f.reopen();
    let on_disk = f.s().hard_state();
    assert_eq!((on_disk.term, on_disk.vote), (hs.term, hs.vote));
    assert!(
        on_disk.commit >= last - 1,
        "commit {} lags by more than one",
        on_disk.commit
    );
    let mut cfg = config();
    cfg.applied = f.s().snapshot_now().unwrap().get_metadata().index;
    let mut node = RawNode::new(&cfg, f.s().clone(), &logger).unwrap();
    assert_eq!(node.raft.term, hs.term);
    assert_eq!(node.raft.raft_log.last_index(), last);
    assert_eq!(node.raft.raft_log.committed, on_disk.commit);
    let mut replayed = Vec::new();
    drain(&mut node, &mut replayed);
    node.campaign().unwrap();
    drain(&mut node, &mut replayed);
    node.propose(vec![], b"f".to_vec()).unwrap();
    drain(&mut node, &mut replayed);
    let want: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d", b"e", b"f"]
        .iter()
        .map(|d| d.to_vec())
        .collect();
    assert_eq!(replayed, want, "nothing committed is lost or applied twice");
    assert!(f.s().hard_state().term > hs.term);
}

#[test]
fn t60_sealed_storage_encrypts_at_rest_and_needs_its_key() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("raft.redb");
    let key = crate::keymanager::DataKey::generate();
    let marker = b"plaintext-marker-0123456789";
    let mut e = new_entry(1, 1);
    e.data = marker.to_vec().into();
    {
        let s = RaftStorage::open_sealed(&path, key.clone()).unwrap();
        s.persist(std::slice::from_ref(&e), Some(&hard_state(1, 1, 1)))
            .unwrap();
        s.create_snapshot(1, voters(&[1]), marker.to_vec(), 10)
            .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(marker.len()).any(|w| w == marker),
        "the entry or the snapshot is readable on disk"
    );

    let s = RaftStorage::open_sealed(&path, key).unwrap();
    assert_eq!(all_entries(&s), vec![e]);
    assert_eq!(&s.snapshot_now().unwrap().data[..], marker);
    drop(s);

    let err = RaftStorage::open_sealed(&path, crate::keymanager::DataKey::generate()).unwrap_err();
    assert_corrupted(
        err,
        &path,
        "does not decrypt with this manager's raft data key",
    );
    let err = RaftStorage::open(&path).unwrap_err();
    assert_corrupted(err, &path, "does not decode");
}
