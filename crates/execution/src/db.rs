//! The database revm runs on: committed (or speculative) state, plus the changes of the
//! transactions already executed in this block.

use crate::context::BlockContext;
use alloy_primitives::{Address, B256};
use revm::{
    Database, DatabaseCommit,
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{AddressMap, KECCAK_EMPTY, StorageKey, StorageValue},
    state::{Account as EvmAccount, AccountInfo},
};
use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
};
use trellis_governance::SYSTEM_ADDRESSES;
use trellis_state::{Account, ChangeSet, Corruption, StateError, StateReader};
use trellis_types::Height;

/// A state read failure surfaced through revm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub StateError);

impl DBErrorMarker for DbError {}

/// Reads go to this block's changes first, then to the parent state; commits from revm land in
/// the block's [`ChangeSet`], which is the block's whole effect on state.
pub(crate) struct BlockDb<'a, R: ?Sized> {
    parent: &'a R,
    context: &'a BlockContext,
    changes: ChangeSet,
    /// The index in the block of the transaction whose state revm commits next: what each
    /// change is attributed to, for state history.
    pub(crate) tx_index: u32,
    /// Analysed bytecode by hash, so each contract is analysed once per block, not per call.
    code_cache: BTreeMap<B256, Bytecode>,
    /// The parent's slots of the system accounts read so far: the rules are read for every
    /// transaction, mostly the same slots, and the parent does not change during the block.
    system_slots: RefCell<HashMap<(Address, StorageKey), StorageValue>>,
}

impl<'a, R: StateReader + ?Sized> BlockDb<'a, R> {
    pub(crate) fn new(parent: &'a R, context: &'a BlockContext) -> Self {
        Self {
            parent,
            context,
            changes: ChangeSet::new(),
            tx_index: 0,
            code_cache: BTreeMap::new(),
            system_slots: RefCell::new(HashMap::new()),
        }
    }

    fn parent_storage(
        &self,
        address: &Address,
        slot: &StorageKey,
    ) -> Result<StorageValue, StateError> {
        if !SYSTEM_ADDRESSES.contains(address) {
            return self.parent.storage(address, slot);
        }
        if let Some(value) = self.system_slots.borrow().get(&(*address, *slot)) {
            return Ok(*value);
        }
        let value = self.parent.storage(address, slot)?;
        self.system_slots
            .borrow_mut()
            .insert((*address, *slot), value);
        Ok(value)
    }

    pub(crate) fn into_changes(self) -> ChangeSet {
        self.changes
    }

