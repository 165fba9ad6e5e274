//! An encrypted blob: the inner blob holds the header, then the data encrypted at its offset.
//! Offsets and lengths callers see leave the header out.

use crate::{BlobCipher, HEADER_LEN};
use bytes::BufMut as _;
use commonware_runtime::{Blob, Error, Handle, IoBufs, IoBufsMut, ReadOptions, WriteOptions};
use std::sync::{Arc, Mutex};

/// A blob whose bytes are encrypted in the inner blob `B`.
pub struct EncryptedBlob<B: Blob> {
    inner: B,
    cipher: BlobCipher,
    /// The data's length: a blob grown by `resize` must read back zeros, so the new range is
    /// written as encrypted zeros, which needs the old length. Held only to read or set it.
    len: Arc<Mutex<u64>>,
}

impl<B: Blob> EncryptedBlob<B> {
    pub(crate) fn new(inner: B, cipher: BlobCipher, len: u64) -> Self {
        Self {
            inner,
            cipher,
            len: Arc::new(Mutex::new(len)),
        }
    }

    fn physical(offset: u64) -> Result<u64, Error> {
        offset.checked_add(HEADER_LEN).ok_or(Error::OffsetOverflow)
    }

    fn len(&self) -> u64 {
        *self
            .len
            .lock()
            .expect("the length lock is never held across a panic")
    }

    fn grow_to(&self, end: u64) {
        let mut len = self
            .len
            .lock()
            .expect("the length lock is never held across a panic");
        *len = (*len).max(end);
    }

    /// Writes encrypted zeros over `[from, to)`: what a plain blob reads in a range it grew by
    /// (the inner blob's own zeros would decrypt to noise). A bounded chunk at a time.
    async fn write_zeros(&self, from: u64, to: u64) -> Result<(), Error> {
        const CHUNK: u64 = 1 << 20;
        let mut at = from;
        while at < to {
            let size = (to - at).min(CHUNK);
            let mut zeros = vec![0u8; size as usize];
            self.cipher.apply(at, &mut zeros);
            self.inner
                .write_at(Self::physical(at)?, zeros, WriteOptions::default())
                .await?;
            at += size;
        }
        Ok(())
    }

    /// `len` decrypted bytes at `offset`, in one buffer.
    async fn read_plain(
        &self,
        offset: u64,
        len: usize,
        options: ReadOptions,
    ) -> Result<Vec<u8>, Error> {
        let read = self
            .inner
            .read_at(Self::physical(offset)?, len, options)
            .await?;
        let mut bytes = read.coalesce().as_ref().to_vec();
        self.cipher.apply(offset, &mut bytes);
        Ok(bytes)
    }
}

impl<B: Blob> Blob for EncryptedBlob<B> {
    async fn read_at_buf(
        &self,
        offset: u64,
        len: usize,
        bufs: impl Into<IoBufsMut> + Send,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        let plain = self.read_plain(offset, len, options).await?;
        let mut bufs = bufs.into();
        if bufs.len() == len {
            bufs.copy_from_slice(&plain);
        } else {
            bufs.put_slice(&plain);
        }
        Ok(bufs)
    }

    async fn read_at(
        &self,
        offset: u64,
        len: usize,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        Ok(self.read_plain(offset, len, options).await?.into())
    }

    async fn write_at(
        &self,
        offset: u64,
        bufs: impl Into<IoBufs> + Send,
        options: WriteOptions,
    ) -> Result<(), Error> {
        let mut bytes = bufs.into().coalesce().as_ref().to_vec();
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(Error::OffsetOverflow)?;
        self.cipher.apply(offset, &mut bytes);
        let len = self.len();
        if offset > len {
            self.write_zeros(len, offset).await?;
        }
        self.inner
            .write_at(Self::physical(offset)?, bytes, options)
            .await?;
        self.grow_to(end);
        Ok(())
    }

    async fn resize(&self, len: u64) -> Result<(), Error> {
        let old = self.len();
        if len > old {
            self.write_zeros(old, len).await?;
        } else {
            self.inner.resize(Self::physical(len)?).await?;
        }
        *self
            .len
            .lock()
            .expect("the length lock is never held across a panic") = len;
        Ok(())
    }

    async fn sync(&self) -> Result<(), Error> {
        self.inner.sync().await
    }

    async fn start_sync(&self) -> Handle<()> {
        self.inner.start_sync().await
    }
}
