//! The history of an account or a storage slot: every value it has had, the block and
//! transaction that wrote each, and a proof of each write against a state root.
//!
//! # What a proof of a write shows
//! Each block's operations sit together in a table's log (accounts, or storage for slots) and
//! end with a commit operation naming the block's height. A [`WriteProof`] carries three
//! operations of that table, each with a QMDB range proof against the table's root in the state
//! the history was read from (the history carries both table roots, which hash to the state
//! root):
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
    Account, ProofError, TableRoots,
    backend::{
        AccountOperation, AccountsEncoding, CHUNK, Operation, OperationsProof, SlotOperation,
        StorageEncoding,
    },
    entry::{StateKey, StateValue, slot_value, slot_word, word_height},
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use bytes::BufMut as _;
use commonware_codec::{Codec, Encode, RangeCfg, Read as _};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_storage::{
    merkle::Location,
    qmdb::any::{ValueEncoding, operation::Operation as Op, unordered::Update as KeyValue},
};
use serde::{Deserialize, Serialize};
use trellis_types::{Height, StateRoot};

/// The most digests an operation proof may carry when decoded: far above any real proof's depth.
const MAX_PROOF_DIGESTS: usize = 1_024;
/// The most bitmap chunks a single-operation proof carries (its own, plus pending or partial).
const MAX_CHUNKS: usize = 4;

/// The values an account or a slot has had, oldest first, each with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub address: Address,
    /// The slot whose history this is; `None` for the account's own entry.
    pub slot: Option<U256>,
    /// The roots of the two tables at the state the history was read from; they hash to its
    /// state root, and each entry is proven against its table's root.
    pub table_roots: TableRoots,
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

