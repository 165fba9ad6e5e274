//! Opening a blob encrypted: an [`EncryptedBlob`] over the inner storage's blob, its header
//! written (and made durable) when the blob is made; and the keys it is opened with.

use crate::{BlobHeader, EncryptedBlob, HEADER_LEN, HeaderError, Keyring, StoredBlob};
use commonware_runtime::{Blob as _, BlobVersion, Error, Storage, WriteOptions};
use std::sync::Arc;

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

/// Opens blob `name` of `partition` in `inner` in clear, refusing one that is encrypted (a
/// node started without its keys would otherwise read noise).
pub(crate) async fn open_plain<S: Storage>(
    inner: &S,
    partition: &str,
    name: &[u8],
    versions: std::ops::RangeInclusive<BlobVersion>,
) -> Result<(StoredBlob<S::Blob>, u64, BlobVersion), Error> {
    let (blob, size, version) = inner.open_versioned(partition, name, versions).await?;
    let probe = size.min(BlobHeader::MAGIC_LEN as u64) as usize;
    if probe > 0 {
        let bytes = blob.read_at(0, probe, Default::default()).await?;
        if BlobHeader::has_magic(bytes.coalesce().as_ref()) {
            return Err(refused(partition, name, HeaderError::Encrypted));
        }
    }
    Ok((StoredBlob::Plain(blob), size, version))
}

/// Opens blob `name` of `partition` in `inner` as an encrypted blob under `keys`: a new blob
/// (or one whose creation tore before its header was durable) gets a header first. Its
/// keystream is bound to partition `keyed_as` (the blob's own partition, or the one a staged
/// copy will be renamed to) and its name, so a blob moved elsewhere reads as noise.
pub async fn open_encrypted<S: Storage>(
    inner: &S,
    keys: &Keyring,
    (partition, keyed_as): (&str, &str),
    name: &[u8],
    versions: std::ops::RangeInclusive<BlobVersion>,
) -> Result<(EncryptedBlob<S::Blob>, u64, BlobVersion), Error> {
    let (blob, size, version) = inner.open_versioned(partition, name, versions).await?;
    if size > 0 && size < HEADER_LEN {
        let bytes = blob.read_at(0, size as usize, Default::default()).await?;
        if !BlobHeader::torn_prefix(bytes.coalesce().as_ref()) {
            return Err(refused(partition, name, HeaderError::NotEncrypted));
        }
    }
    let header = if size < HEADER_LEN {
        // Made now, or torn before its header was durable (and so before any data was
        // written): it gets a header.
        let (current, key) = keys.current_key();
        let header = BlobHeader::new(current, &key)
            .map_err(|e| Error::Io(Arc::new(std::io::Error::other(e))))?;
        if size > 0 {
            blob.resize(0).await?;
        }
        // One sync makes the resize and the header durable together (a SYNC write is no
        // barrier for the resize before it, so the two are not combined that way).
        blob.write_at(0, header.encode(), WriteOptions::default())
            .await?;
        blob.sync().await?;
        header
    } else {
        let bytes = blob
            .read_at(0, HEADER_LEN as usize, Default::default())
            .await?;
        BlobHeader::decode(bytes.coalesce().as_ref()).map_err(|e| refused(partition, name, e))?
    };
    let key = keys
        .key(header.key_id)
        .map_err(|e| refused(partition, name, e))?;
    let cipher = header
        .cipher(&key, keyed_as, name)
        .map_err(|e| refused(partition, name, e))?;
    let len = size.saturating_sub(HEADER_LEN);
    Ok((EncryptedBlob::new(blob, cipher, len), len, version))
}
