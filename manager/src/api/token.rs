//! Join-token rotation for `UpdateCluster`.
//!
//! A join token is `SWMTKN-1-<root CA digest, base 36>-<secret>`. Rotating keeps the version
//! and the root digest (a joining node still pins the same CA) and draws a new secret of 25
//! base-36 characters (≈ 129 bits), as SwarmKit's `ca.GenerateJoinToken` does.

use rand::Rng;

use super::error::ApiError;

const PREFIX: &str = "SWMTKN";
const VERSION: &str = "1";
const SECRET_LEN: usize = 25;
const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `token` with a fresh secret from `rng` (use a CSPRNG such as `rand::rng()` outside tests).
///
/// Fails with `FailedPrecondition` when `token` is not `SWMTKN-1-<digest>-<secret>`: the
/// stored token is damaged and rotation would not produce a token nodes can use.
pub fn rotate(token: &str, which: &str, rng: &mut impl Rng) -> Result<String, ApiError> {
    let parts: Vec<&str> = token.split('-').collect();
    match parts.as_slice() {
        [PREFIX, VERSION, digest, _secret] if !digest.is_empty() => {
            Ok(format!("{PREFIX}-{VERSION}-{digest}-{}", secret(rng)))
        }
        _ => Err(ApiError::FailedPrecondition(format!(
            "the cluster's {which} join token is not of the form SWMTKN-1-<digest>-<secret>, so \
             it can't be rotated; the cluster object is damaged"
        ))),
    }
}

fn secret(rng: &mut impl Rng) -> String {
    (0..SECRET_LEN)
        .map(|_| BASE36[rng.random_range(0..BASE36.len())] as char)
        .collect()
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
        assert!(secret.bytes().all(|b| BASE36.contains(&b)));
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
