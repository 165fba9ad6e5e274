//! Moving blobs to a rotated data key while they are in use: every byte reads the same before,
//! during and after, writes made midway land under the right key, the old key is then not
//! needed, and a move stopped between chunks resumes where it stood.

use commonware_runtime::{Blob as _, Storage as _, Supervisor as _, WriteOptions, tokio};
use std::sync::Arc;
use trellis_vault::{CHUNK, KeyId, Keyring, Protection, Step, Vaulted};

mod support;

use support::{PARTITION, contains, key, keys, rotated as both_keys, run};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn read_all<B: commonware_runtime::Blob>(blob: &B, len: usize) -> Vec<u8> {
    blob.read_at(0, len, Default::default())
        .await
        .unwrap()
        .coalesce()
        .as_ref()
        .to_vec()
}

async fn write<B: commonware_runtime::Blob>(
    blob: &B,
    model: &mut Vec<u8>,
    at: usize,
    bytes: &[u8],
) {
    blob.write_at(at as u64, bytes.to_vec(), WriteOptions::default())
        .await
        .unwrap();
    if model.len() < at + bytes.len() {
        model.resize(at + bytes.len(), 0);
    }
    model[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Storage encrypted under key 1, and its keyring (to rotate).
fn rotatable(context: &tokio::Context) -> (Arc<Keyring>, Vaulted<tokio::Context>) {
    let keyring = Arc::new(keys(1));
    let protection = Protection::encrypted(keyring.clone());
    (keyring, Vaulted::with(context.child("vault"), protection))
}

const SECRET: &[u8] = b"pay 5000 to 0x00000000000000000000000000000000000b0b";

#[test]
fn a_blob_moves_to_the_new_key_while_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(dir.path(), |context| async move {
        let (keyring, storage) = rotatable(&context);
        let (blob, _) = storage.open(PARTITION, b"log").await.unwrap();
        let mut model = Vec::new();
        write(&blob, &mut model, 0, &pattern(2 * CHUNK as usize + 5000)).await;
        blob.sync().await.unwrap();
        assert!(
            storage.rekey(PARTITION, b"log").await.unwrap().is_none(),
            "already under the current key"
        );

        keyring.update(both_keys());
        let mut rekey = storage.rekey(PARTITION, b"log").await.unwrap().unwrap();
        assert!(
            storage.rekey(PARTITION, b"log").await.unwrap().is_none(),
            "one move at a time"
        );
        let mut steps = 0;
        loop {
            let step = rekey.step().await.unwrap();
            steps += 1;
            if step == Step::Done {
                break;
            }
            // Midway: writes behind the watermark, ahead of it, and past the end.
            if steps == 1 {
                write(&blob, &mut model, 100, SECRET).await;
                write(&blob, &mut model, CHUNK as usize + 3, SECRET).await;
                let end = model.len();
                write(&blob, &mut model, end + 10, SECRET).await;
                assert_eq!(read_all(&blob, model.len()).await, model);
            }
        }
        assert_eq!(steps, 4, "three chunks, then the header");
        assert_eq!(rekey.remaining(), 0);
        drop(rekey);
        assert_eq!(read_all(&blob, model.len()).await, model);
        blob.sync().await.unwrap();
        drop(blob);

        // The old key is not needed any more.
        let only_new = Vaulted::new(context.child("only_new"), Keyring::new(KeyId(2), key(2)));
        let (blob, len) = only_new.open(PARTITION, b"log").await.unwrap();
        assert_eq!(len, model.len() as u64);
        assert_eq!(read_all(&blob, model.len()).await, model);
    });
    let census = trellis_vault::census(&path).unwrap();
    assert_eq!(census.moving.blobs, 0, "{census:?}");
    assert_eq!(census.by_key.keys().collect::<Vec<_>>(), [&Some(KeyId(2))]);
    let scratch = path.join(trellis_vault::SCRATCH_PARTITION);
    let left = std::fs::read_dir(&scratch).map_or(0, |d| d.count());
    assert_eq!(left, 0, "the scratch copy is removed");
    let file = std::fs::read(path.join(PARTITION).join(hex::encode(b"log"))).unwrap();
    assert!(!contains(&file, SECRET), "nothing in clear");
}

#[test]
fn a_move_stopped_between_chunks_resumes_where_it_stood() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let model = pattern(3 * CHUNK as usize);
    let written = model.clone();
    run(dir.path(), |context| async move {
        let (keyring, storage) = rotatable(&context);
        let (blob, _) = storage.open(PARTITION, b"log").await.unwrap();
        blob.write_at(0, written, WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        keyring.update(both_keys());
        let mut rekey = storage.rekey(PARTITION, b"log").await.unwrap().unwrap();
        assert_eq!(rekey.step().await.unwrap(), Step::Moved(CHUNK));
    });
    let census = trellis_vault::census(&path).unwrap();
    assert_eq!(census.moving.blobs, 1, "{census:?}");
    assert!(census.moving.bytes < 2 * CHUNK + 8192, "{census:?}");
    run(dir.path(), |context| async move {
        let storage = Vaulted::new(context.child("vault"), both_keys());
        let (blob, _) = storage.open(PARTITION, b"log").await.unwrap();
        assert_eq!(read_all(&blob, model.len()).await, model);
        let mut rekey = storage.rekey(PARTITION, b"log").await.unwrap().unwrap();
        assert_eq!(rekey.remaining(), 2 * CHUNK);
        while rekey.step().await.unwrap() != Step::Done {}
        assert_eq!(read_all(&blob, model.len()).await, model);
    });
    let census = trellis_vault::census(&path).unwrap();
    assert_eq!(census.by_key.keys().collect::<Vec<_>>(), [&Some(KeyId(2))]);
}

#[test]
fn reads_and_writes_racing_a_move_see_every_byte_as_written() {
    use commonware_runtime::Spawner as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), |context| async move {
        let (keyring, storage) = rotatable(&context);
        let (blob, _) = storage.open(PARTITION, b"log").await.unwrap();
        let blob = Arc::new(blob);
        let mut model = Vec::new();
        write(&*blob, &mut model, 0, &pattern(4 * CHUNK as usize)).await;
        keyring.update(both_keys());
        let moved = Arc::new(AtomicBool::new(false));
        let writer = context.child("writer").spawn({
            let (blob, moved) = (blob.clone(), moved.clone());
            move |_| async move {
                let mut writes = 0usize;
                let mut at = 12_345usize;
                while !moved.load(Ordering::Acquire) || writes < 50 {
                    // Spread over the whole blob and past its end, crossing chunk edges.
                    at = (at * 7919 + 104_729) % (model.len() + 1000);
                    let bytes: Vec<u8> = (0..3000).map(|i| (i + writes) as u8).collect();
                    write(&*blob, &mut model, at, &bytes).await;
                    let read = blob
                        .read_at(at as u64, bytes.len(), Default::default())
                        .await;
                    assert_eq!(read.unwrap().coalesce().as_ref(), &bytes[..]);
                    writes += 1;
                }
                assert_eq!(read_all(&*blob, model.len()).await, model);
                writes
            }
        });
        let mut rekey = storage.rekey(PARTITION, b"log").await.unwrap().unwrap();
        while rekey.step().await.unwrap() != Step::Done {}
        moved.store(true, Ordering::Release);
        let writes = writer.await.unwrap();
        assert!(writes >= 50, "{writes}");
    });
}
