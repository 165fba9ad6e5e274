//! The QMDB state store on the deterministic runtime's storage: staging, commits, forks,
//! dropped storage, proofs, history retention and the roots of known blocks. Restarts and
//! crashes are in `qmdb_recovery.rs`, reads at earlier blocks in `qmdb_past.rs`.

use alloy_primitives::{Bytes, U256};
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use trellis_state::{
    Account, ChangeSet, QmdbConfig, QmdbStore, StateError, StateReader, StateStore,
};
use trellis_types::Height;

mod common;

use common::{addr, commit_next, config, contract, genesis, transfer};

#[test]
fn commits_apply_changes_and_keep_the_staged_root() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        assert_eq!(store.committed(), None);
        let staged = store.stage(None, Height(0), &genesis()).unwrap();
        let r0 = store.commit(&staged).await.unwrap();
        assert_eq!(r0, staged.root());
        let r1 = commit_next(&mut store, &contract()).await;
        assert_ne!(r0, r1);
        assert_eq!(store.committed(), Some((Height(1), r1)));
        assert_eq!(store.account(&addr(2)).unwrap(), None);
        assert_eq!(
            store.account(&addr(3)).unwrap().unwrap().balance,
            U256::from(3)
        );
        assert_eq!(
            store.storage(&addr(9), &U256::from(1)).unwrap(),
            U256::from(42)
        );
        assert_eq!(store.storage(&addr(9), &U256::from(2)).unwrap(), U256::ZERO);
        let code_hash = store.account(&addr(9)).unwrap().unwrap().code_hash;
        assert_eq!(
            store.code(&code_hash).unwrap().unwrap().as_ref(),
            &[0x60, 0x00]
        );
    });
}

#[test]
fn heights_must_follow_the_parent() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        let err = store.stage(None, Height(1), &genesis()).unwrap_err();
        assert_eq!(
            err,
            StateError::NonSequentialCommit {
                expected: Height(0),
                got: Height(1)
            }
        );
        let g = store.stage(None, Height(0), &genesis()).unwrap();
        let a = store.stage(Some(&g), Height(1), &contract()).unwrap();
        // A child cannot be committed before its parent.
        assert!(store.commit(&a).await.is_err());
        assert_eq!(store.committed(), None, "a refused commit changes nothing");
        store.commit(&g).await.unwrap();
        assert!(store.commit(&g).await.is_err(), "a height commits once");
        store.commit(&a).await.unwrap();
        assert_eq!(store.committed().unwrap().0, Height(1));
    });
}

#[test]
fn staged_chains_predict_their_roots_and_losing_forks_are_refused() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        commit_next(&mut store, &genesis()).await;
        let before = store.committed().unwrap();

        // Two chains of unfinalized blocks on the committed tip: a (then b on a), and a fork c.
        let a = store.stage(None, Height(1), &contract()).unwrap();
        let b = store.stage(Some(&a), Height(2), &transfer(1, 100)).unwrap();
        let c = store.stage(None, Height(1), &transfer(3, 7)).unwrap();
        assert_ne!(a.root(), c.root());
        assert_eq!(store.committed(), Some(before), "staging writes nothing");
        assert_eq!(
            store.account(&addr(1)).unwrap().unwrap().balance,
            U256::from(1)
        );

        assert_eq!(store.commit(&a).await.unwrap(), a.root());
        // The fork lost: its batch cannot be applied any more, and the store is intact.
        assert!(store.commit(&c).await.is_err());
        assert_eq!(store.commit(&b).await.unwrap(), b.root());
        assert_eq!(
            store.account(&addr(1)).unwrap().unwrap().balance,
            U256::from(100)
        );
        assert_eq!(
            store.account(&addr(3)).unwrap().unwrap().balance,
            U256::from(3)
        );
    });
}

