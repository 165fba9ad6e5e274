//! Where the registry keeps each record: slots of [`REGISTRY_ADDRESS`]'s storage.
//!
//! Every slot is keccak-256 of `trellis.registry.` ‖ a tag ‖ the record's key, so records of
//! different kinds never share a slot. Values are packed big-endian from the slot's first byte:
//!
//! | record | key | value |
//! |---|---|---|
//! | `org` | org id (u64) | `01` ‖ name length (u8) ‖ name (UTF-8, at most [`MAX_NAME`] bytes) |
//! | `identity` | identity id (u64) | `01` ‖ org id (u64) ‖ from (u64) ‖ until (u64, `0` = never) |
//! | `account` | address (20 B) | `01` ‖ identity id (u64) ‖ from (u64) ‖ until (u64, `0` = never) |
//! | `account-status` | address (20 B) | status (u8: 0 normal, 1 frozen, 2 abolished) ‖ since (u64) ‖ proposal (u64) |
//! | `role` | role (32 B) ‖ identity id (u64) | `1` if held |
//! | `method` | contract (20 B) ‖ selector (4 B) | the role a caller needs (32 B) |
//! | `limit-tx`, `limit-day`, `limit-hold` | `i` ‖ identity id (u64), or `r` ‖ role (32 B) | a value limit in wei (0: none) |
//! | `limited-roles` | — | how many roles carry limits |
//! | `limited-role` | index (u64) | the role (32 B) |
//! | `spent` | identity id (u64) ‖ day (u64) | the value it sent that UTC day |
//! | `epoch-length` | — | blocks per epoch (u256) |
//! | `block-gas-limit`, `base-fee` | — | the chain parameters blocks run under (u256) |
//! | `validators` | — | how many validator records there are |
//! | `validator` | index (u64) | the record's ed25519 key (32 B) |
//! | `validator-term` | key (32 B) | `01` ‖ from epoch (u64) ‖ until epoch (u64, `0` = never) ‖ operator identity (u64, `0` = none) |
//! | `validator-p2p` | key (32 B) | `4` or `6` ‖ IP (16 B, IPv4 mapped) ‖ port (u16); none for a genesis validator |
//! | `validator-successor` | key (32 B) | the key that took over from a rotated one (32 B) |
//! | `deployment` | contract (20 B) | `01` ‖ the signer of the transaction that created it (20 B) ‖ height (u64) |
//!
//! A zero slot means "no record": the leading `01` makes every record non-zero.

use crate::Role;
use alloy_primitives::{Address, Selector, U256, address, keccak256};
use trellis_types::ValidatorId;

/// The longest organisation name, in bytes: what fits in its record's slot.
pub const MAX_NAME: usize = 30;

/// The registry's system account.
pub const REGISTRY_ADDRESS: Address = address!("0x0000000000000000000000000000000000001000");

/// keccak-256 of `namespace` ‖ `tag` ‖ `key`: how every system contract names its slots.
pub(crate) fn namespaced_slot(namespace: &str, tag: &str, key: &[u8]) -> U256 {
    let mut bytes = Vec::with_capacity(namespace.len() + tag.len() + key.len());
    bytes.extend_from_slice(namespace.as_bytes());
    bytes.extend_from_slice(tag.as_bytes());
    bytes.extend_from_slice(key);
    U256::from_be_bytes(keccak256(bytes).0)
}

fn slot(tag: &str, key: &[u8]) -> U256 {
    namespaced_slot("trellis.registry.", tag, key)
}

pub fn org(id: u64) -> U256 {
    slot("org", &id.to_be_bytes())
}

pub fn identity(id: u64) -> U256 {
    slot("identity", &id.to_be_bytes())
}

pub fn account(address: &Address) -> U256 {
    slot("account", address.as_slice())
}

pub fn account_status(address: &Address) -> U256 {
    slot("account-status", address.as_slice())
}

/// The account that took over from a rotated one.
pub fn account_successor(address: &Address) -> U256 {
    slot("account-successor", address.as_slice())
}

/// Who deployed a contract (`deployments.rs`).
pub fn deployment(contract: &Address) -> U256 {
    slot("deployment", contract.as_slice())
}

pub fn role(role: &Role, identity: u64) -> U256 {
    let mut key = role.0.to_vec();
    key.extend_from_slice(&identity.to_be_bytes());
    slot("role", &key)
}

