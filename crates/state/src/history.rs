//! The history of an account or a storage slot: every value it has had, the block and
//! transaction that wrote each, and a proof of each write against a state root.
//!
//! # What a proof of a write shows
//! Each block's operations sit together in QMDB's log and end with a commit operation naming
//! the block's height. A [`WriteProof`] carries three operations, each with a QMDB range proof
//! against the root of the state the history was read from:
//! - the previous block's commit (naming height `h - 1`), at location `p`;
//! - the write itself (the key's entry with its value), at location `w`;
//! - the block's own commit (naming height `h`), at location `c`.
//!
//! `p < w < c` then shows the value was written by block `h`, and it stayed the key's value
//! until the next entry's block. The log is append-only and the root commits to all of it, so a
//! node cannot move a write to another block or change its value. The transaction index comes
//! from the node's index and is not part of the proof (the block's receipts show it).
//!
//! The index finds writes; the proofs do not show that none was left out. The newest entry's
//! value can be checked to be current with [`crate::StateProof`].

use crate::{
    Account, ProofError,
    entry::{StateKey, StateValue},
    qmdb::{CHUNK, Family, VerifierDb},
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use bytes::BufMut as _;
use commonware_codec::{Encode as _, RangeCfg, Read as _};
use commonware_cryptography::sha256::Digest;
use commonware_storage::{
    merkle::Location,
    qmdb::{
        any::{operation::Operation as Op, unordered::Update as KeyValue},
        current::proof::RangeProof,
    },
};
use serde::{Deserialize, Serialize};
use trellis_types::{Height, StateRoot};

/// The most digests an operation proof may carry when decoded: far above any real proof's depth.
const MAX_PROOF_DIGESTS: usize = 1_024;
/// The most bitmap chunks a single-operation proof carries (its own, plus pending or partial).
const MAX_CHUNKS: usize = 4;

pub(crate) type Operation =
    commonware_storage::qmdb::any::unordered::variable::Operation<Family, Digest, StateValue>;

/// The values an account or a slot has had, oldest first, each with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub address: Address,
    /// The slot whose history this is; `None` for the account's own entry.
    pub slot: Option<U256>,
    /// The writes found, oldest first.
    pub entries: Vec<HistoryEntry>,
    /// Older writes exist than the ones listed.
    pub truncated: bool,
}

/// One write of the account or slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub block_number: U64,
    /// The transaction's index in its block; `None` for genesis allocations.
    pub transaction_index: Option<U64>,
    /// The transaction's hash, where the node filled it in from the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<B256>,
    pub value: HistoryValue,
    pub proof: WriteProof,
}

/// A value as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HistoryValue {
    /// The account as it was left.
    Account {
        nonce: U64,
        balance: U256,
        code_hash: B256,
        storage_generation: U64,
    },
    /// The account was deleted; one created there later uses `storage_generation`.
    Deleted { storage_generation: U64 },
    /// A storage slot of the given generation of the account's storage; zero means deleted.
    Slot { generation: U64, value: U256 },
}

/// Proof that a write happened in its block (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteProof {
    pub previous_commit: Option<OperationProof>,
    pub write: OperationProof,
    pub commit: OperationProof,
}

/// One operation of the log at `location`, with its range proof and bitmap chunks (encoded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationProof {
    pub location: U64,
    pub proof: Bytes,
}

pub(crate) type Proof = RangeProof<Family, Digest>;

impl OperationProof {
    pub(crate) fn encode(
        location: u64,
        proof: &Proof,
        operation: &Operation,
        chunks: &[[u8; CHUNK]],
    ) -> Self {
        let mut buf = Vec::new();
        buf.put_slice(&proof.encode());
        buf.put_slice(&operation.encode());
        buf.put_slice(&chunks.to_vec().encode());
        Self {
            location: U64::from(location),
            proof: Bytes::from(buf),
        }
    }

    /// The proven operation, once its proof verifies against `root`.
    fn verify(&self, what: &str, root: &StateRoot) -> Result<Operation, ProofError> {
        let malformed = |reason: String| ProofError::Malformed {
            what: what.to_string(),
            reason,
        };
        let mut buf = bytes::Bytes::copy_from_slice(&self.proof);
        let proof =
            Proof::read_cfg(&mut buf, &MAX_PROOF_DIGESTS).map_err(|e| malformed(e.to_string()))?;
        let operation =
            Operation::read_cfg(&mut buf, &((), ())).map_err(|e| malformed(e.to_string()))?;
        let chunks = Vec::<[u8; CHUNK]>::read_cfg(&mut buf, &(RangeCfg::new(..=MAX_CHUNKS), ()))
            .map_err(|e| malformed(e.to_string()))?;
        if bytes::Buf::has_remaining(&buf) {
            return Err(malformed(format!(
                "{} trailing bytes",
                bytes::Buf::remaining(&buf)
            )));
        }
        let location = Location::new(self.location.to());
        let root_digest = Digest(root.0.0);
        if VerifierDb::verify_range_proof(
            &proof,
            location,
            std::slice::from_ref(&operation),
            &chunks,
            &root_digest,
        ) {
            Ok(operation)
        } else {
            Err(ProofError::Mismatch {
                what: what.to_string(),
                root: *root,
            })
        }
    }
}

