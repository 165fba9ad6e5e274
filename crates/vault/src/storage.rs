//! An encrypting [`Storage`]: every blob opened through it is an [`EncryptedBlob`] over the
//! inner storage's blob, its header written (and made durable) when the blob is made.

use crate::{BlobHeader, DataKey, EncryptedBlob, HEADER_LEN, HeaderError, KeyId};
use commonware_runtime::{Blob as _, BlobVersion, Error, Storage, WriteOptions};
use std::{collections::BTreeMap, sync::Arc};

/// The data keys a node holds, and the one new blobs are encrypted under.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: KeyId,
    keys: BTreeMap<KeyId, DataKey>,
}

impl Keyring {
    /// A keyring of one key, used for every new blob.
    pub fn new(id: KeyId, key: DataKey) -> Self {
        Self {
            current: id,
            keys: BTreeMap::from([(id, key)]),
        }
    }

    fn key(&self, id: KeyId) -> Result<&DataKey, HeaderError> {
        self.keys.get(&id).ok_or(HeaderError::UnknownKey(id))
    }
}

/// Storage whose blobs are encrypted in the inner storage `S`.
#[derive(Clone)]
pub struct EncryptedStorage<S> {
    inner: S,
    keys: Arc<Keyring>,
}

impl<S: Storage> EncryptedStorage<S> {
    pub fn new(inner: S, keys: Keyring) -> Self {
        Self {
            inner,
            keys: Arc::new(keys),
        }
    }
}

/// A refused open, naming the blob and why.
fn refused(partition: &str, name: &[u8], error: HeaderError) -> Error {
    Error::BlobOpenFailed(
        partition.to_owned(),
        hex(name),
        Arc::new(std::io::Error::other(error)),
    )
}

fn hex(name: &[u8]) -> String {
    name.iter().map(|b| format!("{b:02x}")).collect()
}

impl<S: Storage> Storage for EncryptedStorage<S> {
    type Blob = EncryptedBlob<S::Blob>;

    async fn open_versioned(
        &self,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<BlobVersion>,
    ) -> Result<(Self::Blob, u64, BlobVersion), Error> {
        let (blob, size, version) = self.inner.open_versioned(partition, name, versions).await?;
        let header = if size < HEADER_LEN {
            // A new blob, or one whose creation tore before its header was durable (and so
            // before any data was written): it gets a header now.
            let key = self
                .keys
                .key(self.keys.current)
                .map_err(|e| refused(partition, name, e))?;
            let header = BlobHeader::new(self.keys.current, key)
                .map_err(|e| Error::Io(Arc::new(std::io::Error::other(e))))?;
            blob.resize(0).await?;
            blob.write_at(0, header.encode(), WriteOptions::SYNC)
                .await?;
            blob.sync().await?;
            header
        } else {
            let bytes = blob
                .read_at(0, HEADER_LEN as usize, Default::default())
                .await?;
            BlobHeader::decode(bytes.coalesce().as_ref())
                .map_err(|e| refused(partition, name, e))?
        };
        let key = self
            .keys
            .key(header.key_id)
            .map_err(|e| refused(partition, name, e))?;
        let cipher = header
            .cipher(key, partition, name)
            .map_err(|e| refused(partition, name, e))?;
        let len = size.saturating_sub(HEADER_LEN);
        Ok((EncryptedBlob::new(blob, cipher, len), len, version))
    }

    async fn remove(&self, partition: &str, name: Option<&[u8]>) -> Result<(), Error> {
        self.inner.remove(partition, name).await
    }

    async fn scan(&self, partition: &str) -> Result<Vec<Vec<u8>>, Error> {
        self.inner.scan(partition).await
    }
}
