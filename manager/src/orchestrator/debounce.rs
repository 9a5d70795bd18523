//! [`Debounce`]: turns a burst of store events into one reconcile.
//!
//! The first event of a burst arms a deadline `window` later; later events of the burst do
//! not move it (so a steady stream of events cannot starve the reconcile). When the deadline
//! passes the actor reconciles everything that became dirty in the meantime.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// A one-shot deadline, armed by the first event after the last firing.
#[derive(Debug)]
pub(crate) struct Debounce {
    window: Duration,
    deadline: Option<Instant>,
}

impl Debounce {
    /// A disarmed debounce with the given window.
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            deadline: None,
        }
    }

    /// Arms the deadline `window` from now, unless it is armed already.
    pub(crate) fn arm(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.window);
        }
    }

    /// Arms the deadline at `at`, or earlier if it is armed for earlier.
    pub(crate) fn arm_at(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// Fires now: the next wait returns at once.
    pub(crate) fn fire_now(&mut self) {
        self.deadline = Some(Instant::now());
    }

    /// The armed deadline, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Disarms; call when the deadline fired.
    pub(crate) fn clear(&mut self) {
        self.deadline = None;
    }
}

/// Sleeps until `deadline`, or forever when there is none (a disarmed `select!` branch).
pub(crate) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}