#[test]
fn dropped_storage_is_gone_and_recreated_accounts_start_empty() {
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        commit_next(&mut store, &contract()).await;
        let contract_account = store.account(&addr(9)).unwrap().unwrap();

        // Created again where it was: old storage is dropped, new storage written.
        let mut recreate = ChangeSet::new();
        recreate.wipe_storage(addr(9));
        recreate.set_account(addr(9), contract_account);
        recreate.set_storage(addr(9), U256::from(2), U256::from(5));
        commit_next(&mut store, &recreate).await;
        assert_eq!(store.storage(&addr(9), &U256::from(1)).unwrap(), U256::ZERO);
        assert_eq!(
            store.storage(&addr(9), &U256::from(2)).unwrap(),
            U256::from(5)
        );

        // Deleted, then created again in a later block: nothing of the old storage survives.
        let mut delete = ChangeSet::new();
        delete.delete_account(addr(9));
        commit_next(&mut store, &delete).await;
        assert_eq!(store.account(&addr(9)).unwrap(), None);
        assert_eq!(store.storage(&addr(9), &U256::from(2)).unwrap(), U256::ZERO);
        let mut again = ChangeSet::new();
        again.wipe_storage(addr(9));
        again.set_account(addr(9), contract_account);
        commit_next(&mut store, &again).await;
        assert_eq!(store.storage(&addr(9), &U256::from(2)).unwrap(), U256::ZERO);

        // Writing zero deletes a slot.
        let mut set = ChangeSet::new();
        set.set_account(addr(9), contract_account);
        set.set_storage(addr(9), U256::from(3), U256::from(8));
        commit_next(&mut store, &set).await;
        let mut clear = ChangeSet::new();
        clear.set_account(addr(9), contract_account);
        clear.set_storage(addr(9), U256::from(3), U256::ZERO);
        commit_next(&mut store, &clear).await;
        assert_eq!(store.storage(&addr(9), &U256::from(3)).unwrap(), U256::ZERO);
    });
}

#[test]
fn equal_histories_give_equal_roots() {
    deterministic::Runner::default().start(|context| async move {
        let mut roots = Vec::new();
        for (name, prefix) in [("one", "one"), ("two", "two")] {
            let mut store = QmdbStore::open(context.child(name), &QmdbConfig::new(prefix))
                .await
                .unwrap();
            commit_next(&mut store, &genesis()).await;
            commit_next(&mut store, &contract()).await;
            roots.push(commit_next(&mut store, &transfer(3, 30)).await);
        }
        assert_eq!(roots[0], roots[1]);
    });
}

/// On the tokio runtime, with a state far larger than its page cache, reads that miss the cache
/// go to disk from inside a synchronous call on a runtime thread. They must complete (they once
/// spun forever on tokio's cooperative budget).
#[test]
fn reads_beyond_the_page_cache_complete_on_the_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_path_buf();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = commonware_runtime::tokio::Config::new()
            .with_worker_threads(1)
            .with_storage_directory(storage);
        commonware_runtime::tokio::Runner::new(runtime).start(|context| async move {
            let mut config = QmdbConfig::new("small-cache");
            config.page_cache_bytes = 64 << 10;
            let mut store = QmdbStore::open(context, &config).await.unwrap();
            let contract_account = Account::with_balance(U256::from(1));
            let mut populate = ChangeSet::new();
            populate.set_account(addr(9), contract_account);
            for slot in 0..20_000u64 {
                populate.set_storage(addr(9), U256::from(slot), U256::from(slot + 1));
            }
            commit_next(&mut store, &populate).await;
            for round in 0..3u64 {
                let mut update = ChangeSet::new();
                update.set_account(addr(9), contract_account);
                for slot in (round..20_000).step_by(7) {
                    update.set_storage(addr(9), U256::from(slot), U256::from(round + 100));
                }
                commit_next(&mut store, &update).await;
            }
            assert_eq!(
                store.storage(&addr(9), &U256::from(7)).unwrap(),
                U256::from(100)
            );
        });
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("updates of a state larger than the page cache did not finish in 120 s");
}

