//! `trellis data encrypt`'s work on a real on-disk directory: a plaintext directory comes out
//! encrypted with every blob reading as before, and a run interrupted before or after its
//! commit is undone or finished by the next.

use commonware_runtime::{Blob as _, Runner as _, Storage as _, Supervisor as _, tokio};
use std::path::Path;
use trellis_node::migrate;
use trellis_vault::{KeyStore, LocalKek, Vaulted};

const BLOBS: [(&str, &[u8], &[u8]); 3] = [
    ("p-one", b"a", b"the first blob, in clear"),
    ("p-one", b"b", b"the second blob of the first partition"),
    ("p-two", b"c", b"a blob of another partition"),
];

fn write_plain(dir: &Path) {
    let config = tokio::Config::new().with_storage_directory(dir);
    tokio::Runner::new(config).start(|context| async move {
        let plain = Vaulted::plain(context.child("plain"));
        for (partition, name, bytes) in BLOBS {
            let (blob, _) = plain.open(partition, name).await.unwrap();
            blob.write_at(0, bytes.to_vec(), Default::default())
                .await
                .unwrap();
            blob.sync().await.unwrap();
        }
    });
}

/// Every blob reads back through the keys `kek` unwraps, and no file holds it in clear.
fn check_encrypted(dir: &Path, kek: &LocalKek) {
    let keys = KeyStore::of(dir).open(kek).unwrap();
    let config = tokio::Config::new().with_storage_directory(dir);
    tokio::Runner::new(config).start(|context| async move {
        let sealed = Vaulted::new(context.child("sealed"), keys);
        for (partition, name, bytes) in BLOBS {
            let (blob, len) = sealed.open(partition, name).await.unwrap();
            assert_eq!(len as usize, bytes.len());
            let read = blob
                .read_at(0, bytes.len(), Default::default())
                .await
                .unwrap();
            assert_eq!(read.coalesce().as_ref(), bytes);
        }
    });
    assert!(migrate::staged_partitions(dir).unwrap().is_empty());
    for (partition, name, bytes) in BLOBS {
        let file = std::fs::read(dir.join(partition).join(hex::encode(name))).unwrap();
        assert!(
            !file.windows(bytes.len()).any(|w| w == bytes),
            "{partition} in clear"
        );
    }
}

#[test]
fn a_run_interrupted_before_its_commit_is_undone_and_done_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    write_plain(&dir);
    let kek = LocalKek::create(&root.path().join("kek")).unwrap();
    // What a run killed while staging leaves: a half-copied partition and a staged keystore.
    std::fs::create_dir_all(dir.join("p-one__encrypting")).unwrap();
    std::fs::write(dir.join("p-one__encrypting").join("61"), b"half").unwrap();
    std::fs::write(dir.join("trellis-data-keys.migrating.toml"), b"torn").unwrap();

    let said = std::cell::RefCell::new(Vec::new());
    let migrated =
        migrate::encrypt(&dir, &kek, |line| said.borrow_mut().push(line.to_owned())).unwrap();
    let said = said.into_inner();
    assert_eq!((migrated.partitions, migrated.blobs), (2, 3));
    assert!(said.iter().any(|l| l.contains("[2/2] p-two")), "{said:?}");
    check_encrypted(&dir, &kek);
    let again = migrate::encrypt(&dir, &kek, |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(again.contains("is already encrypted"), "{again}");
}

#[test]
fn a_run_interrupted_after_its_commit_is_finished() {
    let root = tempfile::tempdir().unwrap();
    let (plain, done) = (root.path().join("plain"), root.path().join("done"));
    write_plain(&plain);
    write_plain(&done);
    let kek = LocalKek::create(&root.path().join("kek")).unwrap();
    migrate::encrypt(&done, &kek, |_| {}).unwrap();
    // Killed during the swap: the keystore committed, p-two still in clear beside its
    // encrypted twin.
    std::fs::rename(done.join("p-two"), done.join("p-two__encrypting")).unwrap();
    std::fs::rename(plain.join("p-two"), done.join("p-two")).unwrap();

    let said = std::cell::RefCell::new(Vec::new());
    migrate::encrypt(&done, &kek, |line| said.borrow_mut().push(line.to_owned())).unwrap();
    let said = said.into_inner();
    assert!(
        said.iter()
            .any(|l| l.contains("interrupted after its commit")),
        "{said:?}"
    );
    check_encrypted(&done, &kek);
}
