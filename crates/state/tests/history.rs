//! The history of accounts and slots on the QMDB store: every write listed with its block and
//! transaction, each proven against the state root; tampering fails; restarts keep it.

use alloy_primitives::{Address, Bytes, U64, U256};
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use trellis_state::{
    Account, ChangeSet, History, HistoryValue, ProofError, QmdbConfig, QmdbStore, StateRoot,
    StateStore,
};

const TOKEN: u8 = 9;
const HOLDER: u8 = 1;

fn addr(n: u8) -> Address {
    Address::repeat_byte(n)
}

fn config() -> QmdbConfig {
    let mut config = QmdbConfig::new("history");
    config.page_cache_bytes = 1 << 20;
    config
}

fn slot() -> U256 {
    U256::from(7)
}

fn genesis() -> ChangeSet {
    let mut set = ChangeSet::new();
    set.set_account(addr(HOLDER), Account::with_balance(U256::from(1_000)));
    let code_hash = set.insert_code(Bytes::from_static(&[0x60, 0x00]));
    set.set_account(
        addr(TOKEN),
        Account {
            nonce: 1,
            balance: U256::ZERO,
            code_hash,
        },
    );
    set.set_storage(addr(TOKEN), slot(), U256::from(100));
    set
}

/// Transaction `tx` of a block sets the token's slot to `value` and bumps the holder's nonce.
fn token_write(nonce: u64, tx: u32, value: u64) -> ChangeSet {
    let mut set = ChangeSet::new();
    let token = Account {
        nonce: 1,
        balance: U256::ZERO,
        code_hash: alloy_primitives::keccak256([0x60, 0x00]),
    };
    set.set_account(addr(TOKEN), token);
    set.set_storage(addr(TOKEN), slot(), U256::from(value));
    set.attribute(addr(TOKEN), tx, [slot()]);
    set.set_account(
        addr(HOLDER),
        Account {
            nonce,
            ..Account::with_balance(U256::from(1_000))
        },
    );
    set.attribute(addr(HOLDER), tx, []);
    set
}

/// Writes to other accounts, so that the store's floor walk moves older entries forward.
fn filler(block: u8) -> ChangeSet {
    let mut set = ChangeSet::new();
    for n in 0..20u8 {
        let address = Address::repeat_byte(100 + n);
        set.set_account(address, Account::with_balance(U256::from(block)));
        set.attribute(address, 0, []);
    }
    set
}

async fn commit<E: trellis_state::Runtime>(store: &mut QmdbStore<E>, changes: &ChangeSet) {
    let staged = store.stage(None, store.next_height(), changes).unwrap();
    store.commit(&staged).await.unwrap();
}

fn root<E: trellis_state::Runtime>(store: &QmdbStore<E>) -> StateRoot {
    store.committed().unwrap().1
}

/// Genesis, then five token writes (blocks 3, 6, 9, 12, 15 by transactions 0..5), each after
/// an empty block and a filler block, then 20 more filler blocks.
async fn build<E: trellis_state::Runtime>(store: &mut QmdbStore<E>) {
    commit(store, &genesis()).await;
    for i in 0..5u32 {
        // An empty block (no transactions) writes nothing and is indexed all the same.
        commit(store, &ChangeSet::new()).await;
        commit(store, &filler(i as u8)).await;
        commit(store, &token_write(u64::from(i) + 1, i, 200 + u64::from(i))).await;
    }
    for i in 0..20u8 {
        commit(store, &filler(50 + i)).await;
    }
}

fn slot_values(history: &History) -> Vec<(u64, Option<u64>, U256)> {
    history
        .entries
        .iter()
        .map(|entry| {
            let HistoryValue::Slot { value, .. } = entry.value else {
                panic!("a slot's history holds slot values: {:?}", entry.value)
            };
            (
                entry.block_number.to(),
                entry.transaction_index.map(|t| t.to()),
                value,
            )
        })
        .collect()
}

fn expected_slot_history() -> Vec<(u64, Option<u64>, U256)> {
    let mut expected = vec![(0, None, U256::from(100))];
    for i in 0..5u64 {
        expected.push((3 + 3 * i, Some(i), U256::from(200 + i)));
    }
    expected
}

