//! Keeps this manager's [`DekFile`] wrapped by the swarm's current unlock key: when the
//! Cluster object's key changes (autolock turned on or off, `unlock-key --rotate`), the DEK
//! is stored again, wrapped by the new key or plain. Every manager runs this (not only the
//! leader): each one guards its own disk.

use tokio_util::sync::CancellationToken;

use super::{DataKey, DekFile, UnlockKey};
use crate::store::{EventBatch, Object, Store, Tables, WatchFilter};

/// Runs until `shutdown`.
pub async fn run(store: Store, file: DekFile, dek: DataKey, shutdown: CancellationToken) {
    let mut stored: Option<String> = None;
    loop {
        let (view, mut watcher) = store.watch(WatchFilter::All);
        sync(&view, &file, &dek, &mut stored);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                batch = watcher.recv() => match batch {
                    Some(b) if touches_cluster(&b) => sync(&store.view(), &file, &dek, &mut stored),
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
fn sync(view: &Tables, file: &DekFile, dek: &DataKey, stored: &mut Option<String>) {
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
                tracing::error!(error = %e, "the cluster's unlock key is damaged; the raft data key stays as it is");
                return;
            }
        },
    };
    match file.store(dek, key.as_ref()) {
        Ok(()) => {
            tracing::info!(
                locked = key.is_some(),
                "raft data key stored for the current unlock key"
            );
            *stored = Some(cluster.unlock_key.clone());
        }
        Err(e) => tracing::error!(error = %e, "storing the raft data key failed"),
    }
}
