//! [`BlobSink`]: where the bytes of artifacts go when their raft entries apply.
//!
//! Blob chunks travel through raft like any store write, one chunk per entry, but they are
//! not kept in memory: [`MemoryStore::apply`](super::MemoryStore::apply) hands them, in log
//! order, to the sink (the manager's durable blob store), together with the artifact
//! lifecycle the same entries caused (an artifact created → seal its bytes; removed →
//! delete them).

use swarm_proto::{BlobChunk, StoreActionKind, StoreBatch, store_object::Object as O};

use super::apply::ApplyOutcome;
use super::tables::Object;
use super::watch::Event;

/// One thing the blob store must do, in log order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOp<'a> {
    /// Store these bytes of a blob.
    Chunk(&'a BlobChunk),
    /// The artifact with this digest and size was committed (or renamed): verify the bytes
    /// and mark them complete, unless they already are.
    Seal { digest: &'a str, size: u64 },
    /// The artifact was removed: delete its bytes.
    Delete { digest: &'a str },
}

/// The manager's blob store, as the store's apply sees it.
///
/// Rules for implementations:
/// - `apply` is called on the raft driver's thread, before the entries' new view is
///   published, so an artifact is visible only once its bytes are sealed. It must be
///   durable (fsync'd) before it returns: a raft snapshot may compact the entries away.
/// - It must be idempotent: after a restart raft replays the entries after the last
///   snapshot, so the same chunks, seals and deletes arrive again, in the same order.
/// - It must not fail the apply: a replica that cannot store bytes still applies the
///   metadata (every replica must reach the same store state) and reports the problem.
pub trait BlobSink: Send + Sync + 'static {
    fn apply(&self, ops: &[BlobOp<'_>]);
}

/// The blob operations of one applied entry: its chunks (none when the entry was an atomic
/// batch that was rejected), then the seals and deletes its events imply.
pub(super) fn ops_of<'a>(
    batch: &'a StoreBatch,
    outcome: &ApplyOutcome,
    events: &'a [Event],
    out: &mut Vec<BlobOp<'a>>,
) {
    let rejected_whole = batch.atomic && !outcome.is_clean();
    for action in batch.actions.iter().filter(|_| !rejected_whole) {
        if action.kind == StoreActionKind::StoreCreate as i32
            && let Some(O::BlobChunk(c)) = action.object.as_ref().and_then(|o| o.object.as_ref())
        {
            out.push(BlobOp::Chunk(c));
        }
    }
    for event in events {
        match event {
            // An update seals too: a manager that lacked the bytes (it joined through a
            // snapshot) gets them when they are pushed again.
            Event::Created(Object::Artifact(a))
            | Event::Updated {
                new: Object::Artifact(a),
                ..
            } => out.push(BlobOp::Seal {
                digest: &a.digest,
                size: a.size,
            }),
            Event::Removed(Object::Artifact(a)) => out.push(BlobOp::Delete { digest: &a.digest }),
            _ => {}
        }
    }
}
