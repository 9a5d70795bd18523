//! When to renew a certificate: at a random point between 50 % and 80 % of its lifetime
//! (SwarmKit's `calculateRandomExpiry`), so the nodes of a cluster do not all renew at once.

use std::time::SystemTime;

use rand::Rng;

use super::NodeIdentity;

/// The moment to renew `cert`.
pub fn renew_at(cert: &NodeIdentity, rng: &mut impl Rng) -> SystemTime {
    let life = cert
        .not_after
        .duration_since(cert.not_before)
        .unwrap_or_default();
    cert.not_before + life.mul_f64(rng.random_range(0.5..0.8))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use swarm_proto::NodeRole;

    use super::*;

    #[test]
    fn renewal_falls_between_half_and_four_fifths_of_the_lifetime() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cert = NodeIdentity {
            node_id: "n".into(),
            role: NodeRole::Worker,
            cluster_id: "c".into(),
            not_before: start,
            not_after: start + Duration::from_secs(1000),
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = Vec::new();
        for _ in 0..200 {
            let at = renew_at(&cert, &mut rng).duration_since(start).unwrap();
            assert!(
                at >= Duration::from_secs(500) && at < Duration::from_secs(800),
                "{at:?}"
            );
            seen.push(at);
        }
        seen.sort();
        assert!(seen[199] - seen[0] > Duration::from_secs(200), "spread out");
    }

    #[test]
    fn an_inverted_validity_renews_at_once() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let cert = NodeIdentity {
            node_id: "n".into(),
            role: NodeRole::Worker,
            cluster_id: "c".into(),
            not_before: t,
            not_after: t - Duration::from_secs(5),
        };
        assert_eq!(renew_at(&cert, &mut StdRng::seed_from_u64(1)), t);
    }
}
