//! Keeps this manager's [`DekFile`] wrapped by the swarm's current unlock key: when the
//! Cluster object's key changes (autolock turned on or off, `unlock-key --rotate`), the DEK
//! is stored again, wrapped by the new key or plain, and the node key in `certificates/` is
//! sealed or unsealed with it ([`NodeKeyCodec`]). Every manager runs this (not only the
//! leader): each one guards its own disk.
//!
//! The two files are written in the order that keeps every crash recoverable: locking seals
//! the node key (with the still-plain DEK) before wrapping the DEK; unlocking stores the DEK
//! plain before unsealing the node key. The DEK opens the node key either way.

use std::sync::Arc;

use swarm_agent::certs::CertFiles;
use tokio_util::sync::CancellationToken;

use super::{DataKey, DekFile, NodeKeyCodec, UnlockKey};
use crate::store::{EventBatch, Object, Store, Tables, WatchFilter};

/// This manager's files that follow the unlock key.
pub struct Guarded {
    pub dek_file: DekFile,
    pub dek: DataKey,
    pub certs: CertFiles,
}

/// Runs until `shutdown`.
pub async fn run(store: Store, files: Guarded, shutdown: CancellationToken) {
    let mut stored: Option<String> = None;
    loop {
        let (view, mut watcher) = store.watch(WatchFilter::All);
        sync(&view, &files, &mut stored);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                batch = watcher.recv() => match batch {
                    Some(b) if touches_cluster(&b) => sync(&store.view(), &files, &mut stored),
                    Some(_) => {}
                    None => break,
                },
            }
        }
    }
}

/// Whether `batch` changed the Cluster object (the only one this watches; every write in the
/// swarm arrives here, so the others are skipped without taking a view).
fn touches_cluster(batch: &EventBatch) -> bool {
    batch
        .events
        .iter()
        .any(|e| matches!(e.object(), Object::Cluster(_)))
}

/// Rewraps if the cluster's unlock key differs from the one last stored.
fn sync(view: &Tables, files: &Guarded, stored: &mut Option<String>) {
    let Some(cluster) = view.the_cluster() else {
        return;
    };
    if stored.as_deref() == Some(cluster.unlock_key.as_str()) {
        return;
    }
    let key = match cluster.unlock_key.as_str() {
        "" => None,
        k => match UnlockKey::parse(k) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::error!(error = %e, "the cluster's unlock key is damaged; the raft data key and node key stay as they are");
                return;
            }
        },
    };
    match store(files, key.as_ref()) {
        Ok(()) => {
            tracing::info!(
                locked = key.is_some(),
                "raft data key and node key stored for the current unlock key"
            );
            *stored = Some(cluster.unlock_key.clone());
        }
        Err(e) => tracing::error!(error = %e, "storing the raft data key or node key failed"),
    }
}

/// Stores the DEK wrapped by `key` (plain without) and the node key sealed iff `key`, in the
/// crash-safe order (module docs).
fn store(files: &Guarded, key: Option<&UnlockKey>) -> Result<(), String> {
    let codec = Arc::new(NodeKeyCodec::new(files.dek.clone(), key.is_some()));
    let node_key = || {
        files
            .certs
            .protect(codec.clone())
            .map_err(|e| e.to_string())
    };
    let dek = || {
        files
            .dek_file
            .store(&files.dek, key)
            .map_err(|e| e.to_string())
    };
    if key.is_some() {
        node_key().and_then(|()| dek())
    } else {
        dek().and_then(|()| node_key())
    }
}
