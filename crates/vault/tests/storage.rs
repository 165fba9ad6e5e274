//! The encrypting storage over the tokio runtime's on-disk storage: what is written reads back,
//! nothing written is on disk in clear, a blob grows with zeros, and a wrong key or a plaintext
//! blob is refused by name.

use commonware_runtime::{Blob as _, Storage as _, Supervisor as _, WriteOptions, tokio};
use std::path::Path;
use trellis_vault::{DataKey, KeyId, Keyring, Vaulted};

mod support;

use support::{PARTITION, contains, keys, rotated, run};

/// Every file under `dir`, as bytes.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(std::fs::read(&path).unwrap());
        }
    }
    found
}

const SECRET: &[u8] = b"transfer 1000 to 0x00000000000000000000000000000000000a11ce";

#[test]
fn what_is_written_reads_back_and_is_nowhere_on_disk_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(dir.path(), |context| async move {
        let storage = Vaulted::new(context.child("vault"), keys(1));
        let (blob, len) = storage.open(PARTITION, b"blocks").await.unwrap();
        assert_eq!(len, 0);
        blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.write_at(10_000, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);

        let (blob, len) = storage.open(PARTITION, b"blocks").await.unwrap();
        assert_eq!(len, 10_000 + SECRET.len() as u64);
        let read = blob
            .read_at(10_000, SECRET.len(), Default::default())
            .await
            .unwrap();
        assert_eq!(read.coalesce().as_ref(), SECRET);
        let read = blob.read_at(3, 10, Default::default()).await.unwrap();
        assert_eq!(read.coalesce().as_ref(), &SECRET[3..13]);
        // The gap between the writes reads as zeros, as on any blob.
        let gap = blob.read_at(5_000, 100, Default::default()).await.unwrap();
        assert!(gap.coalesce().as_ref().iter().all(|b| *b == 0));
        blob.sync().await.unwrap();
    });
    let on_disk = files(&path);
    assert!(!on_disk.is_empty());
    assert!(on_disk.iter().all(|file| !contains(file, SECRET)));
    assert!(on_disk.iter().all(|file| !contains(file, &SECRET[..16])));
    assert!(on_disk.iter().any(|file| contains(file, b"TRELVLT1")));
}

#[test]
fn a_blob_grows_with_zeros_and_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), |context| async move {
        let storage = Vaulted::new(context, keys(1));
        let (blob, _) = storage.open(PARTITION, b"grown").await.unwrap();
        blob.write_at(0, vec![9u8; 100], WriteOptions::default())
            .await
            .unwrap();
        blob.resize(3_000_000).await.unwrap();
        let tail = blob
            .read_at(2_999_000, 1_000, Default::default())
            .await
            .unwrap();
        assert!(tail.coalesce().as_ref().iter().all(|b| *b == 0));
        blob.resize(50).await.unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        let (blob, len) = storage.open(PARTITION, b"grown").await.unwrap();
        assert_eq!(len, 50);
        let head = blob.read_at(0, 50, Default::default()).await.unwrap();
        assert_eq!(head.coalesce().as_ref(), &[9u8; 50][..]);
    });
}

#[test]
fn a_rewritten_prefix_leaves_its_bytes_on_disk_unchanged() {
    // commonware's paged blobs rely on it: a torn rewrite must not touch the durable prefix.
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), |context| async move {
        let storage = Vaulted::new(context.child("vault"), keys(1));
        let (blob, _) = storage.open(PARTITION, b"page").await.unwrap();
        blob.write_at(0, vec![5u8; 37], WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        let raw = |context: tokio::Context| async move {
            let (blob, len) = context.open(PARTITION, b"page").await.unwrap();
            let bytes = blob
                .read_at(0, len as usize, Default::default())
                .await
                .unwrap();
            bytes.coalesce().as_ref().to_vec()
        };
        let before = raw(context.child("vault")).await;
        let (blob, _) = storage.open(PARTITION, b"page").await.unwrap();
        let mut longer = vec![5u8; 37];
        longer.extend_from_slice(&[6u8; 20]);
        blob.write_at(0, longer, WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        let after = raw(context).await;
        assert_eq!(
            after[..before.len()],
            before[..],
            "the prefix's ciphertext is the same"
        );
        assert_ne!(after[before.len()..], [6u8; 20][..]);
    });
}

#[test]
fn another_key_and_a_plaintext_blob_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), |context| async move {
        let storage = Vaulted::new(context.child("vault"), keys(1));
        let (blob, _) = storage.open(PARTITION, b"mine").await.unwrap();
        blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        let stranger = Vaulted::new(context.child("vault"), keys(2));
        let error = stranger.open(PARTITION, b"mine").await.err().unwrap();
        assert!(error.to_string().contains("another data key #1"), "{error}");
        let unknown = Vaulted::new(
            context.child("vault"),
            Keyring::new(KeyId(2), DataKey::from_bytes([1; 32])),
        );
        let error = unknown.open(PARTITION, b"mine").await.err().unwrap();
        assert!(
            error.to_string().contains("this node was not given"),
            "{error}"
        );

        // A blob written in clear, longer than a header.
        let (plain, _) = context.open(PARTITION, b"clear").await.unwrap();
        plain
            .write_at(0, vec![1u8; 5_000], WriteOptions::default())
            .await
            .unwrap();
        plain.sync().await.unwrap();
        drop(plain);
        let error = storage.open(PARTITION, b"clear").await.err().unwrap();
        assert!(error.to_string().contains("without encryption"), "{error}");

        // One shorter than a header is refused too, and left as it was.
        let (plain, _) = context.open(PARTITION, b"small").await.unwrap();
        plain
            .write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        plain.sync().await.unwrap();
        drop(plain);
        let error = storage.open(PARTITION, b"small").await.err().unwrap();
        assert!(error.to_string().contains("without encryption"), "{error}");
        let (plain, len) = context.open(PARTITION, b"small").await.unwrap();
        let kept = plain
            .read_at(0, len as usize, Default::default())
            .await
            .unwrap();
        assert_eq!(kept.coalesce().as_ref(), SECRET);
    });
}

