//! A runtime context whose storage is encrypted: [`Vaulted`] wraps a runtime's context and
//! does everything it does, except that every blob it opens is an [`EncryptedBlob`]. Tasks
//! spawned from it get vaulted contexts too, so a chain or consensus engine started on one
//! never writes a byte in clear. A plaintext directory runs on the same type
//! ([`Vaulted::plain`]), which refuses any blob that is encrypted.

use crate::{EncryptedBlob, Keyring, StoredBlob, Vault, registry::Create, storage::open_plain};
use commonware_runtime::{
    BlobVersion, Clock, Error, Handle, Metrics, Spawner, Storage, Supervisor,
    signal::Signal,
    telemetry::metrics::{Metric, Registered},
};
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime},
};

/// How a directory's blobs are stored.
#[derive(Clone, Debug)]
pub enum Protection {
    /// In clear (an encrypted blob is refused).
    Plain,
    /// Encrypted under the vault's keys (a plaintext blob is refused).
    Encrypted(Arc<Vault>),
}

impl Protection {
    /// Encrypted under `keys`.
    pub fn encrypted(keys: Arc<Keyring>) -> Self {
        Self::Encrypted(Arc::new(Vault::new(keys)))
    }
}

/// Context `C` with its storage protected as `keys` says.
pub struct Vaulted<C> {
    inner: C,
    keys: Protection,
}

impl<C> Vaulted<C> {
    /// `inner` with its storage encrypted under `keys`.
    pub fn new(inner: C, keys: Keyring) -> Self {
        Self::with(inner, Protection::encrypted(Arc::new(keys)))
    }

    /// `inner` with its storage in clear.
    pub fn plain(inner: C) -> Self {
        Self::with(inner, Protection::Plain)
    }

    pub fn with(inner: C, keys: Protection) -> Self {
        Self { inner, keys }
    }

    /// Whether blobs are encrypted.
    pub fn protection(&self) -> &Protection {
        &self.keys
    }

    /// The context it wraps.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn wrap(&self, inner: C) -> Self {
        Self {
            inner,
            keys: self.keys.clone(),
        }
    }
}

impl<C: Supervisor> Supervisor for Vaulted<C> {
    fn name(&self) -> commonware_runtime::Name {
        self.inner.name()
    }

    fn child(&self, label: &'static str) -> Self {
        self.wrap(self.inner.child(label))
    }

    fn with_attribute(self, key: &'static str, value: impl std::fmt::Display) -> Self {
        let keys = self.keys;
        Self {
            inner: self.inner.with_attribute(key, value),
            keys,
        }
    }
}

impl<C: Spawner> Spawner for Vaulted<C> {
    fn shared(self, blocking: bool) -> Self {
        let keys = self.keys;
        Self {
            inner: self.inner.shared(blocking),
            keys,
        }
    }

    fn dedicated(self) -> Self {
        let keys = self.keys;
        Self {
            inner: self.inner.dedicated(),
            keys,
        }
    }

    fn spawn<F, Fut, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce(Self) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let keys = self.keys;
        self.inner.spawn(move |inner| f(Self { inner, keys }))
    }

    fn stop(
        self,
        value: i32,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.inner.stop(value, timeout)
    }

    fn stopped(&self) -> Signal {
        self.inner.stopped()
    }
}

impl<C: Metrics> Metrics for Vaulted<C> {
    fn register<N: Into<String>, H: Into<String>, M: Metric>(
        &self,
        name: N,
        help: H,
        metric: M,
    ) -> Registered<M> {
        self.inner.register(name, help, metric)
    }

    fn encode(&self) -> String {
        self.inner.encode()
    }
}

impl<C: Clock> governor::clock::Clock for Vaulted<C> {
    type Instant = SystemTime;

    fn now(&self) -> SystemTime {
        self.inner.current()
    }
}

impl<C: Clock> governor::clock::ReasonablyRealtime for Vaulted<C> {}

impl<C: Clock> Clock for Vaulted<C> {
    fn current(&self) -> SystemTime {
        self.inner.current()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<C> {
        self.inner.sleep(duration)
    }

    fn sleep_until(
        &self,
        deadline: SystemTime,
    ) -> impl Future<Output = ()> + Send + 'static + use<C> {
        self.inner.sleep_until(deadline)
    }
}

impl<C: rand_core::TryRng> rand_core::TryRng for Vaulted<C> {
    type Error = C::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

impl<C: rand_core::TryCryptoRng> rand_core::TryCryptoRng for Vaulted<C> {}

impl<C: Storage> Storage for Vaulted<C> {
    type Blob = StoredBlob<C::Blob>;

    async fn open_versioned(
        &self,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<BlobVersion>,
    ) -> Result<(Self::Blob, u64, BlobVersion), Error> {
        match &self.keys {
            Protection::Plain => open_plain(&self.inner, partition, name, versions).await,
            Protection::Encrypted(vault) => {
                let blob = vault
                    .open(&self.inner, partition, name, versions, Create::Yes)
                    .await?
                    .expect("an open that may create a blob finds it");
                let (len, version) = (blob.state().len, blob.version);
                Ok((
                    StoredBlob::Encrypted(EncryptedBlob::new(blob)),
                    len,
                    version,
                ))
            }
        }
    }

    async fn remove(&self, partition: &str, name: Option<&[u8]>) -> Result<(), Error> {
        match &self.keys {
            Protection::Plain => self.inner.remove(partition, name).await,
            Protection::Encrypted(vault) => vault.remove(&self.inner, partition, name).await,
        }
    }

    async fn scan(&self, partition: &str) -> Result<Vec<Vec<u8>>, Error> {
        self.inner.scan(partition).await
    }
}
