//! Where the council keeps its records: slots of [`GOVERNANCE_ADDRESS`]'s storage, each
//! keccak-256 of `trellis.council.` ‖ a tag ‖ the key, values packed big-endian from the first
//! byte:
//!
//! | record | key | value |
//! |---|---|---|
//! | `count` | — | the last proposal id (u64) |
//! | `proposal` | id (u64) | `01` ‖ status (u8) ‖ proposer identity (u64) ‖ created (u64) ‖ expires (u64) |
//! | `proposer` | id | the proposing account (20 B) |
//! | `tally` | id | approving weight (u64) ‖ rejecting weight (u64) |
//! | `action-length` | id | the action's length in bytes (u64) |
//! | `action` | id ‖ word index (u64) | 32 bytes of the action |
//! | `ballot` | id ‖ identity (u64) | 1 approved, 2 rejected |
//! | `weight` | identity (u64) | a governor's weight (u64) |
//! | `total-weight` | — | the sum of governors' weights (u64) |
//! | `thresholds` | — | `01` ‖ participation (u16, basis points) ‖ approval (u16) |

use alloy_primitives::{Address, U256, address};

/// The governance system contract.
pub const GOVERNANCE_ADDRESS: Address = address!("0x0000000000000000000000000000000000001001");

fn slot(tag: &str, key: &[u8]) -> U256 {
    crate::layout::namespaced_slot("trellis.council.", tag, key)
}

fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_be_bytes());
    key[8..].copy_from_slice(&b.to_be_bytes());
    key
}

pub fn count() -> U256 {
    slot("count", &[])
}

pub fn proposal(id: u64) -> U256 {
    slot("proposal", &id.to_be_bytes())
}

pub fn proposer(id: u64) -> U256 {
    slot("proposer", &id.to_be_bytes())
}

pub fn tally(id: u64) -> U256 {
    slot("tally", &id.to_be_bytes())
}

pub fn action_length(id: u64) -> U256 {
    slot("action-length", &id.to_be_bytes())
}

pub fn action_word(id: u64, index: u64) -> U256 {
    slot("action", &pair(id, index))
}

pub fn ballot(id: u64, identity: u64) -> U256 {
    slot("ballot", &pair(id, identity))
}

pub fn weight(identity: u64) -> U256 {
    slot("weight", &identity.to_be_bytes())
}

pub fn total_weight() -> U256 {
    slot("total-weight", &[])
}

pub fn thresholds() -> U256 {
    slot("thresholds", &[])
}