pub fn method(contract: &Address, selector: &Selector) -> U256 {
    let mut key = contract.to_vec();
    key.extend_from_slice(selector.as_slice());
    slot("method", &key)
}

/// `key`: `i` ‖ identity id, or `r` ‖ role (see `limits.rs`).
pub fn limit_per_transaction(key: &[u8]) -> U256 {
    slot("limit-tx", key)
}

pub fn limit_per_day(key: &[u8]) -> U256 {
    slot("limit-day", key)
}

pub fn limit_hold(key: &[u8]) -> U256 {
    slot("limit-hold", key)
}

pub fn limited_roles() -> U256 {
    slot("limited-roles", &[])
}

pub fn limited_role(index: u64) -> U256 {
    slot("limited-role", &index.to_be_bytes())
}

pub fn block_gas_limit() -> U256 {
    slot("block-gas-limit", &[])
}

pub fn base_fee() -> U256 {
    slot("base-fee", &[])
}

pub fn epoch_length() -> U256 {
    slot("epoch-length", &[])
}

pub fn validator_count() -> U256 {
    slot("validators", &[])
}

pub fn validator(index: u64) -> U256 {
    slot("validator", &index.to_be_bytes())
}

pub fn validator_term(key: &ValidatorId) -> U256 {
    slot("validator-term", &key.0)
}

pub fn validator_p2p(key: &ValidatorId) -> U256 {
    slot("validator-p2p", &key.0)
}

pub fn validator_successor(key: &ValidatorId) -> U256 {
    slot("validator-successor", &key.0)
}

pub fn validator_compromise(key: &ValidatorId) -> U256 {
    slot("validator-compromise", &key.0)
}

pub fn spent(identity: u64, day: u64) -> U256 {
    let mut key = identity.to_be_bytes().to_vec();
    key.extend_from_slice(&day.to_be_bytes());
    slot("spent", &key)
}

/// Packs fields big-endian from the first byte of a 32-byte value.
#[derive(Default)]
pub(crate) struct Packer {
    bytes: [u8; 32],
    at: usize,
}

impl Packer {
    pub fn byte(mut self, value: u8) -> Self {
        self.bytes[self.at] = value;
        self.at += 1;
        self
    }

    pub fn u64(mut self, value: u64) -> Self {
        self.bytes[self.at..self.at + 8].copy_from_slice(&value.to_be_bytes());
        self.at += 8;
        self
    }

    pub fn u16(mut self, value: u16) -> Self {
        self.bytes[self.at..self.at + 2].copy_from_slice(&value.to_be_bytes());
        self.at += 2;
        self
    }

    pub fn slice(mut self, value: &[u8]) -> Self {
        self.bytes[self.at..self.at + value.len()].copy_from_slice(value);
        self.at += value.len();
        self
    }

    pub fn finish(self) -> U256 {
        U256::from_be_bytes(self.bytes)
    }
}

/// Reads fields packed by [`Packer`].
pub(crate) struct Unpacker {
    bytes: [u8; 32],
    at: usize,
}

impl Unpacker {
    pub fn new(value: U256) -> Self {
        Self {
            bytes: value.to_be_bytes(),
            at: 0,
        }
    }

    pub fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    pub fn u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[self.at..self.at + 8]);
        self.at += 8;
        u64::from_be_bytes(word)
    }

    pub fn u16(&mut self) -> u16 {
        let word = [self.bytes[self.at], self.bytes[self.at + 1]];
        self.at += 2;
        u16::from_be_bytes(word)
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        bytes
    }

    pub fn rest(&self) -> &[u8] {
        &self.bytes[self.at..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_different_kinds_never_share_a_slot() {
        let a = Address::repeat_byte(1);
        let slots = [
            org(1),
            identity(1),
            account(&a),
            account_status(&a),
            deployment(&a),
            role(&Role::governor(), 1),
            role(&Role::governor(), 2),
            role(&Role::auditor(), 1),
        ];
        for (i, s) in slots.iter().enumerate() {
            assert!(slots[i + 1..].iter().all(|other| other != s));
        }
    }

    #[test]
    fn packed_fields_read_back() {
        let value = Packer::default().byte(1).u64(7).u64(u64::MAX).finish();
        let mut fields = Unpacker::new(value);
        assert_eq!(
            (fields.byte(), fields.u64(), fields.u64()),
            (1, 7, u64::MAX)
        );
        assert!(fields.rest().iter().all(|b| *b == 0));
    }
}
