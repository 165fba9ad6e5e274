//! What the store proves: an account and its slots against the last commit's root, and the
//! history of a key (every write, each with its proofs), through the history index.

use super::{ACCOUNTS, QmdbStore, STORAGE};
use crate::backend::{Operation, Runtime};
use crate::history::{History, HistoryEntry, HistoryValue, OperationProof, WriteProof};
use crate::history_index::Found;
use crate::table::Table;
use crate::{
    Corruption, StateError,
    entry::{StateKey, slot_value},
};
use alloy_primitives::{Address, U256};
use commonware_codec::Codec;
use commonware_storage::{journal::contiguous::Mutable, qmdb::any::ValueEncoding};

impl<E: Runtime> QmdbStore<E> {
    /// Proofs of `address`'s account and of `slots`, against the root of the last commit.
    pub async fn prove(
        &self,
        address: &Address,
        slots: &[U256],
    ) -> Result<crate::StateProof, StateError> {
        let (accounts, storage) = (self.accounts.db()?, self.storage.db()?);
        let record = self.stored_record(address).await?;
        let account = match record.account {
            None => None,
            Some(account) => {
                let key = StateKey::Account(*address).digest();
                let proof =
                    (accounts.key_value_proof(key).await).map_err(StateError::storage(ACCOUNTS))?;
                Some(crate::AccountProof {
                    nonce: alloy_primitives::U64::from(account.nonce),
                    balance: account.balance,
                    code_hash: account.code_hash,
                    storage_generation: alloy_primitives::U64::from(record.generation),
                    proof: crate::proof::encode(&proof),
                })
            }
        };
        let mut proven = Vec::with_capacity(slots.len());
        for slot in slots {
            let key = StateKey::Slot {
                address: *address,
                generation: record.generation,
                slot: *slot,
            }
            .digest();
            let stored = match record.exists {
                true => (storage.get(&key).await).map_err(StateError::storage(STORAGE))?,
                false => None,
            };
            proven.push(match stored {
                None => crate::SlotProof {
                    key: *slot,
                    value: U256::ZERO,
                    proof: None,
                },
                Some(word) => crate::SlotProof {
                    key: *slot,
                    value: slot_value(&word),
                    proof: Some(crate::proof::encode(
                        &(storage.key_value_proof(key).await)
                            .map_err(StateError::storage(STORAGE))?,
                    )),
                },
            });
        }
        Ok(crate::StateProof {
            address: *address,
            table_roots: self.table_roots()?,
            account,
            storage: proven,
        })
    }

    /// The history of `address`'s account entry (`slot` = `None`) or of one of its storage
    /// slots, in every generation of its storage: the newest `limit` writes, oldest first, each
    /// proven against the root of the last commit. Writes whose operations were pruned
    /// ([`QmdbConfig::keep_blocks`]) are left out, and `truncated` says so.
    pub async fn history(
        &self,
        address: &Address,
        slot: Option<U256>,
        limit: usize,
    ) -> Result<History, StateError> {
        let (entries, truncated) = match slot {
            None => {
                let keys = [StateKey::Account(*address)];
                let value = HistoryValue::from_account_operation;
                proven_writes(&self.accounts, &keys, limit, value).await?
            }
            Some(slot) => {
                let generation = self.stored_record(address).await?.generation;
                let keys: Vec<StateKey> = (0..=generation)
                    .rev()
                    .map(|generation| StateKey::Slot {
                        address: *address,
                        generation,
                        slot,
                    })
                    .collect();
                let value = HistoryValue::from_slot_operation;
                proven_writes(&self.storage, &keys, limit, value).await?
            }
        };
        Ok(History {
            address: *address,
            slot,
            table_roots: self.table_roots()?,
            entries,
            truncated,
        })
    }
}

/// The newest `limit` writes of `keys` in `table`, oldest first, each with its proofs (`value`
/// reads the written value from an operation), and whether older ones exist beyond them.
async fn proven_writes<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    keys: &[StateKey],
    limit: usize,
    value: fn(&StateKey, &Operation<V>) -> Option<HistoryValue>,
) -> Result<(Vec<HistoryEntry>, bool), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    let (found, truncated) = find_writes(table, keys, limit).await?;
    let mut entries = Vec::with_capacity(found.len());
    for (key, found) in found {
        entries.push(prove_write(table, &found, |operation| value(&key, operation)).await?);
    }
    Ok((entries, truncated))
}

/// The newest `limit` writes of `keys` (tried in order) in `table`, oldest first, and whether
/// older ones exist (or were pruned) beyond them.
async fn find_writes<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    keys: &[StateKey],
    limit: usize,
) -> Result<(Vec<(StateKey, Found)>, bool), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    let retained_from = table.retained()?.start;
    let mut found = Vec::new();
    let mut truncated = false;
    for key in keys {
        let remaining = limit - found.len();
        let records = table
            .history()
            .records(&key.digest(), remaining + 1)
            .await?;
        for record in records {
            let provable = record.block.start.saturating_sub(1) >= retained_from;
            if found.len() == limit || !provable {
                truncated = true;
                break;
            }
            found.push((*key, record));
        }
        if truncated {
            break;
        }
    }
    found.sort_by_key(|(_, found)| found.record.height);
    Ok((found, truncated))
}

/// One operation of `table`'s log, encoded with its proof against the table's root.
async fn prove_operation<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    location: u64,
) -> Result<(OperationProof, Operation<V>), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    let (proof, operation, chunks) = table.prove_operation(location).await?;
    Ok((
        OperationProof::encode(location, &proof, &operation, &chunks),
        operation,
    ))
}

/// A write found by the index, with the proofs of it and of its block's bounds; `value` reads
/// the written value from the operation (`None`: the operation does not write the key).
async fn prove_write<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    found: &Found,
    value: impl FnOnce(&Operation<V>) -> Option<HistoryValue>,
) -> Result<HistoryEntry, StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    let (record, block) = (&found.record, &found.block);
    let (write, operation) = prove_operation(table, record.location).await?;
    let value = value(&operation).ok_or(Corruption::NotAWrite(record.height))?;
    let (commit, _) = prove_operation(table, block.end).await?;
    let previous_commit = match block.start.checked_sub(1) {
        None => None,
        Some(location) => Some(prove_operation(table, location).await?.0),
    };
    Ok(HistoryEntry {
        block_number: alloy_primitives::U64::from(record.height.get()),
        transaction_index: record.tx.map(alloy_primitives::U64::from),
        transaction_hash: None,
        value,
        proof: WriteProof {
            previous_commit,
            write,
            commit,
        },
    })
}
