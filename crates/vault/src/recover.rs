//! Opening a blob whose header page may record a move to a new data key: which keys encrypt
//! which bytes, and the move's unfinished step done (a chunk rewrite a crash tore finished from
//! its scratch copy; a complete move's new header put in place).

use crate::{
    BlobCipher, BlobHeader, HeaderError, Keyring,
    record::{Pending, RekeyRecord},
    scratch::Scratch,
    shared::Keys,
    steps::{adopt, rewrite_chunk, write_record},
};
use commonware_runtime::{Error, Storage};
use std::sync::Arc;

/// Where a blob's move to a new key stands once it is open.
pub(crate) struct Opened {
    pub header: BlobHeader,
    pub keys: Keys,
    pub record: Option<RekeyRecord>,
    /// The highest record number in the header page.
    pub last_seq: u64,
}

/// Which blob is being opened: its partition, the partition its keystream is bound to, its
/// name.
#[derive(Clone, Copy)]
pub(crate) struct Names<'a> {
    pub partition: &'a str,
    pub keyed_as: &'a str,
    pub name: &'a [u8],
}

/// Reads where blob `names` (its header page `page`, opened in `storage` as `blob`) stands,
/// finishing what a crash interrupted.
pub(crate) async fn resume<S: Storage>(
    storage: &S,
    blob: &S::Blob,
    keys: &Keyring,
    names: Names<'_>,
    page: &[u8],
) -> Result<Opened, Error> {
    let refuse = |error: HeaderError| error.refusing(names.partition, names.name);
    let cipher_of = |header: &BlobHeader| -> Result<BlobCipher, HeaderError> {
        let key = keys.key(header.key_id)?;
        header.cipher(&key, names.keyed_as, names.name)
    };
    let last_seq = RekeyRecord::last_seq(page);
    let (header, old) = match BlobHeader::decode(page).and_then(|h| Ok((h, cipher_of(&h)?))) {
        Ok(found) => found,
        Err(error) => {
            // A header torn while being replaced at the end of a move: the move's complete
            // record (the newest record in the page) names the header being written.
            let newest = RekeyRecord::all(page).max_by_key(|record| record.seq);
            let Some(record) = newest.filter(|record| record.complete) else {
                return Err(refuse(error));
            };
            let cipher = cipher_of(&record.target).map_err(|_| refuse(error))?;
            return moved(storage, blob, names, (record.target, cipher), last_seq).await;
        }
    };
    let Some(mut record) = RekeyRecord::current(page, &header) else {
        return Ok(Opened {
            header,
            keys: Keys::Fixed(Arc::new(old)),
            record: None,
            last_seq,
        });
    };
    let new = cipher_of(&record.target).map_err(refuse)?;
    if record.complete {
        return moved(storage, blob, names, (record.target, new), last_seq).await;
    }
    if let Some(pending) = record.pending {
        record = finish_chunk(storage, blob, names, (&old, &new), &record, pending).await?;
    }
    Ok(Opened {
        header,
        keys: Keys::Moving {
            old: Arc::new(old),
            new: Arc::new(new),
            watermark: record.watermark,
        },
        record: Some(record),
        last_seq: last_seq.max(record.seq),
    })
}

/// A blob whose move is complete but for its header: `target` put in place.
async fn moved<S: Storage>(
    storage: &S,
    blob: &S::Blob,
    names: Names<'_>,
    (target, cipher): (BlobHeader, BlobCipher),
    last_seq: u64,
) -> Result<Opened, Error> {
    adopt(blob, &target).await?;
    Scratch::<S::Blob>::remove(storage, names.partition, names.name).await?;
    Ok(Opened {
        header: target,
        keys: Keys::Fixed(Arc::new(cipher)),
        record: None,
        last_seq,
    })
}

/// Rewrites the chunk a crash may have torn from its scratch copy; the record after it.
async fn finish_chunk<S: Storage>(
    storage: &S,
    blob: &S::Blob,
    names: Names<'_>,
    (old, new): (&BlobCipher, &BlobCipher),
    record: &RekeyRecord,
    pending: Pending,
) -> Result<RekeyRecord, Error> {
    let scratch = Scratch::open(storage, names.partition, names.name).await?;
    let copy = scratch
        .read(record.watermark, pending.len, &pending.digest)
        .await
        .ok_or_else(|| HeaderError::LostChunk.refusing(names.partition, names.name))?;
    drop(scratch);
    rewrite_chunk(blob, old, new, &copy).await?;
    let next = record.next(record.watermark + pending.len, None);
    write_record(blob, &next).await?;
    Ok(next)
}
