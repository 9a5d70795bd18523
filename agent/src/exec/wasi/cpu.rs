//! CPU accounting and limits of one guest.
//!
//! A guest runs on its own tokio task; [`Metered`] wraps that task's future and adds the time
//! spent inside each `poll` to a [`CpuAccount`]. That is the time the guest (and host calls
//! made for it that did not block) kept a worker thread busy: its CPU time, give or take OS
//! preemption. Time spent waiting (a guest sleeping in `poll_oneoff`) is not counted.
//!
//! At every epoch deadline (one epoch tick of guest execution) the store calls
//! [`CpuGovernor::on_epoch`], which decides:
//! - `ulimit cpu=N`: once N seconds were used, trap with [`CpuLimitExceeded`] (RLIMIT_CPU);
//! - `nano_cpus`: CFS-style quota: within each `period`, the guest may use
//!   `share × period`; once it has, it sleeps until the period ends;
//! - otherwise yield to tokio, so a guest in an infinite loop cannot starve the others.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

/// CPU time used by one guest, shared by its [`Metered`] future and its [`CpuGovernor`].
#[derive(Debug)]
pub(crate) struct CpuAccount {
    base: Instant,
    /// Nanoseconds used in finished polls.
    used_ns: AtomicU64,
    /// When the current poll started (ns since `base`, plus 1), 0 when not polling.
    poll_start: AtomicU64,
}

impl CpuAccount {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            used_ns: AtomicU64::new(0),
            poll_start: AtomicU64::new(0),
        })
    }

    fn since_base(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// CPU time used up to `now`, including the poll running now.
    pub(crate) fn used(&self, now: Instant) -> Duration {
        let mut ns = self.used_ns.load(Ordering::Relaxed);
        let start = self.poll_start.load(Ordering::Relaxed);
        if start > 0 {
            ns += self.since_base(now).saturating_sub(start - 1);
        }
        Duration::from_nanos(ns)
    }
}

/// A future whose poll time is added to a [`CpuAccount`].
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    account: Arc<CpuAccount>,
}

impl<F> Metered<F> {
    pub(crate) fn new(inner: F, account: Arc<CpuAccount>) -> Self {
        Self {
            inner: Box::pin(inner),
            account,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let account = Arc::clone(&self.account);
        let start = account.since_base(Instant::now());
        account.poll_start.store(start + 1, Ordering::Relaxed);
        let out = self.inner.as_mut().poll(cx);
        let end = account.since_base(Instant::now());
        account.poll_start.store(0, Ordering::Relaxed);
        account
            .used_ns
            .fetch_add(end.saturating_sub(start), Ordering::Relaxed);
        out
    }
}

/// The guest used up its `cpu` ulimit; the trap that ends it carries this error.
#[derive(Debug, thiserror::Error)]
#[error("cpu limit of {seconds} s exceeded")]
pub(crate) struct CpuLimitExceeded {
    pub(crate) seconds: u64,
}

/// What to do at an epoch deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Yield to tokio and go on.
    Yield,
    /// Quota used up: sleep this long, then go on.
    Throttle(Duration),
    /// The `cpu` ulimit is used up.
    Exceeded,
}

/// Per-guest CPU policy, called at each epoch deadline.
#[derive(Debug)]
pub(crate) struct CpuGovernor {
    account: Arc<CpuAccount>,
    /// Fraction of one CPU (`nano_cpus / 1e9`), `None` = unlimited.
    share: Option<f64>,
    period: Duration,
    /// `ulimit cpu` in seconds.
    limit_secs: Option<u64>,
    window_start: Option<Instant>,
    window_used_at_start: Duration,
}

impl CpuGovernor {
    pub(crate) fn new(
        account: Arc<CpuAccount>,
        nano_cpus: i64,
        period: Duration,
        limit_secs: Option<u64>,
    ) -> Self {
        Self {
            account,
            share: (nano_cpus > 0).then(|| nano_cpus as f64 / 1e9),
            period,
            limit_secs,
            window_start: None,
            window_used_at_start: Duration::ZERO,
        }
    }