impl OperationProof {
    pub(crate) fn encode(
        location: u64,
        proof: &OperationsProof,
        operation: &impl Encode,
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

    /// The proven operation of a table whose values `V` encodes (and whose operations decode
    /// with `config`), once its proof verifies against the table's root.
    fn verify<V: ValueEncoding>(
        &self,
        what: &str,
        config: &<Operation<V> as commonware_codec::Read>::Cfg,
        table_root: Digest,
        root: &StateRoot,
    ) -> Result<Operation<V>, ProofError>
    where
        Operation<V>: Codec,
    {
        let malformed = |reason: String| ProofError::Malformed {
            what: what.to_string(),
            reason,
        };
        let mut buf = bytes::Bytes::copy_from_slice(&self.proof);
        let proof = OperationsProof::read_cfg(&mut buf, &MAX_PROOF_DIGESTS)
            .map_err(|e| malformed(e.to_string()))?;
        let operation =
            Operation::<V>::read_cfg(&mut buf, config).map_err(|e| malformed(e.to_string()))?;
        let chunks = Vec::<[u8; CHUNK]>::read_cfg(&mut buf, &(RangeCfg::new(..=MAX_CHUNKS), ()))
            .map_err(|e| malformed(e.to_string()))?;
        if bytes::Buf::has_remaining(&buf) {
            return Err(malformed(format!(
                "{} trailing bytes",
                bytes::Buf::remaining(&buf)
            )));
        }
        let location = Location::new(self.location.to());
        let operations = std::slice::from_ref(&operation);
        if proof.verify::<Sha256, _, CHUNK>(location, operations, &chunks, &table_root) {
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
    /// The value a write of account `key` made, as the accounts table's log holds it.
    pub(crate) fn from_account_operation(
        key: &StateKey,
        operation: &AccountOperation,
    ) -> Option<Self> {
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
            _ => None,
        }
    }

    /// The value a write of slot `key` made, as the storage table's log holds it.
    pub(crate) fn from_slot_operation(key: &StateKey, operation: &SlotOperation) -> Option<Self> {
        let StateKey::Slot { generation, .. } = key else {
            return None;
        };
        let generation = U64::from(*generation);
        match operation {
            Op::Update(KeyValue(_, word)) => Some(Self::Slot {
                generation,
                value: slot_value(word),
            }),
            Op::Delete(_) => Some(Self::Slot {
                generation,
                value: U256::ZERO,
            }),
            Op::CommitFloor(..) => None,
        }
    }

    /// The accounts table's operation that writes this value under `key`, if it is an
    /// account's value.
    fn account_operation(&self, key: Digest) -> Option<AccountOperation> {
        match self {
            Self::Account {
                nonce,
                balance,
                code_hash,
                storage_generation,
            } => Some(Op::Update(KeyValue(
                key,
                StateValue::Account {
                    account: Account {
                        nonce: nonce.to(),
                        balance: *balance,
                        code_hash: *code_hash,
                    },
                    generation: storage_generation.to(),
                },
            ))),
            Self::Deleted { storage_generation } => Some(Op::Update(KeyValue(
                key,
                StateValue::Retired {
                    generation: storage_generation.to(),
                },
            ))),
            Self::Slot { .. } => None,
        }
    }

    /// The storage table's operation that writes this value under `key`, if it is a slot's.
    fn slot_operation(&self, key: Digest) -> Option<SlotOperation> {
        match self {
            Self::Slot { value, .. } if value.is_zero() => Some(Op::Delete(key)),
            Self::Slot { value, .. } => Some(Op::Update(KeyValue(key, slot_word(value)))),
            _ => None,
        }
    }
}

/// The height an accounts-table operation commits, if it is a block's commit (`Some(None)`: the
/// empty table's first commit).
fn account_commit(operation: &AccountOperation) -> Option<Option<Height>> {
    match operation {
        Op::CommitFloor(Some(StateValue::Commit(height)), _) => Some(Some(*height)),
        Op::CommitFloor(None, _) => Some(None),
        _ => None,
    }
}

/// The height a storage-table operation commits, if it is a block's commit.
fn slot_commit(operation: &SlotOperation) -> Option<Option<Height>> {
    match operation {
        Op::CommitFloor(Some(word), _) => word_height(word).map(Some),
        Op::CommitFloor(None, _) => Some(None),
        _ => None,
    }
}

/// How one table's operations are checked: decoded, matched with an entry's value, and read as
/// commits.
struct TableRules<V: ValueEncoding>
where
    Operation<V>: Codec,
{
    config: <Operation<V> as commonware_codec::Read>::Cfg,
    root: Digest,
    write: fn(&HistoryValue, Digest) -> Option<Operation<V>>,
    commit: fn(&Operation<V>) -> Option<Option<Height>>,
}

impl History {
    /// The key of the entry whose history this is, for a write of the given slot generation
    /// (`None`: the value is of a kind this history does not hold).
    fn key(&self, value: &HistoryValue) -> Option<StateKey> {
        match (self.slot, value) {
            (None, HistoryValue::Account { .. } | HistoryValue::Deleted { .. }) => {
                Some(StateKey::Account(self.address))
            }
            (Some(slot), HistoryValue::Slot { generation, .. }) => Some(StateKey::Slot {
                address: self.address,
                generation: generation.to(),
                slot,
            }),
            _ => None,
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
        self.table_roots.verify(root)?;
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
            let key = self.key(&entry.value).ok_or_else(|| {
                claim("the entry's kind of value does not belong to this history".into())
            })?;
            let key = key.digest();
            match self.slot {
                None => {
                    let rules = TableRules::<AccountsEncoding> {
                        config: ((), ()),
                        root: self.table_roots.accounts_digest(),
                        write: HistoryValue::account_operation,
                        commit: account_commit,
                    };
                    verify_write(&what, key, entry, &rules, root)?
                }
                Some(_) => {
                    let rules = TableRules::<StorageEncoding> {
                        config: (),
                        root: self.table_roots.storage_digest(),
                        write: HistoryValue::slot_operation,
                        commit: slot_commit,
                    };
                    verify_write(&what, key, entry, &rules, root)?
                }
            }
        }
        Ok(())
    }
}

fn verify_write<V: ValueEncoding>(
    what: &str,
    key: Digest,
    entry: &HistoryEntry,
    rules: &TableRules<V>,
    root: &StateRoot,
) -> Result<(), ProofError>
where
    Operation<V>: Codec + PartialEq,
{
    let claim = |reason: String| ProofError::Claim {
        what: what.to_string(),
        reason,
    };
    let verify = |proof: &OperationProof, what: String| {
        proof.verify::<V>(&what, &rules.config, rules.root, root)
    };
    let height = Height(entry.block_number.to());
    let proof = &entry.proof;
    let written = verify(&proof.write, format!("the write of {what}"))?;
    if Some(written) != (rules.write)(&entry.value, key) {
        return Err(claim(
            "the proven operation writes another key or value than the entry states".into(),
        ));
    }
    let commit = verify(&proof.commit, format!("the commit of {what}"))?;
    if (rules.commit)(&commit) != Some(Some(height)) {
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
            let before = verify(previous, format!("the commit before {what}"))?;
            let expected = height.get().checked_sub(1).map(Height);
            if (rules.commit)(&before) != Some(expected) {
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
