//! What every vaulted context of a node shares: the data keys, and the blobs open, so the
//! node's handles and the re-encryption's handles to a blob are one (the storage below allows
//! one open handle per blob, and both must see where the blob's move to a new key stands).

use crate::{Keyring, recover::Names, shared::SharedBlob, storage::open_shared};
use commonware_runtime::{Blob as _, BlobVersion, Error, Storage};
use futures::lock::Mutex;
use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Weak},
};

type Id = (String, Vec<u8>);

/// A node's data keys and its open encrypted blobs.
pub struct Vault {
    keys: Arc<Keyring>,
    /// Held across an open or a removal, so the two never interleave for one name (and a
    /// re-encryption never re-creates a blob the node has just removed).
    open: Mutex<OpenBlobs>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("keys", &self.keys).finish()
    }
}

#[derive(Default)]
struct OpenBlobs {
    /// Type-erased `Weak<SharedBlob<B>>` (one inner blob type per node).
    blobs: HashMap<Id, Weak<dyn Any + Send + Sync>>,
    opened: usize,
}

impl OpenBlobs {
    fn get<B: Send + Sync + 'static>(&self, id: &Id) -> Option<Arc<SharedBlob<B>>> {
        let blob = self.blobs.get(id)?.upgrade()?;
        blob.downcast::<SharedBlob<B>>().ok()
    }

    fn insert<B: Send + Sync + 'static>(&mut self, id: Id, blob: &Arc<SharedBlob<B>>) {
        let erased: Arc<dyn Any + Send + Sync> = blob.clone();
        self.blobs.insert(id, Arc::downgrade(&erased));
        self.opened += 1;
        // Drop the entries of closed blobs now and then, so the map stays the size of what
        // is open.
        if self.opened.is_multiple_of(1024) {
            self.blobs.retain(|_, blob| blob.strong_count() > 0);
        }
    }
}

/// Whether an open may make the blob (the node's opens) or only find it (a re-encryption's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    Yes,
    No,
}

impl Vault {
    pub fn new(keys: Arc<Keyring>) -> Self {
        Self {
            keys,
            open: Mutex::new(OpenBlobs::default()),
        }
    }

    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    /// Blob `name` of `partition`: the open one if any (made durable first, as a reopen must
    /// be), else opened from `inner`. With [`Create::No`], `None` if it does not exist.
    pub(crate) async fn open<S: Storage>(
        &self,
        inner: &S,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<BlobVersion>,
        create: Create,
    ) -> Result<Option<Arc<SharedBlob<S::Blob>>>, Error> {
        let mut open = self.open.lock().await;
        let id = (partition.to_owned(), name.to_vec());
        if let Some(blob) = open.get::<S::Blob>(&id) {
            if !versions.contains(&blob.version) {
                return Err(Error::BlobVersionMismatch {
                    expected: versions,
                    found: blob.version,
                });
            }
            blob.inner.sync().await?;
            return Ok(Some(blob));
        }
        if create == Create::No && !exists(inner, partition, name).await? {
            return Ok(None);
        }
        let names = Names {
            partition,
            keyed_as: partition,
            name,
        };
        let blob = Arc::new(open_shared(inner, &self.keys, names, versions).await?);
        open.insert(id, &blob);
        Ok(Some(blob))
    }

    /// Removes blob `name` of `partition` (all of it without a name): its open state, if
    /// any, is marked removed.
    pub(crate) async fn remove<S: Storage>(
        &self,
        inner: &S,
        partition: &str,
        name: Option<&[u8]>,
    ) -> Result<(), Error> {
        let mut open = self.open.lock().await;
        open.blobs.retain(|(p, n), blob| {
            let gone = p == partition && name.is_none_or(|name| name == n.as_slice());
            if gone && let Some(blob) = blob.upgrade() {
                mark_removed::<S::Blob>(blob);
            }
            !gone
        });
        inner.remove(partition, name).await
    }
}

fn mark_removed<B: Send + Sync + 'static>(blob: Arc<dyn Any + Send + Sync>) {
    if let Ok(blob) = blob.downcast::<SharedBlob<B>>() {
        blob.state().removed = true;
    }
}

async fn exists<S: Storage>(inner: &S, partition: &str, name: &[u8]) -> Result<bool, Error> {
    match inner.scan(partition).await {
        Ok(names) => Ok(names.iter().any(|n| n == name)),
        Err(Error::PartitionMissing(_)) => Ok(false),
        Err(error) => Err(error),
    }
}
