//! The loop shared by the event-driven reconcilers (allocator, replicated, global, reaper).
//!
//! ```text
//!            ┌──────────── shutdown ─────────────▶ exit
//!  watch ───▶│ observe(batch): mark dirty, arm debounce
//!            │ channel closed (snapshot restore): re-watch, reset(view)
//!  deadline ▶│ plan(view) ──▶ write_batched ──ok──▶ written()   (err: retry later)
//! ```
//!
//! A reconciler owns its dirty set; it decides with a pure `plan` over a fresh view, and
//! this loop does the I/O. Planning reads the view taken just before; the store applies
//! patches only when they still move a task forward, so a plan made on a slightly stale
//! view is safe, and whatever it missed comes back as new events.

use std::time::Duration;

use swarm_proto::StoreAction;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::batch::write_batched;
use super::debounce::{Debounce, until};
use crate::store::{EventBatch, Store, Tables, WatchFilter};

/// How long to wait before retrying after a failed write.
const RETRY: Duration = Duration::from_millis(500);

/// One event-driven reconciler.
pub(crate) trait Reconciler: Send {
    /// Name for logs.
    const NAME: &'static str;
    /// How long the events of a burst are collected before one reconcile.
    const DEBOUNCE: Duration;

    /// Everything in `view` needs a look: at start, and after the watch was reset.
    fn reset(&mut self, view: &Tables);
    /// Notes what `batch` makes dirty.
    fn observe(&mut self, batch: &EventBatch);
    /// True when something is dirty.
    fn is_dirty(&self) -> bool;
    /// True when so much is dirty that the reconcile should not wait for the debounce.
    fn is_urgent(&self) -> bool {
        false
    }
    /// The actions that reconcile everything dirty, from `view`. Must not forget what is
    /// dirty: the write may fail.
    fn plan(&mut self, view: &Tables) -> Vec<StoreAction>;
    /// The last plan was written: forget what it covered.
    fn written(&mut self);
}

/// Runs `r` until `shutdown` is cancelled.
pub(crate) async fn run<R: Reconciler>(store: Store, shutdown: CancellationToken, mut r: R) {
    let (view, mut watcher) = store.watch(WatchFilter::All);
    r.reset(&view);
    drop(view);
    let mut debounce = Debounce::new(R::DEBOUNCE);
    if r.is_dirty() {
        debounce.fire_now();
    }
    tracing::debug!(component = R::NAME, "started");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            batch = watcher.recv() => {
                match batch {
                    Some(batch) => r.observe(&batch),
                    None => {
                        tracing::debug!(component = R::NAME, "store restored; starting over");
                        let (view, w) = store.watch(WatchFilter::All);
                        watcher = w;
                        r.reset(&view);
                    }
                }
                if r.is_urgent() {
                    debounce.fire_now();
                } else if r.is_dirty() {
                    debounce.arm();
                }
            },
            _ = until(debounce.deadline()) => {
                debounce.clear();
                let actions = r.plan(&store.view());
                match write_batched(&store, actions, R::NAME).await {
                    Ok(_) => r.written(),
                    Err(e) => {
                        tracing::warn!(component = R::NAME, error = %e, "write failed; will retry");
                        debounce.arm_at(Instant::now() + RETRY);
                    }
                }
            }
        }
    }
    tracing::debug!(component = R::NAME, "stopped");
}
