//! Moving a blob to the current data key while the node goes on using it: a chunk at a time,
//! from the start, each chunk fenced off from the node's reads and writes only while it is
//! rewritten. Per chunk: its old ciphertext is copied to the scratch blob (durable), a record
//! says the chunk is pending (durable), the chunk is rewritten under the new key (durable), a
//! record moves the watermark past it (durable). A crash anywhere leaves either the old
//! state or a pending chunk that the next open finishes from the copy (`recover.rs`). Once the
//! watermark reaches the end, a complete record makes the new key the blob's only one, and
//! the header is replaced.

use crate::{
    BlobCipher, BlobHeader, HEADER_LEN, Protection, Vaulted,
    record::{Pending, RekeyRecord},
    registry::Create,
    scratch::{Copy, Scratch},
    shared::{Fence, Keys, SharedBlob},
    steps::{adopt, rewrite_chunk, write_record},
};
use commonware_runtime::{Blob as _, BlobVersion, Error, Storage, Supervisor};
use std::sync::Arc;

/// Bytes rewritten per step: the node's operations on those bytes wait for one step (four
/// syncs); fewer, larger steps take fewer syncs in all.
pub const CHUNK: u64 = 1 << 20;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Moved this many bytes to the new key (0: the blob changed under the step, which is
    /// taken again).
    Moved(u64),
    /// The blob is wholly under the new key (or was removed meanwhile).
    Done,
}

/// One blob's move to a new data key, driven a step at a time.
pub struct Rekeying<C: Storage> {
    storage: C,
    blob: Claim<C::Blob>,
    scratch: Option<Scratch<C::Blob>>,
    partition: String,
    name: Vec<u8>,
    old: Arc<BlobCipher>,
    new: Arc<BlobCipher>,
    target: BlobHeader,
}

/// A blob claimed by one move; released when the move is dropped.
struct Claim<B>(Arc<SharedBlob<B>>);

impl<B> std::ops::Deref for Claim<B> {
    type Target = SharedBlob<B>;

    fn deref(&self) -> &SharedBlob<B> {
        &self.0
    }
}

impl<B> Drop for Claim<B> {
    fn drop(&mut self) {
        self.0.state().moving = false;
    }
}

impl<C: Storage + Supervisor> Vaulted<C> {
    /// Starts moving blob `name` of `partition` to the current data key. `None` if blobs are
    /// stored in clear, or it does not exist, is under the current key, or is being moved.
    pub async fn rekey(&self, partition: &str, name: &[u8]) -> Result<Option<Rekeying<C>>, Error> {
        let Protection::Encrypted(vault) = self.protection() else {
            return Ok(None);
        };
        let any = BlobVersion::new(0)..=BlobVersion::new(u16::MAX);
        let Some(blob) = vault
            .open(self.inner(), partition, name, any, Create::No)
            .await?
        else {
            return Ok(None);
        };
        let (current, key) = vault.keys().current_key();
        let (header, keys, record, last_seq) = {
            let mut state = blob.state();
            let fixed_at_current =
                matches!(state.keys, Keys::Fixed(_)) && state.header.key_id == current;
            if state.moving || state.removed || state.poisoned() || fixed_at_current {
                return Ok(None);
            }
            state.moving = true;
            (
                state.header,
                state.keys.clone(),
                state.record,
                state.last_seq,
            )
        };
        let blob = Claim(blob);
        let refuse = |e: crate::HeaderError| e.refusing(partition, name);
        let (old, new, target) = match (keys, record) {
            (Keys::Moving { old, new, .. }, Some(record)) => (old, new, record.target),
            (Keys::Fixed(old), _) => {
                let target = BlobHeader::new(current, &key)
                    .map_err(|e| Error::Io(Arc::new(std::io::Error::other(e))))?;
                let new = Arc::new(target.cipher(&key, partition, name).map_err(refuse)?);
                let record = RekeyRecord::start(&header, target, last_seq);
                write_record(&blob.inner, &record).await?;
                // A watermark at 0 changes no byte's key: no fence needed.
                let mut state = blob.state();
                state.keys = Keys::Moving {
                    old: old.clone(),
                    new: new.clone(),
                    watermark: 0,
                };
                state.record = Some(record);
                state.last_seq = record.seq;
                (old, new, target)
            }
            (Keys::Moving { .. }, None) => unreachable!("a moving blob has its record"),
        };
        Ok(Some(Rekeying {
            storage: self.inner().child("rekey"),
            blob,
            scratch: None,
            partition: partition.to_owned(),
            name: name.to_vec(),
            old,
            new,
            target,
        }))
    }
}

