//! A blob as a node stores it: in clear, or encrypted. One type for both, so a node runs on one
//! context type whether its directory is encrypted or not.

use crate::EncryptedBlob;
use commonware_runtime::{Blob, Error, Handle, IoBufs, IoBufsMut, ReadOptions, WriteOptions};
use futures::future::Either;

/// A blob of a plaintext directory, or of an encrypted one.
pub enum StoredBlob<B: Blob> {
    Plain(B),
    Encrypted(EncryptedBlob<B>),
}

impl<B: Blob> Blob for StoredBlob<B> {
    async fn read_at_buf(
        &self,
        offset: u64,
        len: usize,
        bufs: impl Into<IoBufsMut> + Send,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        match self {
            Self::Plain(blob) => blob.read_at_buf(offset, len, bufs, options).await,
            Self::Encrypted(blob) => blob.read_at_buf(offset, len, bufs, options).await,
        }
    }

    async fn read_at(
        &self,
        offset: u64,
        len: usize,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        match self {
            Self::Plain(blob) => blob.read_at(offset, len, options).await,
            Self::Encrypted(blob) => blob.read_at(offset, len, options).await,
        }
    }

    // Forwarded so a plaintext directory keeps the inner blob's batched reads.
    fn read_many(
        &self,
        ranges: &[(u64, usize)],
        options: ReadOptions,
    ) -> impl futures::Stream<Item = Result<(usize, IoBufsMut), Error>> + Send {
        match self {
            Self::Plain(blob) => Either::Left(blob.read_many(ranges, options)),
            Self::Encrypted(blob) => Either::Right(blob.read_many(ranges, options)),
        }
    }

    async fn start_read_many(
        &self,
        ranges: &[(u64, usize)],
        options: ReadOptions,
    ) -> Handle<Vec<IoBufsMut>> {
        match self {
            Self::Plain(blob) => blob.start_read_many(ranges, options).await,
            Self::Encrypted(blob) => blob.start_read_many(ranges, options).await,
        }
    }

    async fn write_at(
        &self,
        offset: u64,
        bufs: impl Into<IoBufs> + Send,
        options: WriteOptions,
    ) -> Result<(), Error> {
        match self {
            Self::Plain(blob) => blob.write_at(offset, bufs, options).await,
            Self::Encrypted(blob) => blob.write_at(offset, bufs, options).await,
        }
    }

    async fn resize(&self, len: u64) -> Result<(), Error> {
        match self {
            Self::Plain(blob) => blob.resize(len).await,
            Self::Encrypted(blob) => blob.resize(len).await,
        }
    }

    async fn sync(&self) -> Result<(), Error> {
        match self {
            Self::Plain(blob) => blob.sync().await,
            Self::Encrypted(blob) => blob.sync().await,
        }
    }

    async fn start_sync(&self) -> Handle<()> {
        match self {
            Self::Plain(blob) => blob.start_sync().await,
            Self::Encrypted(blob) => blob.start_sync().await,
        }
    }
}
