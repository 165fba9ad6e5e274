//! An encrypted blob: the inner blob holds the header, then the data encrypted at its offset.
//! Offsets and lengths callers see leave the header out. Handles to one blob share its state
//! (`shared.rs`), so a re-encryption moving it to a new key is seen by all of them.

use crate::{
    HEADER_LEN,
    shared::{Entry, SharedBlob},
};
use bytes::BufMut as _;
use commonware_runtime::{Blob, Error, Handle, IoBufs, IoBufsMut, ReadOptions, WriteOptions};
use std::sync::Arc;

/// A blob whose bytes are encrypted in the inner blob `B`.
pub struct EncryptedBlob<B: Blob> {
    shared: Arc<SharedBlob<B>>,
}

fn physical(offset: u64) -> Result<u64, Error> {
    offset.checked_add(HEADER_LEN).ok_or(Error::OffsetOverflow)
}

impl<B: Blob> EncryptedBlob<B> {
    pub(crate) fn new(shared: Arc<SharedBlob<B>>) -> Self {
        Self { shared }
    }

    /// Writes encrypted zeros over `[from, to)`: what a plain blob reads in a range it grew by
    /// (the inner blob's own zeros would decrypt to noise). A bounded chunk at a time.
    async fn write_zeros(&self, entry: &Entry<'_, B>, from: u64, to: u64) -> Result<(), Error> {
        const CHUNK: u64 = 1 << 20;
        let mut at = from;
        while at < to {
            let size = (to - at).min(CHUNK);
            let mut zeros = vec![0u8; size as usize];
            entry.keys.apply(at, &mut zeros);
            self.shared
                .inner
                .write_at(physical(at)?, zeros, WriteOptions::default())
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
        let end = offset.saturating_add(len as u64);
        let entry = self.shared.enter(|_| offset..end).await?;
        let read = self
            .shared
            .inner
            .read_at(physical(offset)?, len, options)
            .await?;
        let mut bytes = read.coalesce().as_ref().to_vec();
        entry.keys.apply(offset, &mut bytes);
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
        // A write past the end also fills the gap from the end with zeros.
        let entry = self.shared.enter(|len| offset.min(len)..end).await?;
        entry.keys.apply(offset, &mut bytes);
        if offset > entry.len {
            self.write_zeros(&entry, entry.len, offset).await?;
        }
        self.shared
            .inner
            .write_at(physical(offset)?, bytes, options)
            .await?;
        entry.grew_to(end);
        Ok(())
    }

    async fn resize(&self, len: u64) -> Result<(), Error> {
        let entry = self.shared.enter(|old| old.min(len)..u64::MAX).await?;
        if len > entry.len {
            self.write_zeros(&entry, entry.len, len).await?;
        } else {
            self.shared.inner.resize(physical(len)?).await?;
        }
        entry.resized_to(len);
        Ok(())
    }

    async fn sync(&self) -> Result<(), Error> {
        self.shared.inner.sync().await
    }

    async fn start_sync(&self) -> Handle<()> {
        self.shared.inner.start_sync().await
    }
}
