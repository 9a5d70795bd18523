//! When the leader promotes a learner to voter (etcd's learner flow, which SwarmKit lacks).
//!
//! A joining manager is added as a raft *learner*: it receives the snapshot and the log but
//! does not count toward quorum, so a two-manager swarm keeps its leader while the joiner
//! installs a large snapshot (its raft loop blocks meanwhile). Once the learner's `matched`
//! index is within [`CATCH_UP_MARGIN`] of the leader's commit index, the leader's driver
//! proposes `AddNode` for it — one change at a time, only when none is pending.

/// How many entries a learner may still lag behind the leader's commit index and be
/// promoted: a busy leader commits while the learner catches up, so exact equality might
/// never hold.
pub const CATCH_UP_MARGIN: u64 = 64;

/// The learner to promote now, if any: the lowest raft id among `learners` (each as
/// `(raft id, matched index)`) whose matched index is within `margin` of `commit`. Ties are
/// broken by id so the choice is deterministic.
pub fn learner_to_promote(learners: &[(u64, u64)], commit: u64, margin: u64) -> Option<u64> {
    learners
        .iter()
        .filter(|(_, matched)| *matched > 0 && matched.saturating_add(margin) >= commit)
        .map(|(id, _)| *id)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learner_that_has_caught_up_is_promoted() {
        assert_eq!(learner_to_promote(&[(7, 100)], 100, 0), Some(7));
        assert_eq!(learner_to_promote(&[(7, 90)], 100, 10), Some(7));
    }

    #[test]
    fn a_learner_still_behind_the_margin_is_not_promoted() {
        assert_eq!(learner_to_promote(&[(7, 89)], 100, 10), None);
    }

    #[test]
    fn a_learner_that_has_matched_nothing_yet_is_not_promoted() {
        // matched 0: the leader has not heard back from it (still installing the snapshot).
        assert_eq!(learner_to_promote(&[(7, 0)], 5, 64), None);
    }

    #[test]
    fn no_learners_means_no_promotion() {
        assert_eq!(learner_to_promote(&[], 100, 64), None);
    }

    #[test]
    fn the_lowest_caught_up_id_goes_first() {
        let learners = [(9, 100), (3, 10), (5, 99)];
        assert_eq!(learner_to_promote(&learners, 100, 1), Some(5));
    }
}