impl<C: Storage> Rekeying<C> {
    /// Bytes still under the old key.
    pub fn remaining(&self) -> u64 {
        let state = self.blob.state();
        state.len.saturating_sub(watermark(&state.keys))
    }

    /// Moves the next chunk; once none is left, makes the new key the blob's only one.
    pub async fn step(&mut self) -> Result<Step, Error> {
        let (at, len, record, removed) = {
            let state = self.blob.state();
            (
                watermark(&state.keys),
                state.len,
                state.record,
                state.removed,
            )
        };
        // Removed meanwhile, or moved already.
        let Some(record) = record.filter(|_| !removed) else {
            return Ok(Step::Done);
        };
        if at >= len {
            return self.finish(at, record).await;
        }
        let fence = Fence::raise(self.blob.0.clone(), at..(at + CHUNK).min(len)).await;
        // The blob may have been cut short while the fence waited.
        let end = (at + CHUNK).min(len).min(self.blob.state().len);
        if end <= at {
            fence.lift(|_| {});
            return Ok(Step::Moved(0));
        }
        let bytes = self
            .blob
            .inner
            .read_at(at + HEADER_LEN, (end - at) as usize, Default::default())
            .await?;
        let copy = Copy::new(at, bytes.coalesce().as_ref().to_vec());
        self.scratch().await?.keep(&copy).await?;
        let pending = record.next(
            at,
            Some(Pending {
                len: end - at,
                digest: copy.digest,
            }),
        );
        write_record(&self.blob.inner, &pending).await?;
        rewrite_chunk(&self.blob.inner, &self.old, &self.new, &copy).await?;
        let moved = pending.next(end, None);
        write_record(&self.blob.inner, &moved).await?;
        let (old, new) = (self.old.clone(), self.new.clone());
        fence.lift(|state| {
            state.keys = Keys::Moving {
                old,
                new,
                watermark: end,
            };
            state.record = Some(moved);
            state.last_seq = moved.seq;
        });
        Ok(Step::Moved(end - at))
    }

    /// Every byte is under the new key: says so durably (while nothing is written past the
    /// watermark), then replaces the header and drops the scratch blob.
    async fn finish(&mut self, at: u64, record: RekeyRecord) -> Result<Step, Error> {
        let fence = Fence::raise(self.blob.0.clone(), at..u64::MAX).await;
        if self.blob.state().len > at {
            // Written to meanwhile: there is more to move.
            fence.lift(|_| {});
            return Ok(Step::Moved(0));
        }
        let complete = record.completed();
        write_record(&self.blob.inner, &complete).await?;
        let new = self.new.clone();
        fence.lift(|state| {
            state.keys = Keys::Fixed(new);
            state.record = Some(complete);
            state.last_seq = complete.seq;
        });
        adopt(&self.blob.inner, &self.target).await?;
        {
            let mut state = self.blob.state();
            state.header = self.target;
            state.record = None;
        }
        self.scratch = None;
        Scratch::<C::Blob>::remove(&self.storage, &self.partition, &self.name).await?;
        Ok(Step::Done)
    }

    async fn scratch(&mut self) -> Result<&Scratch<C::Blob>, Error> {
        if self.scratch.is_none() {
            let scratch = Scratch::open(&self.storage, &self.partition, &self.name).await?;
            self.scratch = Some(scratch);
        }
        Ok(self.scratch.as_ref().expect("just opened"))
    }
}

