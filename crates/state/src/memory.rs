//! An in-memory [`StateStore`] whose root is a hash of its whole contents.

use crate::{Account, AccountChange, ChangeSet, StateError, StateReader};
use alloy_primitives::{Address, B256, Bytes, Keccak256, U256};
use std::collections::BTreeMap;
use trellis_types::{Height, StateRoot};

/// Domain separator of the root, so it can never equal another structure's hash.
const ROOT_DOMAIN: &[u8] = b"trellis.memory-state.v1";

/// State held in memory, for tests of execution and admission: no proofs, no durability, and a
/// root that rehashes every account. Nodes keep their state in [`crate::QmdbStore`].
///
/// Root: keccak-256 of the domain separator followed by, for each account in address order,
/// keccak-256(address ‖ nonce (8 B) ‖ balance (32 B) ‖ code hash ‖ storage hash), where the
/// storage hash is keccak-256 of every non-zero (slot ‖ value) pair in slot order.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    accounts: BTreeMap<Address, StoredAccount>,
    code: BTreeMap<B256, Bytes>,
    committed: Option<(Height, StateRoot)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct StoredAccount {
    account: Account,
    storage: BTreeMap<U256, U256>,
    storage_hash: B256,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of accounts that exist.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }
}

fn storage_hash(storage: &BTreeMap<U256, U256>) -> B256 {
    let mut hasher = Keccak256::new();
    for (slot, value) in storage {
        debug_assert!(!value.is_zero(), "zero slots are never stored");
        hasher.update(slot.to_be_bytes::<32>());
        hasher.update(value.to_be_bytes::<32>());
    }
    hasher.finalize()
}

fn leaf(address: &Address, account: &Account, storage_hash: &B256) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(address);
    hasher.update(account.nonce.to_be_bytes());
    hasher.update(account.balance.to_be_bytes::<32>());
    hasher.update(account.code_hash);
    hasher.update(storage_hash);
    hasher.finalize()
}

/// The account after `change`, given what it was before.
fn apply(before: Option<&StoredAccount>, change: &AccountChange) -> Option<StoredAccount> {
    let account = change.account?;
    let mut storage = match before {
        Some(stored) if !change.storage_wiped => stored.storage.clone(),
        _ => BTreeMap::new(),
    };
    for (slot, value) in &change.storage {
        if value.is_zero() {
            storage.remove(slot);
        } else {
            storage.insert(*slot, *value);
        }
    }
    let storage_hash = match before {
        Some(stored) if stored.storage == storage => stored.storage_hash,
        _ => storage_hash(&storage),
    };
    Some(StoredAccount {
        account,
        storage,
        storage_hash,
    })
}

fn root<'a>(accounts: impl Iterator<Item = (&'a Address, &'a StoredAccount)>) -> StateRoot {
    let mut hasher = Keccak256::new();
    hasher.update(ROOT_DOMAIN);
    let mut previous: Option<&Address> = None;
    for (address, stored) in accounts {
        assert!(previous < Some(address), "accounts hashed out of order");
        previous = Some(address);
        hasher.update(leaf(address, &stored.account, &stored.storage_hash));
    }
    StateRoot(hasher.finalize())
}

impl StateReader for MemoryStore {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        Ok(self.accounts.get(address).map(|stored| stored.account))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        Ok(self
            .accounts
            .get(address)
            .and_then(|stored| stored.storage.get(slot).copied())
            .unwrap_or_default())
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.code.get(code_hash).cloned())
    }
}

impl MemoryStore {
    /// The height and root of the last commit; `None` before genesis is committed.
    pub fn committed(&self) -> Option<(Height, StateRoot)> {
        self.committed
    }

    /// The height the next [`commit`](Self::commit) must carry.
    pub fn next_height(&self) -> Height {
        self.committed
            .map_or(Height::GENESIS, |(height, _)| height.next())
    }

    /// Applies the changes of the block at `height` and returns the new root.
    ///
    /// Refuses (leaving the store unchanged) unless `height` is [`next_height`](Self::next_height).
    pub fn commit(&mut self, height: Height, changes: &ChangeSet) -> Result<StateRoot, StateError> {
        let expected = self.next_height();
        if height != expected {
            return Err(StateError::NonSequentialCommit {
                expected,
                got: height,
            });
        }
        for (address, change) in changes.accounts() {
            match apply(self.accounts.get(address), change) {
                Some(stored) => self.accounts.insert(*address, stored),
                None => self.accounts.remove(address),
            };
        }
        for (hash, code) in changes.codes() {
            self.code.insert(*hash, code.clone());
        }
        let root = root(self.accounts.iter());
        self.committed = Some((height, root));
        Ok(root)
    }

