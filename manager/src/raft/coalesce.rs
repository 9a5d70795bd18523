//! Coalescing proposals: the leader's driver puts the store batches proposed in one round of
//! its loop into as few raft entries as it can, each applying as the batches it carries.
//!
//! Every raft entry costs the same fixed work on each member whatever it holds (sealing,
//! a row in the log, its place in the append messages, raft-rs's bookkeeping), so under many
//! concurrent writers one entry per proposal made that fixed cost the largest part of a
//! write. An entry carries at most [`MAX_BATCHES`] proposals and, beyond its first,
//! [`MAX_BYTES`] of them (SwarmKit caps a transaction at 200 changes), so one entry never
//! grows past what a single large proposal would.

use prost::Message as _;
use swarm_proto::StoreBatch;

/// The most proposals one entry carries.
pub(super) const MAX_BATCHES: usize = 256;
/// The most encoded bytes of proposals one entry carries (unless a single proposal is
/// larger, which then goes alone).
pub(super) const MAX_BYTES: usize = 256 * 1024;

/// Splits `proposals` (in order) into the groups that go into one entry each: consecutive,
/// at most [`MAX_BATCHES`] long and [`MAX_BYTES`] in size unless a group is one proposal.
pub(super) fn groups<T>(proposals: Vec<(StoreBatch, T)>) -> Vec<Vec<(StoreBatch, T)>> {
    let mut groups = Vec::new();
    let (mut group, mut bytes): (Vec<_>, usize) = (Vec::new(), 0);
    for (batch, extra) in proposals {
        let size = batch.encoded_len();
        if !group.is_empty() && (group.len() == MAX_BATCHES || bytes + size > MAX_BYTES) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += size;
        group.push((batch, extra));
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// The data of the entry carrying `batches`: a lone batch as itself (as before coalescing
/// existed), several inside one that coalesces them.
pub(super) fn entry_data(mut batches: Vec<StoreBatch>) -> Vec<u8> {
    if batches.len() == 1 {
        return batches.pop().expect("one batch").encode_to_vec();
    }
    StoreBatch {
        coalesced: batches,
        ..Default::default()
    }
    .encode_to_vec()
}

/// The batches an entry's decoded batch applies as, in order.
pub(super) fn unpack(batch: StoreBatch) -> Vec<StoreBatch> {
    if batch.coalesced.is_empty() {
        vec![batch]
    } else {
        batch.coalesced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::StoreAction;

    /// Batch `id`, with enough (empty, 2-byte) actions to be at least `bytes` encoded.
    fn batch(id: u64, bytes: usize) -> StoreBatch {
        StoreBatch {
            request_id: id,
            actions: vec![StoreAction::default(); (bytes / 2).max(1)],
            atomic: id.is_multiple_of(2),
            coalesced: Vec::new(),
        }
    }

    #[test]
    fn t10_entries_round_trip_one_batch_or_several() {
        let one = batch(1, 0);
        let decoded = StoreBatch::decode(&entry_data(vec![one.clone()])[..]).unwrap();
        assert_eq!(decoded, one, "a lone batch is its own entry");
        assert_eq!(unpack(decoded), vec![one]);

        let several = vec![batch(1, 0), batch(2, 0), batch(3, 0)];
        let decoded = StoreBatch::decode(&entry_data(several.clone())[..]).unwrap();
        assert_eq!((decoded.request_id, decoded.actions.len()), (0, 0));
        assert_eq!(unpack(decoded), several, "in order, each whole");
    }

    #[test]
    fn t20_groups_keep_order_and_respect_both_caps() {
        let many: Vec<_> = (0..(MAX_BATCHES as u64 * 2 + 3))
            .map(|i| (batch(i, 0), i))
            .collect();
        let split = groups(many);
        let sizes: Vec<_> = split.iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_BATCHES, MAX_BATCHES, 3]);
        let order: Vec<u64> = split.into_iter().flatten().map(|(_, i)| i).collect();
        assert!(order.windows(2).all(|w| w[0] + 1 == w[1]), "order kept");

        let big = MAX_BYTES / 3;
        let sized: Vec<_> = (0..7).map(|i| (batch(i, big), i)).collect();
        let sizes: Vec<_> = groups(sized).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 1], "at most MAX_BYTES per entry");

        let huge = vec![
            (batch(0, 10), 0),
            (batch(1, MAX_BYTES * 2), 1),
            (batch(2, 10), 2),
        ];
        let sizes: Vec<_> = groups(huge).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1], "a proposal over the cap goes alone");
        assert!(groups::<()>(Vec::new()).is_empty());
    }
}