    fn current_account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        match self.changes.account(address) {
            Some(change) => Ok(change.account),
            None => self.parent.account(address),
        }
    }

    /// Writes a slot of an existing system account for the transaction being committed (the
    /// rules' own bookkeeping, which no EVM code makes).
    pub(crate) fn write_system_slot(
        &mut self,
        address: Address,
        slot: StorageKey,
        value: StorageValue,
    ) -> Result<(), StateError> {
        if self.changes.account(&address).is_none() {
            let account = self.current_account(&address)?.ok_or(StateError::Corrupt(
                Corruption::MissingSystemAccount(address),
            ))?;
            self.changes.set_account(address, account);
        }
        self.changes.set_storage(address, slot, value);
        self.changes.attribute(address, self.tx_index, [slot]);
        Ok(())
    }

    /// Moves `value` from `from` to `to` (both existing) for the transaction being committed:
    /// a held transfer's value, from its recipient into escrow.
    pub(crate) fn move_value(
        &mut self,
        from: Address,
        to: Address,
        value: StorageValue,
    ) -> Result<(), StateError> {
        let missing = |address| StateError::Corrupt(Corruption::MissingSystemAccount(address));
        let mut source = self.current_account(&from)?.ok_or(missing(from))?;
        let mut target = self.current_account(&to)?.ok_or(missing(to))?;
        source.balance = source
            .balance
            .checked_sub(value)
            .expect("the recipient of a held transfer has just received its value");
        target.balance += value;
        self.changes.set_account(from, source);
        self.changes.set_account(to, target);
        self.changes.attribute(from, self.tx_index, []);
        self.changes.attribute(to, self.tx_index, []);
        Ok(())
    }

    /// Folds one transaction's state into the block's changes.
    fn commit_account(&mut self, address: Address, account: EvmAccount) {
        if !account.is_touched() {
            return;
        }
        // EIP-161: a touched account left empty ceases to exist; so does a self-destructed one.
        if account.is_selfdestructed() || account.is_empty() {
            self.changes.delete_account(address);
            self.changes.attribute(address, self.tx_index, []);
            return;
        }
        if account.is_created() {
            // A contract created at this address starts with no storage.
            self.changes.wipe_storage(address);
            if let Some(code) = account.info.code.as_ref().filter(|c| !c.is_empty()) {
                let hash = self.changes.insert_code(code.original_bytes());
                assert_eq!(
                    hash, account.info.code_hash,
                    "code hash mismatch for {address}"
                );
                self.code_cache.insert(hash, code.clone());
            }
        }
        self.changes.set_account(
            address,
            Account {
                nonce: account.info.nonce,
                balance: account.info.balance,
                code_hash: account.info.code_hash,
            },
        );
        let mut written = Vec::new();
        for (slot, value) in account.changed_storage_slots() {
            self.changes
                .set_storage(address, *slot, value.present_value());
            written.push(*slot);
        }
        self.changes.attribute(address, self.tx_index, written);
    }
}

impl<R: StateReader + ?Sized> Database for BlockDb<'_, R> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.current_account(&address)?.map(|account| AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            // Loaded on demand through `code_by_hash`.
            code: None,
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.code_cache.get(&code_hash) {
            return Ok(code.clone());
        }
        let raw = match self.changes.code(&code_hash) {
            Some(raw) => raw.clone(),
            None => (self.parent.code(&code_hash)?)
                .ok_or(StateError::Corrupt(Corruption::MissingCode(code_hash)))?,
        };
        // Deployed code never starts with 0xEF (EIP-3541), so a decode failure means the store
        // returned something it was never given.
        let code = Bytecode::new_raw_checked(raw)
            .map_err(|_| StateError::Corrupt(Corruption::InvalidCode(code_hash)))?;
        self.code_cache.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, slot: StorageKey) -> Result<StorageValue, DbError> {
        Ok(StateReader::storage(self, &address, &slot)?)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        Ok(self
            .context
            .ancestors
            .get(&Height(number))
            .map_or(B256::ZERO, |hash| hash.0))
    }
}

/// The state as the block's next transaction sees it: what the rules outside the EVM (the
/// registry's) read, so a change earlier in the block counts for the transactions after it.
impl<R: StateReader + ?Sized> StateReader for BlockDb<'_, R> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.current_account(address)
    }

    fn storage(&self, address: &Address, slot: &StorageKey) -> Result<StorageValue, StateError> {
        match self
            .changes
            .account(address)
            .and_then(|change| change.slot(slot))
        {
            Some(value) => Ok(value),
            None => self.parent_storage(address, slot),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<alloy_primitives::Bytes>, StateError> {
        match self.changes.code(code_hash) {
            Some(code) => Ok(Some(code.clone())),
            None => self.parent.code(code_hash),
        }
    }
}

impl<R: StateReader + ?Sized> DatabaseCommit for BlockDb<'_, R> {
    fn commit(&mut self, changes: AddressMap<EvmAccount>) {
        // Sorted, so the order of writes never depends on the hash map's.
        let mut sorted: Vec<(Address, EvmAccount)> = changes.into_iter().collect();
        sorted.sort_unstable_by_key(|(address, _)| *address);
        for (address, account) in sorted {
            self.commit_account(address, account);
        }
    }
}