    /// The store's epoch deadline callback.
    pub(crate) fn on_epoch(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let now = Instant::now();
        let used = self.account.used(now);
        Ok(match self.decide(now, used) {
            Decision::Yield => UpdateDeadline::Yield(1),
            Decision::Throttle(d) => {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(d)))
            }
            Decision::Exceeded => {
                return Err(CpuLimitExceeded {
                    seconds: self.limit_secs.unwrap_or_default(),
                }
                .into());
            }
        })
    }

    /// The pure decision for a guest that has used `used` CPU time by `now`.
    pub(crate) fn decide(&mut self, now: Instant, used: Duration) -> Decision {
        if let Some(secs) = self.limit_secs
            && used >= Duration::from_secs(secs)
        {
            return Decision::Exceeded;
        }
        let Some(share) = self.share else {
            return Decision::Yield;
        };
        let start = match self.window_start {
            Some(s) if now.saturating_duration_since(s) < self.period => s,
            _ => {
                self.window_start = Some(now);
                self.window_used_at_start = used;
                now
            }
        };
        let quota = self.period.mul_f64(share.min(1.0));
        if used.saturating_sub(self.window_used_at_start) < quota {
            return Decision::Yield;
        }
        // Quota spent: sleep out the rest of the period; the next period starts after it.
        let wake = start + self.period;
        self.window_start = Some(wake);
        self.window_used_at_start = used;
        Decision::Throttle(wake.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn governor(nano_cpus: i64, limit: Option<u64>) -> CpuGovernor {
        CpuGovernor::new(
            CpuAccount::new(),
            nano_cpus,
            Duration::from_millis(100),
            limit,
        )
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unlimited_guests_just_yield() {
        let mut g = governor(0, None);
        let t0 = Instant::now();
        assert_eq!(g.decide(t0, 10 * MS), Decision::Yield);
        assert_eq!(g.decide(t0 + 1000 * MS, 1000 * MS), Decision::Yield);
    }

    #[test]
    fn quota_throttles_until_the_period_ends() {
        let mut g = governor(250_000_000, None); // a quarter CPU: 25 ms per 100 ms
        let t0 = Instant::now();
        assert_eq!(g.decide(t0, Duration::ZERO), Decision::Yield);
        assert_eq!(g.decide(t0 + 10 * MS, 10 * MS), Decision::Yield);
        assert_eq!(g.decide(t0 + 25 * MS, 25 * MS), Decision::Throttle(75 * MS));
        // After the sleep a new period starts with a fresh quota.
        assert_eq!(g.decide(t0 + 100 * MS, 25 * MS), Decision::Yield);
        assert_eq!(g.decide(t0 + 120 * MS, 45 * MS), Decision::Yield);
        assert_eq!(
            g.decide(t0 + 126 * MS, 51 * MS),
            Decision::Throttle(74 * MS)
        );
    }

    #[test]
    fn a_guest_that_mostly_sleeps_is_never_throttled() {
        let mut g = governor(100_000_000, None);
        let t0 = Instant::now();
        for i in 0..20u32 {
            assert_eq!(g.decide(t0 + i * 100 * MS, i * MS), Decision::Yield);
        }
    }

    #[test]
    fn cpu_ulimit_is_exceeded_after_n_seconds_of_use() {
        let mut g = governor(0, Some(2));
        let t0 = Instant::now();
        assert_eq!(g.decide(t0, Duration::from_millis(1999)), Decision::Yield);
        assert_eq!(g.decide(t0, Duration::from_secs(2)), Decision::Exceeded);
        assert_eq!(
            CpuLimitExceeded { seconds: 2 }.to_string(),
            "cpu limit of 2 s exceeded"
        );
    }
}
