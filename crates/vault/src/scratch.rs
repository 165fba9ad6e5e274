//! The scratch copy of the chunk being re-encrypted: its old ciphertext, made durable before
//! the chunk is rewritten in place, so a rewrite torn by a crash is finished from it. One
//! scratch blob per blob being moved, in the vault's own partition, written as it is (the bytes
//! are ciphertext already) and removed when the move ends.

use commonware_runtime::{Error, Storage};
use sha2::{Digest as _, Sha256};

/// The partition scratch copies are kept in.
pub const SCRATCH_PARTITION: &str = "trellis-vault-rekey";

const PRELUDE: usize = 8 + 8 + 32;

/// The scratch blob's name for blob `name` of `partition`.
fn scratch_name(partition: &str, name: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update((partition.len() as u64).to_be_bytes());
    hash.update(partition.as_bytes());
    hash.update(name);
    hash.finalize()[..16].to_vec()
}

/// A chunk's old ciphertext, where it sits in its blob, and its digest.
pub(crate) struct Copy {
    pub offset: u64,
    pub bytes: Vec<u8>,
    pub digest: [u8; 32],
}

impl Copy {
    pub fn new(offset: u64, bytes: Vec<u8>) -> Self {
        let digest = Sha256::digest(&bytes).into();
        Self {
            offset,
            bytes,
            digest,
        }
    }
}

/// The scratch blob of one blob.
pub(crate) struct Scratch<B> {
    blob: B,
}

impl<B: commonware_runtime::Blob> Scratch<B> {
    pub async fn open<S: Storage<Blob = B>>(
        storage: &S,
        partition: &str,
        name: &[u8],
    ) -> Result<Self, Error> {
        let (blob, _) = storage
            .open(SCRATCH_PARTITION, &scratch_name(partition, name))
            .await?;
        Ok(Self { blob })
    }

    /// Makes `copy` durable in the scratch blob.
    pub async fn keep(&self, copy: &Copy) -> Result<(), Error> {
        let mut bytes = Vec::with_capacity(PRELUDE + copy.bytes.len());
        bytes.extend_from_slice(&copy.offset.to_be_bytes());
        bytes.extend_from_slice(&(copy.bytes.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&copy.digest);
        bytes.extend_from_slice(&copy.bytes);
        self.blob.write_at(0, bytes, Default::default()).await?;
        self.blob.sync().await
    }

    /// The copy it holds of the `len` bytes at `offset` with this digest, if it holds them.
    pub async fn read(&self, offset: u64, len: u64, digest: &[u8; 32]) -> Option<Copy> {
        let total = PRELUDE + usize::try_from(len).ok()?;
        let read = self.blob.read_at(0, total, Default::default()).await.ok()?;
        let read = read.coalesce();
        let bytes = read.as_ref();
        let at = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let copy = Copy::new(at, bytes[PRELUDE..].to_vec());
        (at == offset && copy.digest == *digest && bytes[16..48] == *digest).then_some(copy)
    }

    /// Removes scratch blob of blob `name` of `partition` (the move is over).
    pub async fn remove<S: Storage>(
        storage: &S,
        partition: &str,
        name: &[u8],
    ) -> Result<(), Error> {
        match storage
            .remove(SCRATCH_PARTITION, Some(&scratch_name(partition, name)))
            .await
        {
            Ok(()) | Err(Error::BlobMissing(..)) | Err(Error::PartitionMissing(..)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
