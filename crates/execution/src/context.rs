//! What a block's execution needs to know about the block itself.

use alloy_primitives::{Address, B256};
use std::collections::BTreeMap;
use trellis_types::{BlockHash, Epoch, Height, Timestamp, ValidatorId, View};

/// The block being executed, as its proposer chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub height: Height,
    pub parent: BlockHash,
    pub timestamp: Timestamp,
    pub proposer: ValidatorId,
    /// The consensus round the block was proposed in. Recorded in the header; the EVM never
    /// sees it.
    pub epoch: Epoch,
    pub view: View,
    pub parent_view: View,
    /// Hashes of recent ancestors, for the `BLOCKHASH` opcode (at most the last 256 matter).
    /// A height missing here reads as zero, like a block outside the window.
    pub ancestors: BTreeMap<Height, BlockHash>,
}

impl BlockContext {
    /// The address credited with priority fees (the proposer's coinbase).
    pub fn coinbase(&self) -> Address {
        self.proposer.coinbase()
    }

    /// `PREVRANDAO`: there is no beacon randomness in Trellis, so it is the parent hash, which
    /// every node agrees on. Contracts must not treat it as unpredictable.
    pub fn prevrandao(&self) -> B256 {
        self.parent.0
    }
}