    /// The root the store would have after committing `pending` in order, without writing.
    pub fn speculative_root(&self, pending: &[&ChangeSet]) -> Result<StateRoot, StateError> {
        let mut merged = ChangeSet::new();
        for changes in pending {
            merged.extend(changes);
        }
        let overrides: BTreeMap<&Address, Option<StoredAccount>> = merged
            .accounts()
            .map(|(address, change)| (address, apply(self.accounts.get(address), change)))
            .collect();
        let mut accounts: Vec<(&Address, &StoredAccount)> = self
            .accounts
            .iter()
            .filter(|(address, _)| !overrides.contains_key(address))
            .chain(
                overrides
                    .iter()
                    .filter_map(|(address, stored)| stored.as_ref().map(|s| (*address, s))),
            )
            .collect();
        accounts.sort_unstable_by_key(|(address, _)| *address);
        Ok(root(accounts.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Speculative;
    use std::sync::Arc;

    fn addr(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    fn genesis() -> ChangeSet {
        let mut set = ChangeSet::new();
        for n in 1..=3 {
            set.set_account(addr(n), Account::with_balance(U256::from(n)));
        }
        set
    }

    fn contract_change() -> ChangeSet {
        let mut set = ChangeSet::new();
        let code_hash = set.insert_code(Bytes::from_static(&[0x60, 0x00]));
        set.set_account(
            addr(9),
            Account {
                nonce: 1,
                balance: U256::ZERO,
                code_hash,
            },
        );
        set.set_storage(addr(9), U256::from(1), U256::from(42));
        set.delete_account(addr(2));
        set
    }

    #[test]
    fn commits_apply_changes_and_move_the_root() {
        let mut store = MemoryStore::new();
        let r0 = store.commit(Height(0), &genesis()).unwrap();
        let r1 = store.commit(Height(1), &contract_change()).unwrap();
        assert_ne!(r0, r1);
        assert_eq!(store.committed(), Some((Height(1), r1)));
        assert_eq!(store.account(&addr(2)).unwrap(), None);
        assert_eq!(
            store.storage(&addr(9), &U256::from(1)).unwrap(),
            U256::from(42)
        );
        let code_hash = store.account(&addr(9)).unwrap().unwrap().code_hash;
        assert_eq!(
            store.code(&code_hash).unwrap().unwrap().as_ref(),
            &[0x60, 0x00]
        );
    }

    #[test]
    fn heights_must_advance_by_one() {
        let mut store = MemoryStore::new();
        let err = store.commit(Height(1), &genesis()).unwrap_err();
        assert_eq!(
            err,
            StateError::NonSequentialCommit {
                expected: Height(0),
                got: Height(1)
            }
        );
        assert_eq!(store.committed(), None, "a refused commit changes nothing");
        store.commit(Height(0), &genesis()).unwrap();
        assert!(store.commit(Height(0), &genesis()).is_err());
    }

    #[test]
    fn root_depends_on_contents_not_history() {
        // The same final contents reached in one step or in two give the same root.
        let mut one = MemoryStore::new();
        let mut all = genesis();
        all.extend(&contract_change());
        let direct = one.commit(Height(0), &all).unwrap();

        let mut two = MemoryStore::new();
        two.commit(Height(0), &genesis()).unwrap();
        let stepped = two.commit(Height(1), &contract_change()).unwrap();
        assert_eq!(direct, stepped);
    }

    #[test]
    fn zero_writes_delete_slots() {
        let mut store = MemoryStore::new();
        store.commit(Height(0), &contract_change()).unwrap();
        let before = store.committed().unwrap().1;
        let mut clear = ChangeSet::new();
        clear.set_account(addr(9), store.account(&addr(9)).unwrap().unwrap());
        clear.set_storage(addr(9), U256::from(1), U256::ZERO);
        let after = store.commit(Height(1), &clear).unwrap();
        assert_ne!(before, after);
        assert_eq!(store.storage(&addr(9), &U256::from(1)).unwrap(), U256::ZERO);

        // And the root equals that of a store which never had the slot.
        let mut fresh = MemoryStore::new();
        let mut never = contract_change();
        never.set_storage(addr(9), U256::from(1), U256::ZERO);
        assert_eq!(fresh.commit(Height(0), &never).unwrap(), after);
    }

    #[test]
    fn speculative_root_matches_commit_and_writes_nothing() {
        let mut store = MemoryStore::new();
        store.commit(Height(0), &genesis()).unwrap();
        let pending = contract_change();
        let mut later = ChangeSet::new();
        later.set_account(addr(2), Account::with_balance(U256::from(77)));

        let predicted = store.speculative_root(&[&pending, &later]).unwrap();
        assert_eq!(store.committed().unwrap().0, Height(0));

        let view = Speculative::new(
            &store,
            vec![Arc::new(pending.clone()), Arc::new(later.clone())],
        );
        assert_eq!(
            view.account(&addr(2)).unwrap().unwrap().balance,
            U256::from(77)
        );
        assert_eq!(
            view.storage(&addr(9), &U256::from(1)).unwrap(),
            U256::from(42)
        );

        store.commit(Height(1), &pending).unwrap();
        assert_eq!(store.commit(Height(2), &later).unwrap(), predicted);
    }
}
