//! Opening a blob encrypted: an [`EncryptedBlob`] over the inner storage's blob, its header
//! written (and made durable) when the blob is made; and the keys it is opened with.

use crate::{
    BlobHeader, EncryptedBlob, HEADER_LEN, HeaderError, Keyring, StoredBlob,
    recover::{Names, resume},
    shared::{Keys, SharedBlob},
};
use commonware_runtime::{Blob as _, BlobVersion, Error, Storage, WriteOptions};
use std::sync::Arc;

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
            return Err(HeaderError::Encrypted.refusing(partition, name));
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
    let names = Names {
        partition,
        keyed_as,
        name,
    };
    let shared = open_shared(inner, keys, names, versions).await?;
    let (len, version) = (shared.state().len, shared.version);
    Ok((EncryptedBlob::new(Arc::new(shared)), len, version))
}

/// [`open_encrypted`], as the state its handles share.
pub(crate) async fn open_shared<S: Storage>(
    inner: &S,
    keys: &Keyring,
    names: Names<'_>,
    versions: std::ops::RangeInclusive<BlobVersion>,
) -> Result<SharedBlob<S::Blob>, Error> {
    let Names {
        partition, name, ..
    } = names;
    let (blob, size, version) = inner.open_versioned(partition, name, versions).await?;
    if size > 0 && size < HEADER_LEN {
        let bytes = blob.read_at(0, size as usize, Default::default()).await?;
        if !BlobHeader::torn_prefix(bytes.coalesce().as_ref()) {
            return Err(HeaderError::NotEncrypted.refusing(partition, name));
        }
    }
    if size < HEADER_LEN {
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
        let cipher = header
            .cipher(&key, names.keyed_as, name)
            .map_err(|e| e.refusing(partition, name))?;
        let keys = Keys::Fixed(Arc::new(cipher));
        return Ok(SharedBlob::new(blob, version, 0, keys, header));
    }
    let page = blob
        .read_at(0, HEADER_LEN as usize, Default::default())
        .await?;
    let page = page.coalesce();
    let opened = resume(inner, &blob, keys, names, page.as_ref()).await?;
    let shared = SharedBlob::new(blob, version, size - HEADER_LEN, opened.keys, opened.header);
    {
        let mut state = shared.state();
        state.record = opened.record;
        state.last_seq = opened.last_seq;
    }
    Ok(shared)
}
