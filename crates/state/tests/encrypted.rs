//! The state store on an encrypted storage (issue 24): the same roots as in clear, the same
//! state after a restart, no stored value on disk in clear, and another key refused.

mod common;

use common::{commit_next, config, contract, genesis, transfer};
use commonware_runtime::{Runner as _, Supervisor as _, tokio};
use std::path::Path;
use trellis_state::{QmdbStore, StateReader, StateStore};
use trellis_vault::{DataKey, KeyId, Keyring, Vaulted};

const MARK: alloy_primitives::U256 = alloy_primitives::U256::from_be_bytes([0xc5; 32]);

fn keys(byte: u8) -> Keyring {
    Keyring::new(KeyId(1), DataKey::from_bytes([byte; 32]))
}

fn run<F, Fut>(dir: &Path, test: F)
where
    F: FnOnce(tokio::Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::Runner::new(tokio::Config::new().with_storage_directory(dir)).start(test);
}

/// Whether any file under `dir` holds `needle`.
fn on_disk(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            on_disk(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(needle.len()).any(|window| window == needle)
        }
    })
}

#[test]
fn an_encrypted_state_has_the_same_roots_and_shows_no_stored_value() {
    // A slot value no hash or counter would produce, to look for on disk.
    let mut marked = trellis_state::ChangeSet::new();
    let holder = common::addr(4);
    marked.set_account(
        holder,
        trellis_state::Account::with_balance(1u64.try_into().unwrap()),
    );
    marked.set_storage(holder, alloy_primitives::U256::from(5), MARK);
    let blocks = [genesis(), contract(), transfer(3, 77), marked];
    let plain_dir = tempfile::tempdir().unwrap();
    let sealed_dir = tempfile::tempdir().unwrap();
    let plain_roots = {
        let blocks = blocks.clone();
        let (tell, roots) = std::sync::mpsc::channel();
        run(plain_dir.path(), move |context| async move {
            let mut store = QmdbStore::open(context.child("state"), &config())
                .await
                .unwrap();
            for block in &blocks {
                tell.send(commit_next(&mut store, block).await).unwrap();
            }
        });
        roots.iter().collect::<Vec<_>>()
    };
    let (tell, roots) = std::sync::mpsc::channel();
    run(sealed_dir.path(), move |context| async move {
        let vaulted = Vaulted::new(context.child("vault"), keys(1));
        let mut store = QmdbStore::open(vaulted.child("state"), &config())
            .await
            .unwrap();
        for block in &blocks {
            tell.send(commit_next(&mut store, block).await).unwrap();
        }
    });
    let sealed_roots: Vec<_> = roots.iter().collect();
    assert_eq!(sealed_roots, plain_roots, "encryption is below the roots");

    // The plain directory shows the slot's value; the encrypted one does not.
    assert!(
        on_disk(plain_dir.path(), &MARK.to_be_bytes::<32>()),
        "the check can find it"
    );
    assert!(!on_disk(sealed_dir.path(), &MARK.to_be_bytes::<32>()));

    // A restart under the same key reads the same state; another key is refused.
    let last = *sealed_roots.last().unwrap();
    run(sealed_dir.path(), move |context| async move {
        let vaulted = Vaulted::new(context.child("vault"), keys(1));
        let store = QmdbStore::open(vaulted.child("state"), &config())
            .await
            .unwrap();
        assert_eq!(store.committed().unwrap().1, last);
        let account = store.account(&common::addr(3)).unwrap().unwrap();
        assert_eq!(account.balance, alloy_primitives::U256::from(77));
        drop(store);
        let stranger = Vaulted::new(context.child("stranger"), keys(2));
        let error = QmdbStore::open(stranger.child("state"), &config())
            .await
            .err();
        let error = format!("{:?}", error.expect("another key is refused"));
        assert!(error.contains("WrongKey(KeyId(1))"), "{error}");
    });
}
