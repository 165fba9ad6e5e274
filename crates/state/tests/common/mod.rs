//! What the state store's integration tests share: a small configuration, the accounts and
//! change sets they commit, and committing the next block.
#![allow(dead_code)] // each test file uses its own part

use alloy_primitives::{Address, Bytes, U256};
use trellis_state::{Account, ChangeSet, QmdbConfig, QmdbStore, StateStore};

pub fn addr(n: u8) -> Address {
    Address::repeat_byte(n)
}

pub fn config() -> QmdbConfig {
    let mut config = QmdbConfig::new("test");
    config.page_cache_bytes = 1 << 20;
    config
}

pub fn genesis() -> ChangeSet {
    let mut set = ChangeSet::new();
    for n in 1..=3 {
        set.set_account(addr(n), Account::with_balance(U256::from(n)));
    }
    set
}

/// A contract at address 9 with slot 1 = 42, and account 2 deleted.
pub fn contract() -> ChangeSet {
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

pub fn transfer(to: u8, balance: u64) -> ChangeSet {
    let mut set = ChangeSet::new();
    set.set_account(addr(to), Account::with_balance(U256::from(balance)));
    set
}

pub async fn commit_next<E>(
    store: &mut QmdbStore<E>,
    changes: &ChangeSet,
) -> trellis_types::StateRoot
where
    E: commonware_runtime::Storage
        + commonware_runtime::Clock
        + commonware_runtime::Metrics
        + commonware_runtime::Spawner,
{
    let staged = store.stage(None, store.next_height(), changes).unwrap();
    store.commit(&staged).await.unwrap()
}