#[test]
fn proofs_verify_against_the_root_and_tampering_fails() {
    use trellis_state::ProofError;
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        commit_next(&mut store, &genesis()).await;
        let root = commit_next(&mut store, &contract()).await;

        let proof = store.prove(&addr(9), &[U256::from(1)]).await.unwrap();
        assert_eq!(proof.account.as_ref().unwrap().nonce.to::<u64>(), 1);
        assert_eq!(proof.storage[0].value, U256::from(42));
        proof.verify(&root).unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        let parsed: trellis_state::StateProof = serde_json::from_str(&json).unwrap();
        parsed.verify(&root).unwrap();

        let mismatch = |result: Result<(), ProofError>| {
            assert!(
                matches!(result, Err(ProofError::Mismatch { .. })),
                "{result:?}"
            )
        };
        // A tampered value.
        let mut value = proof.clone();
        value.storage[0].value = U256::from(43);
        mismatch(value.verify(&root));
        let mut balance = proof.clone();
        balance.account.as_mut().unwrap().balance = U256::from(1_000_000);
        mismatch(balance.verify(&root));
        // A tampered key: the same proof claimed for another slot, or another address.
        let mut slot = proof.clone();
        slot.storage[0].key = U256::from(2);
        mismatch(slot.verify(&root));
        let mut address = proof.clone();
        address.address = addr(8);
        mismatch(address.verify(&root));
        // A tampered root: the proof's table roots do not hash to it.
        let mut other_root = root;
        other_root.0.0[0] ^= 1;
        let err = proof.verify(&other_root).unwrap_err();
        assert!(matches!(err, ProofError::TableRoots { .. }), "{err}");
        assert!(
            err.to_string().contains("do not hash to state root"),
            "{err}"
        );
        // A tampered table root.
        let mut table_root = proof.clone();
        table_root.table_roots.storage.0[0] ^= 1;
        assert!(matches!(
            table_root.verify(&root),
            Err(ProofError::TableRoots { .. })
        ));
        // Damaged proof bytes.
        let mut damaged = proof.clone();
        damaged.storage[0].proof = Some(Bytes::from_static(&[1, 2, 3]));
        assert!(matches!(
            damaged.verify(&root),
            Err(ProofError::Malformed { .. })
        ));

        // What does not exist cannot be proven, and verification says so.
        let absent = store.prove(&addr(2), &[]).await.unwrap();
        assert!(absent.account.is_none());
        assert!(matches!(
            absent.verify(&root),
            Err(ProofError::Unprovable { .. })
        ));
        let zero = store.prove(&addr(9), &[U256::from(5)]).await.unwrap();
        assert!(zero.storage[0].proof.is_none());
        assert!(matches!(
            zero.verify(&root),
            Err(ProofError::Unprovable { .. })
        ));

        // Once the slot changes, the old proof no longer holds under the new root.
        let mut update = ChangeSet::new();
        update.set_account(
            addr(9),
            proof
                .account
                .as_ref()
                .map(|a| Account {
                    nonce: a.nonce.to(),
                    balance: a.balance,
                    code_hash: a.code_hash,
                })
                .unwrap(),
        );
        update.set_storage(addr(9), U256::from(1), U256::from(77));
        let new_root = commit_next(&mut store, &update).await;
        assert!(matches!(
            proof.verify(&new_root),
            Err(ProofError::TableRoots { .. })
        ));
        let mut stale = proof.clone();
        stale.table_roots = store.table_roots().unwrap();
        mismatch(stale.verify(&new_root));
        store
            .prove(&addr(9), &[U256::from(1)])
            .await
            .unwrap()
            .verify(&new_root)
            .unwrap();
    });
}

