//! Writing many actions as store batches of bounded size.

use swarm_proto::StoreAction;

use crate::store::{Store, StoreError};

/// The most actions in one store write (one raft entry).
pub const MAX_BATCH: usize = 2_000;

/// How many batches [`write_batched`] keeps proposed at once. Raft orders them; keeping
/// several in flight lets one Ready persist and apply them together instead of paying a
/// commit round trip per batch.
pub const IN_FLIGHT: usize = 32;

/// Writes `actions` in batches of at most [`MAX_BATCH`], each non-atomic: an action that
/// conflicts (a patch that no longer moves its task forward, a task that is gone) is skipped
/// and the others apply. Up to [`IN_FLIGHT`] batches are proposed at once, in order (the
/// batches are independent: no action depends on another batch's outcome). Returns how many
/// applied, or the first failed write (not the leader, proposal dropped); batches already
/// proposed may still have applied then, which the caller's next plan sees.
pub async fn write_batched(
    store: &Store,
    actions: Vec<StoreAction>,
    who: &'static str,
) -> Result<usize, StoreError> {
    use futures::StreamExt as _;

    let total = actions.len();
    let mut chunks: Vec<Vec<StoreAction>> = Vec::with_capacity(total.div_ceil(MAX_BATCH));
    let mut it = actions.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(MAX_BATCH).collect());
    }
    let mut writes = futures::stream::iter(chunks)
        .map(|chunk| async move {
            let n = chunk.len();
            store.write(chunk).await.map(|outcome| (n, outcome))
        })
        .buffered(IN_FLIGHT);
    let mut applied = 0;
    while let Some(result) = writes.next().await {
        let (n, outcome) = result?;
        if !outcome.rejected.is_empty() {
            tracing::debug!(
                component = who,
                rejected = outcome.rejected.len(),
                first = %outcome.rejected[0].1,
                "store actions skipped (the state moved on)"
            );
        }
        applied += n - outcome.rejected.len();
    }
    if total > 0 {
        tracing::debug!(component = who, applied, total, "wrote store actions");
    }
    Ok(applied)
}

/// Writes each group of actions atomically (all or nothing), packing many groups into one
/// write while none conflicts; a write that conflicts is retried group by group, so one
/// stale decision does not hold back the others. Returns the indexes of the groups that were
/// written, and the error that stopped the writing (not the leader, ...), if any.
pub async fn write_atomic_groups(
    store: &Store,
    groups: &[Vec<StoreAction>],
    who: &'static str,
) -> (Vec<usize>, Option<StoreError>) {
    let mut applied = Vec::with_capacity(groups.len());
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut size = 0;
    for (i, g) in groups.iter().enumerate() {
        match chunks.last_mut() {
            Some(last) if size + g.len() <= MAX_BATCH => {
                last.end = i + 1;
                size += g.len();
            }
            _ => {
                chunks.push(i..i + 1);
                size = g.len();
            }
        }
    }
    for chunk in chunks {
        let actions = groups[chunk.clone()].iter().flatten().cloned().collect();
        match store.write_atomic(actions).await {
            Ok(_) => applied.extend(chunk),
            Err(StoreError::Conflict(c)) => {
                tracing::debug!(component = who, conflict = %c, "batch conflicted; writing group by group");
                for i in chunk {
                    match store.write_atomic(groups[i].clone()).await {
                        Ok(_) => applied.push(i),
                        Err(StoreError::Conflict(c)) => {
                            tracing::debug!(component = who, conflict = %c, "skipped: the state moved on");
                        }
                        Err(e) => return (applied, Some(e)),
                    }
                }
            }
            Err(e) => return (applied, Some(e)),
        }
    }
    (applied, None)
}