impl HistoryValue {
    /// The value a write of `key` made, as the log holds it.
    pub(crate) fn from_operation(key: &StateKey, operation: &Operation) -> Option<Self> {
        match (key, operation) {
            (
                StateKey::Account(_),
                Op::Update(KeyValue(
                    _,
                    StateValue::Account {
                        account,
                        generation,
                    },
                )),
            ) => Some(Self::Account {
                nonce: U64::from(account.nonce),
                balance: account.balance,
                code_hash: account.code_hash,
                storage_generation: U64::from(*generation),
            }),
            (StateKey::Account(_), Op::Update(KeyValue(_, StateValue::Retired { generation }))) => {
                Some(Self::Deleted {
                    storage_generation: U64::from(*generation),
                })
            }
            (
                StateKey::Slot { generation, .. },
                Op::Update(KeyValue(_, StateValue::Slot(value))),
            ) => Some(Self::Slot {
                generation: U64::from(*generation),
                value: *value,
            }),
            (StateKey::Slot { generation, .. }, Op::Delete(_)) => Some(Self::Slot {
                generation: U64::from(*generation),
                value: U256::ZERO,
            }),
            _ => None,
        }
    }

    /// The operation that writes this value under `key`.
    fn operation(&self, key: Digest) -> Operation {
        match self {
            Self::Account {
                nonce,
                balance,
                code_hash,
                storage_generation,
            } => Op::Update(KeyValue(
                key,
                StateValue::Account {
                    account: Account {
                        nonce: nonce.to(),
                        balance: *balance,
                        code_hash: *code_hash,
                    },
                    generation: storage_generation.to(),
                },
            )),
            Self::Deleted { storage_generation } => Op::Update(KeyValue(
                key,
                StateValue::Retired {
                    generation: storage_generation.to(),
                },
            )),
            Self::Slot { value, .. } if value.is_zero() => Op::Delete(key),
            Self::Slot { value, .. } => Op::Update(KeyValue(key, StateValue::Slot(*value))),
        }
    }
}

/// The commit operation's height, if `operation` is a block's commit.
fn committed_height(operation: &Operation) -> Option<Option<Height>> {
    match operation {
        Op::CommitFloor(Some(StateValue::Commit(height)), _) => Some(Some(*height)),
        Op::CommitFloor(None, _) => Some(None),
        _ => None,
    }
}

impl History {
    /// The key of the entry whose history this is, for a write of the given slot generation.
    fn key(&self, value: &HistoryValue) -> Result<StateKey, String> {
        match (self.slot, value) {
            (None, HistoryValue::Account { .. } | HistoryValue::Deleted { .. }) => {
                Ok(StateKey::Account(self.address))
            }
            (Some(slot), HistoryValue::Slot { generation, .. }) => Ok(StateKey::Slot {
                address: self.address,
                generation: generation.to(),
                slot,
            }),
            _ => Err("the entry's kind of value does not belong to this history".into()),
        }
    }

    fn what(&self) -> String {
        match self.slot {
            None => format!("account {}", self.address),
            Some(slot) => format!("slot {slot:#x} of {}", self.address),
        }
    }

    /// Checks every entry against `root` (the state root of a header the verifier trusts, the
    /// one the history was read at): each write is in the log with the value claimed, inside
    /// the block claimed; and the entries go forward in height.
    pub fn verify(&self, root: &StateRoot) -> Result<(), ProofError> {
        let mut last: Option<u64> = None;
        for entry in &self.entries {
            let height: u64 = entry.block_number.to();
            let what = format!("{} at block {height}", self.what());
            let claim = |reason: String| ProofError::Claim {
                what: what.clone(),
                reason,
            };
            if last.is_some_and(|last| last >= height) {
                return Err(claim("entries must go forward in block number".into()));
            }
            last = Some(height);
            let key = self.key(&entry.value).map_err(&claim)?;
            verify_write(&what, key.digest(), entry, root)?;
        }
        Ok(())
    }
}

fn verify_write(
    what: &str,
    key: Digest,
    entry: &HistoryEntry,
    root: &StateRoot,
) -> Result<(), ProofError> {
    let claim = |reason: String| ProofError::Claim {
        what: what.to_string(),
        reason,
    };
    let height = Height(entry.block_number.to());
    let proof = &entry.proof;
    let written = proof.write.verify(&format!("the write of {what}"), root)?;
    if written != entry.value.operation(key) {
        return Err(claim(
            "the proven operation writes another key or value than the entry states".into(),
        ));
    }
    let commit = proof
        .commit
        .verify(&format!("the commit of {what}"), root)?;
    if committed_height(&commit) != Some(Some(height)) {
        return Err(claim(format!(
            "the operation proven as the block's commit is not block {height}'s commit"
        )));
    }
    let (write_at, commit_at) = (proof.write.location, proof.commit.location);
    if write_at >= commit_at {
        return Err(claim("the write comes after the block's commit".into()));
    }
    match &proof.previous_commit {
        Some(previous) => {
            let before = previous.verify(&format!("the commit before {what}"), root)?;
            let expected = height.get().checked_sub(1).map(Height);
            if committed_height(&before) != Some(expected) {
                return Err(claim(
                    "the operation proven as the previous commit is not the previous block's commit"
                        .into(),
                ));
            }
            if previous.location >= write_at {
                return Err(claim(
                    "the write comes before the block's first operation".into(),
                ));
            }
        }
        None if height == Height::GENESIS => {}
        None => return Err(claim("the previous block's commit is missing".into())),
    }
    Ok(())
}
