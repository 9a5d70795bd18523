//! The driver on a real redb log: proposals apply, restarts restore snapshot + log.

use std::sync::Arc;
use std::time::Duration;

use raft::prelude::ConfState;
use swarm_proto::{Annotations, Cluster, ClusterSpec, RaftConfig, Service, ServiceSpec};
use tokio_util::sync::CancellationToken;

use crate::raft::storage::RaftStorage;
use crate::raft::transport::NoPeers;
use crate::raft::{RaftOptions, start};
use crate::store::{self, MemoryStore, Store};

fn service(i: usize) -> Service {
    Service {
        id: format!("s{i}"),
        spec: Some(ServiceSpec {
            annotations: Some(Annotations {
                name: format!("svc-{i}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Running {
    store: Store,
    token: CancellationToken,
    join: tokio::task::JoinHandle<Result<(), crate::raft::DriverError>>,
}

async fn boot(path: &std::path::Path, options: RaftOptions) -> Running {
    let storage = RaftStorage::open(path).expect("open raft db");
    if storage.is_empty() {
        storage
            .initialize(ConfState {
                voters: vec![options.id],
                ..Default::default()
            })
            .unwrap();
    }
    let memory = MemoryStore::new(Default::default());
    let token = CancellationToken::new();
    let (raft, join) = start(
        options,
        storage,
        memory.clone(),
        Arc::new(NoPeers),
        token.clone(),
    )
    .unwrap();
    raft.wait_leader(Duration::from_secs(5))
        .await
        .expect("a sole voter becomes leader");
    Running {
        store: Store::new(memory, Arc::new(raft)),
        token,
        join,
    }
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        self.join.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn t10_writes_apply_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let r = boot(&path, RaftOptions::new(7)).await;
    let index = r
        .store
        .write_atomic(vec![store::create(service(1))])
        .await
        .unwrap();
    assert_eq!(
        r.store
            .view()
            .service("s1")
            .unwrap()
            .meta
            .as_ref()
            .unwrap()
            .version,
        index
    );
    let err = r
        .store
        .write_atomic(vec![store::create(service(1))])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    r.stop().await;

    let r = boot(&path, RaftOptions::new(7)).await;
    let view = r.store.view();
    assert_eq!(
        view.service("s1").unwrap().meta.as_ref().unwrap().version,
        index,
        "restart lost or changed the committed write"
    );
    r.stop().await;
}

#[tokio::test]
async fn t20_snapshots_compact_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let mut options = RaftOptions::new(9);
    options.snapshot_interval = 10;
    options.keep_entries = 2;
    let r = boot(&path, options.clone()).await;
    // A snapshot is due after 10 entries (the next ones once 4× its size of log applied).
    for i in 0..80 {
        r.store
            .write_atomic(vec![store::create(service(i))])
            .await
            .unwrap();
    }
    r.stop().await;
    let storage = RaftStorage::open(&path).unwrap();
    let snap = storage.snapshot_now().unwrap();
    assert!(
        snap.get_metadata().index >= 10,
        "no snapshot taken: {:?}",
        snap.get_metadata()
    );
    assert!(
        storage.first_index() > 10,
        "log not compacted: first index {}",
        storage.first_index()
    );
    drop(storage);

    let r = boot(&path, options).await;
    // The last entries apply again once the restarted leader commits an entry of its own
    // term (the commit index on disk may lag behind the log, as raft allows).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while r.store.view().services().count() < 80 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        r.store.view().services().count(),
        80,
        "snapshot + log replay lost services"
    );
    r.stop().await;
}

#[tokio::test]
async fn t25_the_cluster_spec_sets_the_snapshot_interval_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let r = boot(&path, RaftOptions::new(5)).await;
    let cluster = Cluster {
        id: "c".into(),
        spec: Some(ClusterSpec {
            raft: Some(RaftConfig {
                snapshot_interval: 3,
                log_entries_for_slow_followers: 0,
                ..RaftOptions::new(5).to_spec()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let set = r
        .store
        .write_atomic(vec![store::create(cluster)])
        .await
        .unwrap();
    for i in 0..4 {
        r.store
            .write_atomic(vec![store::create(service(i))])
            .await
            .unwrap();
    }
    r.stop().await;
    let storage = RaftStorage::open(&path).unwrap();
    let snap = storage.snapshot_now().unwrap().get_metadata().index;
    assert!(
        snap >= set,
        "a snapshot is due from the entry that sets an interval of 3 ({set}), not at {snap}"
    );
    assert_eq!(
        storage.first_index(),
        snap,
        "no entry kept before the snapshot"
    );
}

#[tokio::test]
async fn t30_concurrent_proposals_each_get_their_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let r = boot(&dir.path().join("raft.redb"), RaftOptions::new(3)).await;
    let mut joins = Vec::new();
    for i in 0..200 {
        let s = r.store.clone();
        joins.push(tokio::spawn(async move {
            s.write_atomic(vec![store::create(service(i))]).await
        }));
    }
    // Proposals of one round share an entry (raft/coalesce.rs): each write is told the
    // index it applied at, which is its object's version.
    let mut indexes = Vec::new();
    for (i, j) in joins.into_iter().enumerate() {
        let index = j.await.unwrap().unwrap();
        let view = r.store.view();
        let stored = view
            .service(&format!("s{i}"))
            .expect("an acknowledged write is stored");
        assert_eq!(stored.meta.as_ref().unwrap().version, index, "write {i}");
        indexes.push(index);
    }
    assert_eq!(r.store.view().services().count(), 200);
    indexes.sort();
    indexes.dedup();
    assert!(
        indexes.len() < 200,
        "concurrent proposals were not coalesced: {} entries for 200 writes",
        indexes.len()
    );
    r.stop().await;
}
