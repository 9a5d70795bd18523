//! Join-token rotation for `UpdateCluster`.
//!
//! Rotating keeps the version and the root CA digest (a joining node still pins the same CA)
//! and draws a new 128-bit secret (25 base-36 characters), as SwarmKit's
//! `ca.GenerateJoinToken` does. The format itself is `swarm_agent::certs::JoinToken`.

use rand::RngCore;
use swarm_agent::certs::JoinToken;

use super::error::ApiError;

/// `token` with a fresh secret from `rng` (use a CSPRNG such as `rand::rng()` outside tests).
///
/// Fails with `FailedPrecondition` when `token` is not `SWMTKN-1-<digest>-<secret>`: the
/// stored token is damaged and rotation would not produce a token nodes can use.
pub fn rotate(token: &str, which: &str, rng: &mut impl RngCore) -> Result<String, ApiError> {
    JoinToken::parse(token)
        .map(|t| t.rotated_with(rng).to_string())
        .map_err(|_| {
            ApiError::FailedPrecondition(format!(
                "the cluster's {which} join token is not of the form SWMTKN-1-<digest>-<secret>, \
                 so it can't be rotated; the cluster object is damaged"
            ))
        })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const TOKEN: &str =
        "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";

    #[test]
    fn rotation_keeps_the_digest_and_replaces_the_secret() {
        let mut rng = StdRng::seed_from_u64(7);
        let new = rotate(TOKEN, "worker", &mut rng).unwrap();
        let (kept, secret) = new.rsplit_once('-').unwrap();
        assert_eq!(kept, TOKEN.rsplit_once('-').unwrap().0);
        assert_eq!(secret.len(), 25);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_ne!(new, TOKEN);
        assert_ne!(new, rotate(TOKEN, "worker", &mut rng).unwrap());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let mut rng = StdRng::seed_from_u64(7);
        for bad in [
            "",
            "SWMTKN-1-abc",
            "SWMTKN-2-abc-def",
            "XXX-1-abc-def",
            "SWMTKN-1--def",
        ] {
            let e = rotate(bad, "manager", &mut rng).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("the cluster's manager join token is not of the form"),
                "{bad}: {e}"
            );
        }
    }
}