#[test]
fn every_write_of_a_slot_is_listed_with_its_block_and_transaction_and_proven() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        build(&mut store).await;
        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();
        assert_eq!(slot_values(&history), expected_slot_history());
        assert!(!history.truncated);
        history.verify(&root(&store)).unwrap();

        // The holder's account: genesis, then each nonce bump.
        let account = store.history(&addr(HOLDER), None, 100).await.unwrap();
        let nonces: Vec<(u64, u64)> = account
            .entries
            .iter()
            .map(|entry| match entry.value {
                HistoryValue::Account { nonce, .. } => (entry.block_number.to(), nonce.to()),
                ref other => panic!("an account's history holds accounts: {other:?}"),
            })
            .collect();
        assert_eq!(
            nonces,
            vec![(0, 0), (3, 1), (6, 2), (9, 3), (12, 4), (15, 5)]
        );
        account.verify(&root(&store)).unwrap();

        // An account nobody wrote has an empty history.
        let none = store.history(&addr(77), None, 100).await.unwrap();
        assert!(none.entries.is_empty());
    });
}

#[test]
fn a_limit_keeps_the_newest_writes_and_says_so() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        build(&mut store).await;
        let history = store.history(&addr(TOKEN), Some(slot()), 2).await.unwrap();
        assert!(history.truncated);
        assert_eq!(slot_values(&history), expected_slot_history()[4..].to_vec());
        history.verify(&root(&store)).unwrap();
    });
}

#[test]
fn tampered_histories_fail_with_the_reason() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        build(&mut store).await;
        let root = root(&store);
        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();

        // A value that was never written.
        let mut forged = history.clone();
        forged.entries[2].value = HistoryValue::Slot {
            generation: U64::ZERO,
            value: U256::from(999_999),
        };
        let err = forged.verify(&root).unwrap_err();
        assert!(matches!(err, ProofError::Claim { .. }), "{err}");
        assert!(err.to_string().contains("another key or value"), "{err}");

        // A write moved to another block.
        let mut moved = history.clone();
        moved.entries[2].block_number = U64::from(7);
        let err = moved.verify(&root).unwrap_err();
        assert!(err.to_string().contains("not block 7's commit"), "{err}");

        // Another slot's history passed off as this one's.
        let mut other_key = history.clone();
        other_key.slot = Some(U256::from(8));
        let err = other_key.verify(&root).unwrap_err();
        assert!(matches!(err, ProofError::Claim { .. }), "{err}");

        // Entries out of order.
        let mut reordered = history.clone();
        reordered.entries.swap(1, 2);
        let err = reordered.verify(&root).unwrap_err();
        assert!(err.to_string().contains("go forward"), "{err}");

        // Another root.
        let mut other_root = root;
        other_root.0.0[0] ^= 1;
        let err = history.verify(&other_root).unwrap_err();
        assert!(matches!(err, ProofError::TableRoots { .. }), "{err}");
        assert!(
            err.to_string().contains("do not hash to state root"),
            "{err}"
        );
        // The storage table's root swapped for the accounts table's.
        let mut swapped_roots = history.clone();
        swapped_roots.table_roots.storage = history.table_roots.accounts;
        let err = swapped_roots.verify(&root).unwrap_err();
        assert!(matches!(err, ProofError::TableRoots { .. }), "{err}");

        // Damaged proof bytes: a flipped byte in the middle of a proof.
        let mut damaged = history.clone();
        let proof = &mut damaged.entries[3].proof.write.proof;
        let mut bytes = proof.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        *proof = Bytes::from(bytes);
        let err = damaged.verify(&root).unwrap_err();
        assert!(
            matches!(
                err,
                ProofError::Mismatch { .. }
                    | ProofError::Malformed { .. }
                    | ProofError::Claim { .. }
            ),
            "{err}"
        );

        // The proof of one write offered for another (a value the slot had at another block).
        let mut swapped = history.clone();
        swapped.entries[3].proof = history.entries[4].proof.clone();
        assert!(swapped.verify(&root).is_err());
    });
}

#[test]
fn history_survives_a_restart_and_new_blocks_extend_it() {
    deterministic::Runner::default().start(|context| async move {
        {
            let mut store = QmdbStore::open(context.child("first"), &config())
                .await
                .unwrap();
            build(&mut store).await;
        }
        let mut store = QmdbStore::open(context.child("second"), &config())
            .await
            .unwrap();
        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();
        assert_eq!(slot_values(&history), expected_slot_history());
        history.verify(&root(&store)).unwrap();

        commit(&mut store, &token_write(6, 0, 300)).await;
        let height = store.committed().unwrap().0.get();
        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();
        let mut expected = expected_slot_history();
        expected.push((height, Some(0), U256::from(300)));
        assert_eq!(slot_values(&history), expected);
        history.verify(&root(&store)).unwrap();
    });
}

