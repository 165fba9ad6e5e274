//! The state as of an earlier block, read through the history index: a key's value after block
//! `h` is its newest write at or before `h`, read back from the table's log.
//!
//! Nothing here is proven to the caller (the history with proofs is [`QmdbStore::history`]);
//! it serves read-only calls and balance queries at older blocks. A write whose operation was
//! pruned ([`super::QmdbConfig::keep_blocks`]) is refused rather than read as absent.

use super::{QmdbStore, corrupt};
use crate::backend::Runtime;
use crate::{
    Account, Corruption, Holds, Retention, StateError, StateReader,
    backend::Operation,
    entry::{StateKey, StateValue, slot_value},
    table::Table,
};
use alloy_primitives::{Address, B256, Bytes, U256};
use commonware_codec::Codec;
use commonware_storage::{
    journal::contiguous::Mutable,
    qmdb::any::{ValueEncoding, operation::Operation as Op, unordered::Update as KeyValue},
};
use trellis_types::Height;

/// The operation of `table`'s log that gave `key` its value after block `height`, if any.
async fn operation_at<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    key: &StateKey,
    height: Height,
) -> Result<Option<Operation<V>>, StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    let Some(record) = table.history().record_at(&key.digest(), height).await? else {
        return Ok(None);
    };
    if record.location < table.retained()?.start {
        return Err(StateError::NotRetained {
            height,
            reason: Retention::Pruned(record.height),
        });
    }
    let (_, operation, _) = table.prove_operation(record.location).await?;
    Ok(Some(operation))
}

impl<E: Runtime> QmdbStore<E> {
    /// Refuses a height after the last commit.
    fn check_past(&self, height: Height) -> Result<(), StateError> {
        match self.committed {
            Some((committed, _)) if height <= committed => Ok(()),
            committed => Err(StateError::NotRetained {
                height,
                reason: Retention::NotCommitted(Holds(committed.map(|(h, _)| h))),
            }),
        }
    }

    /// The account entry of `address` after block `height`: the account if it existed, and
    /// the generation of its storage.
    async fn entry_at(
        &self,
        address: &Address,
        height: Height,
    ) -> Result<(Option<Account>, u64), StateError> {
        self.check_past(height)?;
        let key = StateKey::Account(*address);
        Ok(match operation_at(&self.accounts, &key, height).await? {
            None | Some(Op::Delete(_)) => (None, 0),
            Some(Op::Update(KeyValue(
                _,
                StateValue::Account {
                    account,
                    generation,
                },
            ))) => (Some(account), generation),
            Some(Op::Update(KeyValue(_, StateValue::Retired { generation }))) => (None, generation),
            Some(Op::Update(KeyValue(_, other))) => return Err(corrupt(&key, &other)),
            Some(Op::CommitFloor(..)) => {
                return Err(Corruption::CommitAsWrite(key).into());
            }
        })
    }

    /// The account at `address` after block `height`.
    pub async fn account_at(
        &self,
        address: &Address,
        height: Height,
    ) -> Result<Option<Account>, StateError> {
        Ok(self.entry_at(address, height).await?.0)
    }

    /// A storage slot of `address` after block `height` (zero if unwritten, or if the account
    /// did not exist then).
    pub async fn storage_at(
        &self,
        address: &Address,
        slot: &U256,
        height: Height,
    ) -> Result<U256, StateError> {
        let (account, generation) = self.entry_at(address, height).await?;
        if account.is_none() {
            return Ok(U256::ZERO);
        }
        let key = StateKey::Slot {
            address: *address,
            generation,
            slot: *slot,
        };
        Ok(match operation_at(&self.storage, &key, height).await? {
            Some(Op::Update(KeyValue(_, word))) => slot_value(&word),
            None | Some(Op::Delete(_) | Op::CommitFloor(..)) => U256::ZERO,
        })
    }

    /// A read view of the state after block `height` (at most the last commit).
    pub fn at(&self, height: Height) -> PastState<'_, E> {
        PastState {
            store: self,
            height,
        }
    }
}

/// The state after an earlier block, for the EVM (see [`QmdbStore::at`]).
pub struct PastState<'a, E: Runtime> {
    store: &'a QmdbStore<E>,
    height: Height,
}

impl<E: Runtime> StateReader for PastState<'_, E> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        super::block_on(self.store.account_at(address, self.height))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        super::block_on(self.store.storage_at(address, slot, self.height))
    }

    /// Code is stored by its hash and never changes under it: the latest state has it.
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.store.code(code_hash)
    }
}
