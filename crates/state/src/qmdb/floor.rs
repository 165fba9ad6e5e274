//! The inactivity-floor policy every block's commit follows (part of the protocol).

use commonware_storage::qmdb::floor::{Decision, Entry, Limits, Policy};

/// How each block advances QMDB's inactivity floor: one active entry moved to the tip for every
/// four operations the block made inactive (QMDB's `Proportional` moves one for each).
///
/// Moves exist to let pruning reclaim old log sections and to bound the log a restart replays;
/// a ledger that keeps every operation (the default) reclaims nothing, so each move is pure
/// cost: a read and a write, and more log to replay at restart than to prune. The policy
/// decides which operations
/// every validator appends, so it is part of the protocol: fixed here, never configurable.
pub struct QuarterFloor;

impl<F: commonware_storage::merkle::Family, K, V> Policy<F, K, V> for QuarterFloor {
    fn evicts(&self) -> bool {
        false
    }

    fn limits(&self, made_inactive: usize) -> Limits {
        Limits {
            entries: made_inactive / 4 + 1,
            skips: u64::MAX,
        }
    }

    fn decide<'a>(&mut self, entry: Entry<'a, F, K, V>) -> Decision<'a, V> {
        entry.keep()
    }
}