#[test]
fn deletes_appear_as_zero_slots_and_deleted_accounts() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        commit(&mut store, &genesis()).await;
        // Block 1: transaction 3 clears the slot.
        commit(&mut store, &token_write(1, 3, 0)).await;
        // Block 2: transaction 0 destroys the token.
        let mut destroy = ChangeSet::new();
        destroy.delete_account(addr(TOKEN));
        destroy.attribute(addr(TOKEN), 0, []);
        commit(&mut store, &destroy).await;
        let root = root(&store);

        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();
        assert_eq!(
            slot_values(&history),
            vec![(0, None, U256::from(100)), (1, Some(3), U256::ZERO)]
        );
        history.verify(&root).unwrap();

        let account = store.history(&addr(TOKEN), None, 100).await.unwrap();
        let last = account.entries.last().unwrap();
        assert_eq!(last.block_number, U64::from(2));
        assert_eq!(
            last.value,
            HistoryValue::Deleted {
                storage_generation: U64::from(1)
            }
        );
        account.verify(&root).unwrap();
    });
}

#[test]
fn a_missing_or_damaged_history_index_is_refused_naming_it() {
    deterministic::Runner::default().start(|context| async move {
        {
            let mut store = QmdbStore::open(context.child("first"), &config())
                .await
                .unwrap();
            build(&mut store).await;
        }
        use commonware_runtime::Storage as _;
        // The blocks journal's files gone, its metadata left: damaged.
        context
            .remove("history-state-storage-history-blocks-blobs", None)
            .await
            .unwrap();
        let err = QmdbStore::open(context.child("second"), &config())
            .await
            .err()
            .expect("a damaged history index is refused");
        let message = err.to_string();
        assert!(message.contains("history-state-"), "{message}");
        assert!(message.contains("state history index"), "{message}");

        // Every history partition gone: the index covers nothing of the state.
        for partition in [
            "history-state-storage-history-blocks-metadata",
            "history-state-storage-history-writes-blobs",
            "history-state-storage-history-writes-metadata",
        ] {
            let _ = context.remove(partition, None).await;
        }
        let err = QmdbStore::open(context.child("third"), &config())
            .await
            .err()
            .expect("a state without its history index is refused");
        let message = err.to_string();
        assert!(message.contains("-state-storage-history-"), "{message}");
        assert!(
            message.contains("covers 0 block(s) but the state has 36"),
            "{message}"
        );
    });
}

#[test]
fn a_block_indexed_before_a_crash_is_listed_once_after_it_is_committed_again() {
    deterministic::Runner::default().start(|context| async move {
        {
            let mut store = QmdbStore::open(context.child("first"), &config())
                .await
                .unwrap();
            build(&mut store).await;
            // The next block is indexed and applied, but the state is never synced: a crash.
            let staged = store
                .stage(None, store.next_height(), &token_write(6, 4, 300))
                .unwrap();
            store.apply(&staged).await.unwrap();
        }
        let mut store = QmdbStore::open(context.child("second"), &config())
            .await
            .unwrap();
        let height = store.next_height();
        if height.get() == 36 {
            // The state came back without the block: the node executes it again.
            commit(&mut store, &token_write(6, 4, 300)).await;
        }
        let history = store
            .history(&addr(TOKEN), Some(slot()), 100)
            .await
            .unwrap();
        let mut expected = expected_slot_history();
        expected.push((36, Some(4), U256::from(300)));
        assert_eq!(slot_values(&history), expected);
        history.verify(&root(&store)).unwrap();
    });
}

#[test]
fn each_slot_is_attributed_to_its_own_transaction() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context, &config()).await.unwrap();
        commit(&mut store, &genesis()).await;
        let mut set = ChangeSet::new();
        set.set_account(addr(TOKEN), Account::with_balance(U256::ZERO));
        for n in 1..=6u64 {
            set.set_storage(addr(TOKEN), U256::from(n), U256::from(n * 10));
        }
        // Slots 1, 3 and 6 are left unattributed; a later transaction's attribution wins.
        set.attribute(
            addr(TOKEN),
            0,
            [U256::from(2), U256::from(4), U256::from(5)],
        );
        set.attribute(addr(TOKEN), 3, [U256::from(5)]);
        commit(&mut store, &set).await;
        let expected = [None, Some(0), None, Some(0), Some(3), None];
        for (n, tx) in (1..=6u64).zip(expected) {
            let history = store
                .history(&addr(TOKEN), Some(U256::from(n)), 10)
                .await
                .unwrap();
            let last = history.entries.last().expect("the slot was written");
            assert_eq!(last.block_number.to::<u64>(), 1);
            assert_eq!(
                last.transaction_index.map(|tx| tx.to::<u64>()),
                tx,
                "slot {n}"
            );
        }
    });
}
