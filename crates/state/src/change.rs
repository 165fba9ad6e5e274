//! The changes one block makes to the world state.

use crate::EMPTY_CODE_HASH;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use std::collections::BTreeMap;

/// The part of an account that is not storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Account {
    pub nonce: u64,
    pub balance: U256,
    /// keccak-256 of the account's code; [`EMPTY_CODE_HASH`] without code.
    pub code_hash: B256,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: EMPTY_CODE_HASH,
        }
    }
}

impl Account {
    /// An externally owned account holding `balance`.
    pub fn with_balance(balance: U256) -> Self {
        Self {
            balance,
            ..Self::default()
        }
    }

    /// Empty in the sense of EIP-161: no nonce, no balance, no code.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance.is_zero() && self.code_hash == EMPTY_CODE_HASH
    }
}

/// What a block did to one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The account afterwards, or `None` if it no longer exists.
    pub account: Option<Account>,
    /// All storage the account had before this change was dropped (self-destruct, or a
    /// contract created at the address).
    pub storage_wiped: bool,
    /// Slots written afterwards; a zero value deletes the slot.
    pub storage: BTreeMap<U256, U256>,
    /// Which transaction of the block (by index) last changed the account, if one did; changes
    /// made outside transactions (genesis allocations) have none. Recorded for history.
    pub written_by: Option<u32>,
    /// Which transaction of the block last wrote each of `storage`'s slots.
    pub slots_written_by: BTreeMap<U256, u32>,
}

impl AccountChange {
    /// What this change says about a slot, or `None` if the answer lies in older state.
    pub fn slot(&self, slot: &U256) -> Option<U256> {
        match self.storage.get(slot) {
            Some(value) => Some(*value),
            None if self.storage_wiped || self.account.is_none() => Some(U256::ZERO),
            None => None,
        }
    }
}

/// The state changes of one block (or of any run of consecutive blocks, after [`extend`]).
///
/// [`extend`]: ChangeSet::extend
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    accounts: BTreeMap<Address, AccountChange>,
    code: BTreeMap<B256, Bytes>,
}

impl ChangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.code.is_empty()
    }

    /// Sets an account's nonce, balance and code hash, keeping its storage.
    pub fn set_account(&mut self, address: Address, account: Account) {
        self.accounts.entry(address).or_default().account = Some(account);
    }

    /// Removes an account and all its storage.
    pub fn delete_account(&mut self, address: Address) {
        let change = self.accounts.entry(address).or_default();
        change.account = None;
        change.storage_wiped = true;
        change.storage.clear();
        change.slots_written_by.clear();
    }

    /// Drops every storage slot the account had before (a contract created at the address).
    pub fn wipe_storage(&mut self, address: Address) {
        let change = self.accounts.entry(address).or_default();
        change.storage_wiped = true;
        change.storage.clear();
        change.slots_written_by.clear();
    }

    /// Writes one storage slot (zero deletes it).
    ///
    /// # Panics
    /// Unless [`set_account`](Self::set_account) gave the account in this change set: storage
    /// of an account that does not exist afterwards is a bug in the caller, and keeping it
    /// silently would corrupt state.
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        let change = self
            .accounts
            .get_mut(&address)
            .filter(|change| change.account.is_some())
            .unwrap_or_else(|| panic!("storage written to account {address} that is not set"));
        change.storage.insert(slot, value);
    }

    /// Records that transaction `tx` of the block was the last to change `address` and the given
    /// slots of it (what [`QmdbStore`](crate::QmdbStore)'s history attributes each value to).
    pub fn attribute(&mut self, address: Address, tx: u32, slots: impl IntoIterator<Item = U256>) {
        let change = self.accounts.entry(address).or_default();
        change.written_by = Some(tx);
        change
            .slots_written_by
            .extend(slots.into_iter().map(|slot| (slot, tx)));
    }

    /// Stores contract code, keyed by its hash.
    pub fn insert_code(&mut self, code: Bytes) -> B256 {
        let hash = keccak256(&code);
        self.code.insert(hash, code);
        hash
    }

    /// The change to one account, if this set touches it.
    pub fn account(&self, address: &Address) -> Option<&AccountChange> {
        self.accounts.get(address)
    }

    /// Code added by this set.
    pub fn code(&self, hash: &B256) -> Option<&Bytes> {
        self.code.get(hash)
    }

    /// Touched accounts, in address order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &AccountChange)> {
        self.accounts.iter()
    }

    /// Added code, in hash order.
    pub fn codes(&self) -> impl Iterator<Item = (&B256, &Bytes)> {
        self.code.iter()
    }

    /// Applies `later` on top of `self`, as if both blocks ran in sequence.
    pub fn extend(&mut self, later: &ChangeSet) {
        for (address, change) in &later.accounts {
            let merged = self.accounts.entry(*address).or_default();
            if change.storage_wiped {
                merged.storage_wiped = true;
                merged.storage.clear();
                merged.slots_written_by.clear();
            }
            merged.account = change.account;
            merged
                .storage
                .extend(change.storage.iter().map(|(k, v)| (*k, *v)));
            merged.written_by = change.written_by.or(merged.written_by);
            merged
                .slots_written_by
                .extend(change.slots_written_by.iter().map(|(k, v)| (*k, *v)));
        }
        self.code
            .extend(later.code.iter().map(|(k, v)| (*k, v.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    #[test]
    fn slot_answers_follow_wipes_and_deletes() {
        let mut set = ChangeSet::new();
        set.set_account(addr(1), Account::with_balance(U256::from(5)));
        set.set_storage(addr(1), U256::from(1), U256::from(10));
        let change = set.account(&addr(1)).unwrap();
        assert_eq!(change.slot(&U256::from(1)), Some(U256::from(10)));
        assert_eq!(change.slot(&U256::from(2)), None, "older state decides");

        set.wipe_storage(addr(1));
        assert_eq!(
            set.account(&addr(1)).unwrap().slot(&U256::from(1)),
            Some(U256::ZERO)
        );

        set.delete_account(addr(2));
        assert_eq!(
            set.account(&addr(2)).unwrap().slot(&U256::from(7)),
            Some(U256::ZERO)
        );
    }

    #[test]
    fn extend_applies_later_on_top() {
        let mut first = ChangeSet::new();
        first.set_account(addr(1), Account::with_balance(U256::from(1)));
        first.set_storage(addr(1), U256::from(1), U256::from(1));
        first.set_storage(addr(1), U256::from(2), U256::from(2));

        let mut second = ChangeSet::new();
        second.wipe_storage(addr(1));
        second.set_account(addr(1), Account::with_balance(U256::from(2)));
        second.set_storage(addr(1), U256::from(3), U256::from(3));

        first.extend(&second);
        let change = first.account(&addr(1)).unwrap();
        assert_eq!(change.account.unwrap().balance, U256::from(2));
        assert!(change.storage_wiped);
        assert_eq!(change.slot(&U256::from(1)), Some(U256::ZERO));
        assert_eq!(change.slot(&U256::from(3)), Some(U256::from(3)));
    }

    #[test]
    #[should_panic(expected = "that is not set")]
    fn storage_of_deleted_account_is_a_bug() {
        let mut set = ChangeSet::new();
        set.delete_account(addr(1));
        set.set_storage(addr(1), U256::from(1), U256::from(1));
    }
}
