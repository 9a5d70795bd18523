//! Retrying the steps of `swarm-manager join` (SwarmKit retries joins too): a transient
//! failure — no leader during an election, another membership change in progress, the
//! remote refusing connections while it restarts, a change that did not commit in time — is
//! retried with [`Backoff`] until a deadline; a permanent one (wrong token, another CA,
//! a removed node, an invalid address) fails at once with its own message.
//!
//! [`transient`] is the pure classification; [`retry`] is the loop around an attempt.

use std::future::Future;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use swarm_agent::backoff::Backoff;
use tokio::time::Instant;
use tonic::Code;

use super::ManagerError;

/// How long `join` keeps retrying transient failures.
pub(super) const JOIN_RETRY_DEADLINE: Duration = Duration::from_secs(60);

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth trying again; says what went wrong.
    Transient(String),
    /// Retrying cannot help.
    Permanent(ManagerError),
}

/// Whether a gRPC answer `code` with `message` from the membership service may succeed when
/// tried again. `Unavailable` covers no leader, a change that did not commit in time and a
/// refused connection; the one-change-at-a-time refusal is an `Internal` that says so.
pub(super) fn transient(code: Code, message: &str) -> bool {
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted => {
            true
        }
        Code::Internal => message.contains("another membership change is in progress"),
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or `deadline` has passed since the
/// first try (then the last transient failure is the error, with `what` and the time spent).
pub(super) async fn retry<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut attempt: F,
) -> Result<T, ManagerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(3));
    let mut rng = StdRng::from_os_rng();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient(why)) => {
                let delay = backoff.next_delay(&mut rng);
                if started.elapsed() + delay >= deadline {
                    return Err(ManagerError::Other(format!(
                        "{what}: still failing after {:?} of retries: {why}",
                        started.elapsed()
                    )));
                }
                tracing::warn!(error = %why, retry_in = ?delay, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn no_leader_busy_membership_and_unreachable_are_transient() {
        assert!(transient(Code::Unavailable, "no raft leader"));
        assert!(transient(Code::DeadlineExceeded, "timed out"));
        assert!(transient(
            Code::Internal,
            "another membership change is in progress; retry when it has applied"
        ));
    }

    #[test]
    fn refusals_are_permanent() {
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::PermissionDenied,
            Code::Unauthenticated,
        ] {
            assert!(!transient(code, "no"), "{code:?} should not be retried");
        }
        assert!(!transient(Code::Internal, "storage failed"));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let tries = AtomicU32::new(0);
        let out = retry("joining", Duration::from_secs(60), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(Failure::Transient("no leader".into())),
                n => Ok(n),
            }
        })
        .await
        .expect("the fourth try should have succeeded");
        assert_eq!(out, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let tries = AtomicU32::new(0);
        let err = retry("joining", Duration::from_secs(60), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::Permanent(ManagerError::Other(
                "wrong token".into(),
            )))
        })
        .await
        .unwrap_err();
        assert_eq!(
            tries.load(Ordering::SeqCst),
            1,
            "a permanent failure was retried"
        );
        assert!(err.to_string().contains("wrong token"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_deadline_with_the_last_reason() {
        let err = retry("joining", Duration::from_secs(5), || async {
            Err::<(), _>(Failure::Transient("connection refused".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("connection refused") && err.contains("joining"),
            "{err}"
        );
    }
}