#[test]
fn history_is_kept_by_default_and_pruned_only_when_configured() {
    deterministic::Runner::default().start(|context| async move {
        let mut first_retained = Vec::new();
        for (name, keep_blocks) in [("all", None), ("pruned", Some(3))] {
            let mut config = config();
            config.partition_prefix = name.into();
            config.items_per_section = std::num::NonZeroU64::new(16).unwrap();
            config.keep_blocks = keep_blocks;
            let mut store = QmdbStore::open(context.child(name), &config).await.unwrap();
            commit_next(&mut store, &genesis()).await;
            // The same three accounts rewritten block after block: old operations go inactive.
            for block in 0..60u64 {
                let mut changes = ChangeSet::new();
                for n in 1..=3 {
                    changes
                        .set_account(addr(n), Account::with_balance(U256::from(block * n as u64)));
                }
                commit_next(&mut store, &changes).await;
            }
            assert_eq!(
                store.account(&addr(2)).unwrap().unwrap().balance,
                U256::from(59 * 2)
            );
            // Only accounts are written: their table is the one pruned.
            first_retained.push(store.retained_operations().unwrap().0.start);
        }
        assert_eq!(first_retained[0], 0, "keep-all retains every operation");
        assert!(first_retained[1] > 0, "old operations were pruned");
    });
}

/// Blocks that exercise every kind of write: creations, slot updates and deletions, a storage
/// wipe, an account deleted and created again, code, and enough updates for the floor to move
/// entries.
fn protocol_blocks() -> Vec<ChangeSet> {
    let mut blocks = vec![genesis(), contract()];
    let contract_account = |nonce| Account {
        nonce,
        balance: U256::from(1),
        code_hash: trellis_state::EMPTY_CODE_HASH,
    };
    let mut wide = ChangeSet::new();
    wide.set_account(addr(9), contract_account(1));
    for n in 0..300u64 {
        wide.set_storage(addr(9), U256::from(n), U256::from(n * 7 + 1));
    }
    wide.set_account(addr(2), Account::with_balance(U256::from(5)));
    blocks.push(wide);
    let mut wipe = ChangeSet::new();
    wipe.wipe_storage(addr(9));
    wipe.set_account(addr(9), contract_account(2));
    wipe.set_storage(addr(9), U256::from(3), U256::from(33));
    blocks.push(wipe);
    let mut mixed = ChangeSet::new();
    mixed.set_account(addr(9), contract_account(3));
    for n in 0..200u64 {
        let value = if n % 3 == 0 { 0 } else { n + 1_000 };
        mixed.set_storage(addr(9), U256::from(n), U256::from(value));
    }
    mixed.delete_account(addr(1));
    blocks.push(mixed);
    blocks
}

/// The state root is part of the protocol: every validator must derive the same one, in every
/// release. These roots were computed when the layout was introduced (layout 2: accounts and
/// storage in two tables, slot keys over a padded account block); a change in the layout or in how blocks are written to QMDB shows
/// here, and must then be a deliberate protocol change.
#[test]
fn roots_of_known_blocks_are_stable() {
    const ROOTS: [&str; 5] = [
        "0x1b8d91f0a412b9173361aff80234495d25268ce20fdcd5a56e26162e697401cc",
        "0x9a97d2d44d36d56f1be892fc336e57fcf902f2de2402a7cfa84b4c5f1135b65e",
        "0xea0521f225c6b6e5fbdecf08b1da26d0a9602ed699aa9bfcf8050e9af002fdf6",
        "0xc3b54141b3c5734014e1e88338fa8eb8f9474afc76e03bcfba237e031d7298ef",
        "0x943ab6e777df562f77e3edeca5f55d0ee8a6051c0f4e529b4f88069e10a2efd8",
    ];
    deterministic::Runner::default().start(|context| async move {
        let mut store = QmdbStore::open(context.child("state"), &config())
            .await
            .unwrap();
        // The last two blocks are staged as a chain before either commits.
        let blocks = protocol_blocks();
        let mut roots = Vec::new();
        for changes in &blocks[..3] {
            roots.push(commit_next(&mut store, changes).await);
        }
        let first = store.stage(None, Height(3), &blocks[3]).unwrap();
        let second = store.stage(Some(&first), Height(4), &blocks[4]).unwrap();
        roots.push(store.commit(&first).await.unwrap());
        roots.push(store.commit(&second).await.unwrap());
        let roots: Vec<String> = roots.iter().map(|root| root.to_string()).collect();
        assert_eq!(roots, ROOTS, "state roots of the known blocks");
    });
}
