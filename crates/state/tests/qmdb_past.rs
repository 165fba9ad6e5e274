//! The QMDB state store read as of earlier blocks, through the history index, and what it
//! refuses once history is pruned.

use alloy_primitives::U256;
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use trellis_state::{Account, ChangeSet, QmdbStore, StateError, StateReader};
use trellis_types::Height;

mod common;

use common::{addr, commit_next, config, contract, genesis, transfer};

/// The state after earlier blocks, read through the history index: every value as it was, with
/// storage wiped and accounts deleted and created again in between.
#[test]
fn the_state_after_earlier_blocks_reads_as_it_was() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        commit_next(&mut store, &genesis()).await; // block 0
        commit_next(&mut store, &contract()).await; // 1: slot 1 = 42, account 2 deleted
        let contract_account = store.account(&addr(9)).unwrap().unwrap();
        let mut recreate = ChangeSet::new(); // 2: storage wiped, slot 2 = 5
        recreate.wipe_storage(addr(9));
        recreate.set_account(addr(9), contract_account);
        recreate.set_storage(addr(9), U256::from(2), U256::from(5));
        commit_next(&mut store, &recreate).await;
        let mut delete = ChangeSet::new(); // 3: deleted
        delete.delete_account(addr(9));
        commit_next(&mut store, &delete).await;
        let mut again = ChangeSet::new(); // 4: created again, slot 3 = 8
        again.wipe_storage(addr(9));
        again.set_account(addr(9), contract_account);
        again.set_storage(addr(9), U256::from(3), U256::from(8));
        commit_next(&mut store, &again).await;
        commit_next(&mut store, &transfer(1, 77)).await; // 5

        let balance = |n: u8, h: u64| {
            let store = &store;
            async move {
                store
                    .account_at(&addr(n), Height(h))
                    .await
                    .unwrap()
                    .map(|a| a.balance)
            }
        };
        assert_eq!(balance(2, 0).await, Some(U256::from(2)));
        assert_eq!(balance(2, 1).await, None, "deleted in block 1");
        assert_eq!(balance(1, 4).await, Some(U256::from(1)));
        assert_eq!(balance(1, 5).await, Some(U256::from(77)));
        assert_eq!(balance(9, 0).await, None, "not created yet");

        let slot = |s: u64, h: u64| {
            let store = &store;
            async move {
                store
                    .storage_at(&addr(9), &U256::from(s), Height(h))
                    .await
                    .unwrap()
            }
        };
        let expected = [
            // (slot, block, value)
            (1, 0, 0),
            (1, 1, 42),
            (1, 2, 0),
            (2, 2, 5),
            (2, 3, 0),
            (2, 4, 0),
            (3, 3, 0),
            (3, 4, 8),
            (3, 5, 8),
        ];
        for (s, h, value) in expected {
            assert_eq!(
                slot(s, h).await,
                U256::from(value),
                "slot {s} after block {h}"
            );
        }
        // The EVM's view of a past block.
        let past = store.at(Height(1));
        assert_eq!(
            past.storage(&addr(9), &U256::from(1)).unwrap(),
            U256::from(42)
        );
        assert_eq!(past.account(&addr(9)).unwrap(), Some(contract_account));
        assert!(past.code(&contract_account.code_hash).unwrap().is_some());
        // After the last commit there is nothing to read.
        assert!(matches!(
            store.account_at(&addr(1), Height(6)).await,
            Err(StateError::NotRetained { .. })
        ));
    });
}

#[test]
fn pruned_history_is_refused_at_earlier_blocks_not_read_as_absent() {
    deterministic::Runner::default().start(|context| async move {
        let mut config = config();
        config.items_per_section = std::num::NonZeroU64::new(16).unwrap();
        config.keep_blocks = Some(3);
        let mut store = QmdbStore::open(context.child("pruned"), &config)
            .await
            .unwrap();
        commit_next(&mut store, &genesis()).await;
        for block in 1..=60u64 {
            let mut changes = ChangeSet::new();
            for n in 1..=3 {
                changes.set_account(addr(n), Account::with_balance(U256::from(block * n as u64)));
            }
            commit_next(&mut store, &changes).await;
        }
        assert!(store.retained_operations().unwrap().0.start > 0, "pruned");
        assert_eq!(
            store
                .account_at(&addr(1), Height(59))
                .await
                .unwrap()
                .unwrap()
                .balance,
            U256::from(59)
        );
        let error = store.account_at(&addr(1), Height(2)).await.unwrap_err();
        assert!(error.to_string().contains("was pruned"), "{error}");
    });
}
