//! Proofs of state values against a header's state root, and their verification without a node.
//!
//! A [`StateProof`] carries an account's entry (nonce, balance, code hash and storage
//! generation) and some of its storage slots, each with a QMDB proof that the entry is the
//! *current* value of its key under its table's root, and both table roots, which hash to the
//! state root ([`TableRoots`]). Anyone holding a trusted header checks it with
//! [`StateProof::verify`]; the JSON form (serde, Ethereum hex conventions) is what
//! `trellis_getProof` returns and `trellis verify-proof` reads.
//!
//! The store is unordered, so it proves values that exist and cannot prove absence: a missing
//! account, or a slot holding zero, comes without a proof and verification says so.

use crate::{
    Account, TableRoots,
    backend::{AccountsEncoding, CHUNK, Family, Operation, StorageEncoding},
    entry::{StateKey, StateValue, slot_word},
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use commonware_codec::{Decode as _, Encode as _};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_storage::qmdb::{
    any::{ValueEncoding, unordered::Update},
    current::unordered::proof::constant::KeyValueProof,
};
use serde::{Deserialize, Serialize};
use trellis_types::StateRoot;

/// The most digests a proof may carry when decoded: far above any real proof's depth.
const MAX_PROOF_DIGESTS: usize = 1_024;

pub(crate) type Proof = KeyValueProof<Family, Digest, CHUNK>;

/// An account and some of its storage slots, proven against a state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateProof {
    pub address: Address,
    /// The roots of the two tables at the proven state; they hash to its state root.
    pub table_roots: TableRoots,
    /// The account's entry, or `None` if the account does not exist (which cannot be proven).
    pub account: Option<AccountProof>,
    pub storage: Vec<SlotProof>,
}

/// An account's entry with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProof {
    pub nonce: U64,
    pub balance: U256,
    pub code_hash: B256,
    /// Which generation of storage slots is the account's (see [`crate::entry`]).
    pub storage_generation: U64,
    pub proof: Bytes,
}

/// A storage slot's value with its proof; `proof` is `None` when the slot holds zero (absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotProof {
    pub key: U256,
    pub value: U256,
    pub proof: Option<Bytes>,
}

/// Why a proof does not establish its values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof of {what} is not a well-formed QMDB proof: {reason}")]
    Malformed { what: String, reason: String },
    #[error(
        "the proof of {what} does not verify against state root {root}: the value, the key or the root differs from what was proven"
    )]
    Mismatch { what: String, root: StateRoot },
    #[error(
        "the table roots (accounts {}, storage {}) do not hash to state root {root}: they are not that state's", roots.accounts, roots.storage
    )]
    TableRoots { roots: TableRoots, root: StateRoot },
    #[error(
        "{what} does not exist (or is zero), which the state cannot prove: only values that exist carry proofs"
    )]
    Unprovable { what: String },
    #[error("{what}: the proof does not show what the entry claims: {reason}")]
    Claim { what: String, reason: String },
}

impl AccountProof {
    fn account(&self) -> Account {
        Account {
            nonce: self.nonce.to(),
            balance: self.balance,
            code_hash: self.code_hash,
        }
    }
}

/// Encodes a QMDB proof for transport.
pub(crate) fn encode(proof: &Proof) -> Bytes {
    Bytes::from(proof.encode().to_vec())
}

/// Checks that `value` is the current value of `key` in the table whose root is `table_root`.
fn verify_entry<V: ValueEncoding>(
    what: &str,
    key: StateKey,
    value: V::Value,
    proof: &[u8],
    table_root: Digest,
    root: &StateRoot,
) -> Result<(), ProofError>
where
    Operation<V>: commonware_codec::Encode,
{
    let decoded = Proof::decode_cfg(bytes::Bytes::copy_from_slice(proof), &MAX_PROOF_DIGESTS)
        .map_err(|e| ProofError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    let operation = Operation::<V>::Update(Update(key.digest(), value));
    if decoded.verify::<Sha256, _>(operation, &table_root) {
        Ok(())
    } else {
        Err(ProofError::Mismatch {
            what: what.to_string(),
            root: *root,
        })
    }
}

impl TableRoots {
    /// Checks that these are the table roots of the state whose root is `root`.
    pub fn verify(&self, root: &StateRoot) -> Result<(), ProofError> {
        match self.state_root() == *root {
            true => Ok(()),
            false => Err(ProofError::TableRoots {
                roots: *self,
                root: *root,
            }),
        }
    }
}

impl StateProof {
    /// Checks every value against `root` (the state root of a header the verifier trusts).
    /// Fails on the first value that a proof does not establish.
    pub fn verify(&self, root: &StateRoot) -> Result<(), ProofError> {
        let address = self.address;
        self.table_roots.verify(root)?;
        let Some(account) = &self.account else {
            return Err(ProofError::Unprovable {
                what: format!("account {address}"),
            });
        };
        let generation: u64 = account.storage_generation.to();
        verify_entry::<AccountsEncoding>(
            &format!("account {address}"),
            StateKey::Account(address),
            StateValue::Account {
                account: account.account(),
                generation,
            },
            &account.proof,
            self.table_roots.accounts_digest(),
            root,
        )?;
        for slot in &self.storage {
            let what = format!("slot {:#x} of {address}", slot.key);
            let Some(proof) = &slot.proof else {
                return Err(ProofError::Unprovable { what });
            };
            if slot.value.is_zero() {
                return Err(ProofError::Unprovable { what });
            }
            let key = StateKey::Slot {
                address,
                generation,
                slot: slot.key,
            };
            verify_entry::<StorageEncoding>(
                &what,
                key,
                slot_word(&slot.value),
                proof,
                self.table_roots.storage_digest(),
                root,
            )?;
        }
        Ok(())
    }
}
