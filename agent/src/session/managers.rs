//! Which manager to open the next session with. Pure: weighted random over the managers the
//! last session listed (seeded from `--manager`), never the one that just failed when there is
//! another, with weights halved on failure and restored on success (SwarmKit's `remotes`,
//! simplified).
//!
//! Unlike SwarmKit, the configured seed addresses are not forgotten: once every listed manager
//! has failed in a row, the seeds join the candidates again. A dispatcher that advertises an
//! address agents cannot reach (a wrong `--advertise-addr`) thus cannot strand its agents.

use rand::Rng;
use swarm_proto::WeightedPeer;

/// The weight of a manager nobody has said anything about.
pub(crate) const DEFAULT_WEIGHT: i64 = 10;

/// The managers an agent may connect to.
#[derive(Debug, Clone)]
pub(crate) struct ManagerList {
    peers: Vec<Peer>,
    seeds: Vec<String>,
    last_failed: Option<String>,
    failures_in_a_row: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Peer {
    addr: String,
    weight: i64,
}

impl ManagerList {
    /// Starts from the configured addresses (duplicates and empty ones dropped).
    pub(crate) fn new(seeds: &[String]) -> Self {
        let mut list = Self {
            peers: Vec::new(),
            seeds: Vec::new(),
            last_failed: None,
            failures_in_a_row: 0,
        };
        for addr in seeds {
            list.push(addr, DEFAULT_WEIGHT);
        }
        list.seeds = list.addrs().into_iter().map(str::to_string).collect();
        list
    }

    fn push(&mut self, addr: &str, weight: i64) {
        if !addr.is_empty() && !self.peers.iter().any(|p| p.addr == addr) {
            self.peers.push(Peer {
                addr: addr.to_string(),
                weight: weight.max(1),
            });
        }
    }

    /// The manager to try next, or `None` if the list is empty.
    pub(crate) fn pick(&self, rng: &mut impl Rng) -> Option<String> {
        let mut all: Vec<(&str, i64)> = self
            .peers
            .iter()
            .map(|p| (p.addr.as_str(), p.weight))
            .collect();
        if self.failures_in_a_row >= self.peers.len() {
            for seed in &self.seeds {
                if !all.iter().any(|(a, _)| a == seed) {
                    all.push((seed, DEFAULT_WEIGHT));
                }
            }
        }
        let candidates: Vec<(&str, i64)> = match &self.last_failed {
            Some(failed) if all.len() > 1 => all.into_iter().filter(|(a, _)| a != failed).collect(),
            _ => all,
        };
        let total: i64 = candidates.iter().map(|(_, w)| w).sum();
        if total <= 0 {
            return None;
        }
        let mut ticket = rng.random_range(0..total);
        for (addr, weight) in candidates {
            if ticket < weight {
                return Some(addr.to_string());
            }
            ticket -= weight;
        }
        None
    }

    /// A session with `addr` failed.
    pub(crate) fn observe_failure(&mut self, addr: &str) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == addr) {
            p.weight = (p.weight / 2).max(1);
        }
        self.last_failed = Some(addr.to_string());
        self.failures_in_a_row += 1;
    }

    /// A session with `addr` was established.
    pub(crate) fn observe_success(&mut self, addr: &str) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == addr) {
            p.weight = p.weight.max(DEFAULT_WEIGHT);
        }
        if self.last_failed.as_deref() == Some(addr) {
            self.last_failed = None;
        }
        self.failures_in_a_row = 0;
    }

    /// Replaces the list with the managers a session named. An empty list keeps the current
    /// one (a dispatcher that names no managers must not strand the agent).
    pub(crate) fn replace(&mut self, managers: &[WeightedPeer]) {
        let mut next = Self::new(&[]);
        for m in managers {
            let weight = if m.weight > 0 {
                m.weight
            } else {
                DEFAULT_WEIGHT
            };
            next.push(&m.addr, weight);
        }
        if !next.peers.is_empty() {
            self.peers = next.peers;
        }
    }

    /// The addresses, in list order.
    pub(crate) fn addrs(&self) -> Vec<&str> {
        self.peers.iter().map(|p| p.addr.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn peer(addr: &str, weight: i64) -> WeightedPeer {
        WeightedPeer {
            node_id: String::new(),
            addr: addr.into(),
            weight,
        }
    }

    #[test]
    fn a_failed_manager_is_not_tried_next_when_there_is_another() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut list = ManagerList::new(&["a:1".into(), "b:1".into(), "c:1".into()]);
        for _ in 0..50 {
            let addr = list.pick(&mut rng).unwrap();
            list.observe_failure(&addr);
            let next = list.pick(&mut rng).unwrap();
            assert_ne!(addr, next);
        }
    }

    #[test]
    fn a_single_manager_is_retried() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut list = ManagerList::new(&["a:1".into(), "a:1".into(), String::new()]);
        assert_eq!(list.addrs(), ["a:1"]);
        list.observe_failure("a:1");
        assert_eq!(list.pick(&mut rng).as_deref(), Some("a:1"));
    }

    #[test]
    fn picks_follow_weights() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut list = ManagerList::new(&[]);
        list.replace(&[peer("heavy:1", 90), peer("light:1", 10)]);
        let heavy = (0..1000)
            .filter(|_| list.pick(&mut rng).as_deref() == Some("heavy:1"))
            .count();
        assert!((800..980).contains(&heavy), "{heavy}");
    }

    #[test]
    fn the_session_list_replaces_the_seeds_unless_empty() {
        let mut list = ManagerList::new(&["seed:1".into()]);
        list.replace(&[]);
        assert_eq!(list.addrs(), ["seed:1"]);
        list.replace(&[peer("m1:1", 0), peer("", 5), peer("m2:1", 3)]);
        assert_eq!(list.addrs(), ["m1:1", "m2:1"]);
    }

    #[test]
    fn seeds_come_back_once_every_listed_manager_failed() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut list = ManagerList::new(&["seed:1".into()]);
        list.observe_success("seed:1");
        list.replace(&[peer("unreachable:1", 10), peer("unreachable:2", 10)]);
        list.observe_failure("unreachable:1");
        for _ in 0..20 {
            assert_ne!(list.pick(&mut rng).as_deref(), Some("seed:1"));
        }
        list.observe_failure("unreachable:2");
        let picks: Vec<String> = (0..50).filter_map(|_| list.pick(&mut rng)).collect();
        assert!(picks.iter().any(|p| p == "seed:1"), "{picks:?}");
        assert!(
            picks.iter().all(|p| p != "unreachable:2"),
            "not the one that just failed"
        );
        list.observe_success("unreachable:1");
        assert!((0..20).all(|_| list.pick(&mut rng).as_deref() != Some("seed:1")));
    }

    #[test]
    fn success_restores_a_penalized_manager() {
        let mut list = ManagerList::new(&["a:1".into()]);
        list.observe_failure("a:1");
        list.observe_failure("a:1");
        assert_eq!(list.peers[0].weight, 2);
        list.observe_success("a:1");
        assert_eq!(list.peers[0].weight, DEFAULT_WEIGHT);
        assert_eq!(list.last_failed, None);
    }
}
