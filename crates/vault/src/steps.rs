//! The durable steps a blob's move to a new data key is made of, shared by the move itself
//! (`rekey.rs`) and by the open that finishes a move a crash interrupted (`recover.rs`). Each
//! ends with a sync: the next step relies on it being on disk.

use crate::{BlobCipher, BlobHeader, HEADER_LEN, record::RekeyRecord, scratch::Copy};
use commonware_runtime::{Blob, Error};

/// Writes `record` to its slot and makes it durable.
pub(crate) async fn write_record<B: Blob>(blob: &B, record: &RekeyRecord) -> Result<(), Error> {
    blob.write_at(record.slot(), record.encode(), Default::default())
        .await?;
    blob.sync().await
}

/// Rewrites the chunk `copy` holds (its old ciphertext) under the new keystream, in place.
pub(crate) async fn rewrite_chunk<B: Blob>(
    blob: &B,
    old: &BlobCipher,
    new: &BlobCipher,
    copy: &Copy,
) -> Result<(), Error> {
    let mut bytes = copy.bytes.clone();
    old.apply(copy.offset, &mut bytes);
    new.apply(copy.offset, &mut bytes);
    let at = copy
        .offset
        .checked_add(HEADER_LEN)
        .ok_or(Error::OffsetOverflow)?;
    blob.write_at(at, bytes, Default::default()).await?;
    blob.sync().await
}

/// Replaces the blob's header with `target` once every byte is under its key, then clears the
/// records: the header first, so a crash between the two leaves a complete record naming the
/// header a torn replacement was writing.
pub(crate) async fn adopt<B: Blob>(blob: &B, target: &BlobHeader) -> Result<(), Error> {
    let mut fields = target.encode();
    fields.truncate(BlobHeader::FIELDS_LEN);
    blob.write_at(0, fields, Default::default()).await?;
    blob.sync().await?;
    for (slot, zeros) in RekeyRecord::cleared() {
        blob.write_at(slot, zeros, Default::default()).await?;
    }
    blob.sync().await
}