/// Where the new key's bytes end (everything once fixed on the new key; nothing before).
fn watermark(keys: &Keys) -> u64 {
    match keys {
        Keys::Fixed(_) => u64::MAX,
        Keys::Moving { watermark, .. } => *watermark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataKey, KeyId, Keyring};
    use commonware_runtime::{Runner as _, tokio};
    use std::path::Path;

    /// Keys 1 and 2, 2 current.
    fn keys() -> Keyring {
        let ring = Keyring::new(KeyId(1), DataKey::from_bytes([1; 32]));
        ring.update(Keyring::new(KeyId(2), DataKey::from_bytes([2; 32])));
        ring
    }

    fn runner(dir: &Path) -> tokio::Runner {
        tokio::Runner::new(tokio::Config::new().with_storage_directory(dir))
    }

    /// Blob ledger/log holding `data` under key 1, and its move to key 2 started.
    async fn moving(context: &tokio::Context, data: Vec<u8>) -> Rekeying<tokio::Context> {
        let keyring = Arc::new(Keyring::new(KeyId(1), DataKey::from_bytes([1; 32])));
        let storage = Vaulted::with(
            context.child("vault"),
            Protection::encrypted(keyring.clone()),
        );
        let (blob, _) = storage.open("ledger", b"log").await.unwrap();
        blob.write_at(0, data, Default::default()).await.unwrap();
        blob.sync().await.unwrap();
        drop(blob);
        keyring.update(keys());
        storage.rekey("ledger", b"log").await.unwrap().unwrap()
    }

    /// Writes the record saying `len` bytes at the watermark are being rewritten, their copy
    /// having this digest.
    async fn pending(rekey: &Rekeying<tokio::Context>, len: u64, digest: [u8; 32]) {
        let record = rekey.blob.state().record.unwrap();
        let pending = record.next(0, Some(Pending { len, digest }));
        write_record(&rekey.blob.inner, &pending).await.unwrap();
    }

    /// A crash while a chunk is rewritten: the scratch copy and the pending record are
    /// durable, the chunk on disk is half new ciphertext and half torn. The next open
    /// finishes the chunk from the copy; every byte reads as written.
    #[test]
    fn a_torn_chunk_rewrite_is_finished_from_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * CHUNK as usize).map(|i| (i % 253) as u8).collect();
        let written = data.clone();
        runner(dir.path()).start(|context| async move {
            let mut rekey = moving(&context, written).await;
            // The first half of a step, by its own parts, then a torn write.
            let bytes = rekey
                .blob
                .inner
                .read_at(HEADER_LEN, CHUNK as usize, Default::default())
                .await
                .unwrap();
            let copy = Copy::new(0, bytes.coalesce().as_ref().to_vec());
            rekey.scratch().await.unwrap().keep(&copy).await.unwrap();
            pending(&rekey, CHUNK, copy.digest).await;
            let mut torn = copy.bytes.clone();
            rekey.old.apply(0, &mut torn);
            rekey.new.apply(0, &mut torn);
            torn[CHUNK as usize / 2..].fill(0xee);
            let inner = &rekey.blob.inner;
            inner
                .write_at(HEADER_LEN, torn, Default::default())
                .await
                .unwrap();
            inner.sync().await.unwrap();
        });
        runner(dir.path()).start(|context| async move {
            let storage = Vaulted::new(context.child("vault"), keys());
            let (blob, len) = storage.open("ledger", b"log").await.unwrap();
            assert_eq!(len, data.len() as u64);
            let read = blob.read_at(0, data.len(), Default::default()).await;
            assert!(
                read.unwrap().coalesce().as_ref() == data,
                "the torn chunk is whole again"
            );
            let mut rekey = storage.rekey("ledger", b"log").await.unwrap().unwrap();
            assert_eq!(rekey.remaining(), CHUNK, "the torn chunk counts as moved");
            while rekey.step().await.unwrap() != Step::Done {}
            let read = blob.read_at(0, data.len(), Default::default()).await;
            assert!(read.unwrap().coalesce().as_ref() == data);
        });
    }

    /// The copy is gone too: the open refuses, naming what was lost.
    #[test]
    fn a_pending_chunk_without_its_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        runner(dir.path()).start(|context| async move {
            let rekey = moving(&context, vec![7; 10_000]).await;
            pending(&rekey, 10_000, [1; 32]).await;
        });
        let _ = std::fs::remove_dir_all(dir.path().join(crate::SCRATCH_PARTITION));
        runner(dir.path()).start(|context| async move {
            let storage = Vaulted::new(context.child("vault"), keys());
            let Err(error) = storage.open("ledger", b"log").await else {
                panic!("a blob whose torn chunk cannot be finished opened");
            };
            let message = error.to_string();
            assert!(message.contains("trellis-vault-rekey"), "{message}");
        });
    }
}
