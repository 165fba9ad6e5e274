//! Where held transfers are kept: slots of [`HOLDS_ADDRESS`]'s storage, each keccak-256 of
//! `trellis.holds.` ‖ a tag ‖ the key; the escrowed value is the account's own balance.
//!
//! | record | key | value |
//! |---|---|---|
//! | `version` | — | 1 (written at genesis, so the account exists) |
//! | `count` | — | the last hold id (u64) |
//! | `hold` | id (u64) | `01` ‖ status (u8) ‖ created (u64) ‖ expires (u64) ‖ sender's identity (u64) |
//! | `from`, `to` | id | the sender, the recipient (20 B) |
//! | `value` | id | the value held, in wei |

use alloy_primitives::{Address, U256, address};

/// The holds system contract, whose balance is the escrow of every held transfer.
pub const HOLDS_ADDRESS: Address = address!("0x0000000000000000000000000000000000001002");

/// How long a held transfer waits for an approver, in blocks; then its sender may take it back.
pub const HOLD_BLOCKS: u64 = 10_000;

fn slot(tag: &str, key: &[u8]) -> U256 {
    crate::layout::namespaced_slot("trellis.holds.", tag, key)
}

pub fn version() -> U256 {
    slot("version", &[])
}

pub fn count() -> U256 {
    slot("count", &[])
}

pub fn hold(id: u64) -> U256 {
    slot("hold", &id.to_be_bytes())
}

pub fn from(id: u64) -> U256 {
    slot("from", &id.to_be_bytes())
}

pub fn to(id: u64) -> U256 {
    slot("to", &id.to_be_bytes())
}

pub fn value(id: u64) -> U256 {
    slot("value", &id.to_be_bytes())
}