#[test]
fn tasks_spawned_from_a_vaulted_context_write_encrypted_blobs() {
    use commonware_runtime::Spawner as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(dir.path(), |context| async move {
        let vaulted = Vaulted::new(context.child("vaulted"), keys(1));
        let task = vaulted.child("writer").spawn(|context| async move {
            let (blob, _) = context.open(PARTITION, b"journal").await.unwrap();
            blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
                .await
                .unwrap();
            blob.sync().await.unwrap();
        });
        task.await.unwrap();
        // What the task wrote reads back through the vault, and only through it.
        let (blob, len) = vaulted.open(PARTITION, b"journal").await.unwrap();
        let read = blob
            .read_at(0, len as usize, Default::default())
            .await
            .unwrap();
        assert_eq!(read.coalesce().as_ref(), SECRET);
    });
    assert!(files(&path).iter().all(|file| !contains(file, SECRET)));
}

#[test]
fn a_plaintext_context_writes_in_clear_and_refuses_an_encrypted_blob() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(dir.path(), |context| async move {
        let plain = Vaulted::plain(context.child("plain"));
        let (blob, _) = plain.open(PARTITION, b"clear").await.unwrap();
        blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        let read = blob
            .read_at(0, SECRET.len(), Default::default())
            .await
            .unwrap();
        assert_eq!(read.coalesce().as_ref(), SECRET);
        assert!(files(&path).iter().any(|f| contains(f, SECRET)));

        let encrypted = Vaulted::new(context.child("vault"), keys(1));
        let (blob, _) = encrypted.open(PARTITION, b"sealed").await.unwrap();
        blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        let Err(error) = plain.open(PARTITION, b"sealed").await else {
            panic!("an encrypted blob opened in clear");
        };
        let message = format!("{error:?}");
        assert!(message.contains("Encrypted"), "{message}");
    });
}

#[test]
fn a_key_added_while_running_encrypts_new_blobs_and_old_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), |context| async move {
        let keyring = std::sync::Arc::new(keys(1));
        let storage = Vaulted::with(
            context.child("vault"),
            trellis_vault::Protection::encrypted(keyring.clone()),
        );
        let (old, _) = storage.open(PARTITION, b"old").await.unwrap();
        old.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        old.sync().await.unwrap();
        drop(old);

        assert_eq!(keyring.update(rotated()), Some(KeyId(2)));
        let (new, _) = storage.open(PARTITION, b"new").await.unwrap();
        new.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        new.sync().await.unwrap();
        drop(new);

        // Opened with key 2 alone, the new blob reads back and the old one is refused.
        let only_new = Vaulted::new(
            context.child("only_new"),
            Keyring::new(KeyId(2), DataKey::from_bytes([2; 32])),
        );
        let (new, _) = only_new.open(PARTITION, b"new").await.unwrap();
        let read = new
            .read_at(0, SECRET.len(), Default::default())
            .await
            .unwrap();
        assert_eq!(read.coalesce().as_ref(), SECRET);
        assert!(only_new.open(PARTITION, b"old").await.is_err());
        // The running keyring still reads both.
        let (old, _) = storage.open(PARTITION, b"old").await.unwrap();
        let read = old
            .read_at(0, SECRET.len(), Default::default())
            .await
            .unwrap();
        assert_eq!(read.coalesce().as_ref(), SECRET);
    });
}

#[test]
fn a_census_counts_blobs_by_their_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(dir.path(), |context| async move {
        let keyring = std::sync::Arc::new(keys(1));
        let storage = Vaulted::with(
            context.child("vault"),
            trellis_vault::Protection::encrypted(keyring.clone()),
        );
        for name in [b"a", b"b"] {
            let (blob, _) = storage.open(PARTITION, name).await.unwrap();
            blob.sync().await.unwrap();
        }
        keyring.update(rotated());
        let (blob, _) = storage.open("other", b"c").await.unwrap();
        blob.sync().await.unwrap();
        let plain = Vaulted::plain(context.child("plain"));
        let (blob, _) = plain.open("clear", b"d").await.unwrap();
        blob.write_at(0, SECRET.to_vec(), WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
    });
    let census = trellis_vault::census(&path).unwrap();
    let blobs = |key| census.by_key.get(&key).map_or(0, |t| t.blobs);
    assert_eq!(blobs(Some(KeyId(1))), 2, "{census:?}");
    assert_eq!(blobs(Some(KeyId(2))), 1, "{census:?}");
    assert_eq!(blobs(None), 1, "{census:?}");
}
