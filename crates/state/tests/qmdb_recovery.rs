//! The QMDB state store across restarts: reopening, a crash between the two tables' commits,
//! a missing table, and a data directory of another layout.

use alloy_primitives::U256;
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use trellis_state::{Account, QmdbStore, StateReader, StateStore};
use trellis_types::Height;

mod common;

use common::{addr, commit_next, config, contract, genesis, transfer};

#[test]
fn reopening_restores_height_root_and_contents_and_forgets_staged_blocks() {
    deterministic::Runner::default().start(|context| async move {
        let (root, unfinished) = {
            let mut store = QmdbStore::open(context.child("first"), &config())
                .await
                .unwrap();
            commit_next(&mut store, &genesis()).await;
            let root = commit_next(&mut store, &contract()).await;
            // Staged but never committed: must not survive.
            let staged = store.stage(None, Height(2), &transfer(1, 999)).unwrap();
            (root, staged.root())
        };
        let store = QmdbStore::open(context.child("second"), &config())
            .await
            .unwrap();
        assert_eq!(store.committed(), Some((Height(1), root)));
        assert_ne!(root, unfinished);
        assert_eq!(
            store.account(&addr(1)).unwrap().unwrap().balance,
            U256::from(1)
        );
        assert_eq!(
            store.storage(&addr(9), &U256::from(1)).unwrap(),
            U256::from(42)
        );
    });
}

/// A crash after one table committed a block and before the other did: open cuts the table
/// ahead back, so the store comes back at the older block, whole; the block then executes again
/// to the same root, and its writes are listed once in the histories.
#[test]
fn a_crash_between_the_two_tables_commits_comes_back_at_the_older_block() {
    use trellis_state::TableName;
    for synced in [TableName::Storage, TableName::Accounts] {
        deterministic::Runner::default().start(|context| async move {
            // Block 2 writes an account and a slot, so both tables change.
            let mut block = transfer(1, 999);
            block.set_account(
                addr(9),
                Account {
                    nonce: 2,
                    balance: U256::ZERO,
                    code_hash: trellis_state::EMPTY_CODE_HASH,
                },
            );
            block.set_storage(addr(9), U256::from(1), U256::from(43));
            let (committed, staged_root) = {
                let mut store = QmdbStore::open(context.child("first"), &config())
                    .await
                    .unwrap();
                commit_next(&mut store, &genesis()).await;
                let root = commit_next(&mut store, &contract()).await;
                let staged = store.stage(None, Height(2), &block).unwrap();
                store.apply(&staged).await.unwrap();
                store.sync_one_table(synced).await.unwrap();
                ((Height(1), root), staged.root())
            };
            let mut store = QmdbStore::open(context.child("second"), &config())
                .await
                .unwrap();
            assert_eq!(store.committed(), Some(committed), "{synced:?} synced");
            assert_eq!(
                store.storage(&addr(9), &U256::from(1)).unwrap(),
                U256::from(42)
            );
            assert_eq!(store.account(&addr(9)).unwrap().unwrap().nonce, 1);
            assert_eq!(commit_next(&mut store, &block).await, staged_root);
            let slot = store
                .history(&addr(9), Some(U256::from(1)), 10)
                .await
                .unwrap();
            let heights: Vec<u64> = slot.entries.iter().map(|e| e.block_number.to()).collect();
            assert_eq!(heights, [1, 2]);
            slot.verify(&staged_root).unwrap();
            drop(store);
            let store = QmdbStore::open(context.child("third"), &config())
                .await
                .unwrap();
            assert_eq!(store.committed(), Some((Height(2), staged_root)));
        });
    }
}

/// The sizes of the blobs of those of `partitions` that exist.
async fn blob_sizes<S: commonware_runtime::Storage>(
    storage: &S,
    partitions: &[&str],
) -> Vec<(String, Vec<u8>, u64)> {
    let mut sizes = Vec::new();
    for partition in partitions {
        let Ok(names) = storage.scan(partition).await else {
            continue;
        };
        for name in names {
            let (_, size) = storage.open(partition, &name).await.unwrap();
            sizes.push((partition.to_string(), name, size));
        }
    }
    sizes
}

/// A table whose partitions are gone is not a crash between commits: open refuses, naming both
/// tables, and leaves the other table as it was (not cut back to the missing one's block).
#[test]
fn a_missing_table_is_refused_and_the_other_left_as_it_was() {
    use commonware_runtime::Storage as _;
    deterministic::Runner::default().start(|context| async move {
        {
            let mut store = QmdbStore::open(context.child("first"), &config())
                .await
                .unwrap();
            commit_next(&mut store, &genesis()).await;
            commit_next(&mut store, &contract()).await;
            commit_next(&mut store, &transfer(1, 5)).await;
        }
        let table = |name: &str| {
            [
                "log",
                "log-blobs",
                "log-metadata",
                "merkle-blobs",
                "merkle-metadata",
            ]
            .map(|part| format!("test-state-{name}-{part}"))
        };
        let storage_partitions = table("storage");
        let mut removed = 0;
        for partition in &storage_partitions {
            removed += usize::from(context.remove(partition, None).await.is_ok());
        }
        assert!(
            removed > 0,
            "the storage table's partitions exist under these names"
        );
        let accounts_partitions = table("accounts");
        let accounts: Vec<&str> = accounts_partitions.iter().map(String::as_str).collect();
        let before = blob_sizes(&context, &accounts).await;
        assert!(!before.is_empty(), "the accounts table's log is found");
        let error = QmdbStore::open(context.child("second"), &config())
            .await
            .err()
            .expect("a store missing a table is refused")
            .to_string();
        assert!(
            error.contains("'test-state-accounts' holds block 2")
                && error.contains("'test-state-storage' holds nothing"),
            "{error}"
        );
        assert_eq!(blob_sizes(&context, &accounts).await, before);
    });
}

/// A data directory written with another state layout, or by a release before layouts were
/// recorded, is refused at open, naming the partition, rather than read as different state.
#[test]
fn a_store_of_another_layout_or_without_one_is_refused() {
    use commonware_runtime::Storage as _;
    use commonware_storage::metadata::{Config, Metadata};
    use commonware_utils::sequence::U64;
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("first"), &config())
            .await
            .unwrap();
        commit_next(&mut store, &genesis()).await;
        drop(store);
        let reopen = |label: &'static str| {
            let context = context.child(label);
            async move {
                match QmdbStore::open(context, &config()).await {
                    Ok(_) => String::new(),
                    Err(error) => error.to_string(),
                }
            }
        };
        assert_eq!(reopen("second").await, "", "this release's own store opens");

        let partition = "test-state-layout";
        let layout = Metadata::<_, U64, u64>::init(
            context.child("tamper"),
            Config {
                partition: partition.into(),
                codec_config: (),
            },
        )
        .await
        .unwrap();
        drop(layout.put_sync(U64::new(0), 7).await.unwrap());
        let error = reopen("third").await;
        assert!(
            error.contains("records state layout 7") && error.contains(partition),
            "{error}"
        );

        context.remove(partition, None).await.unwrap();
        let error = reopen("fourth").await;
        assert!(
            error.contains("no layout record") && error.contains(partition),
            "{error}"
        );
    });
}
