//! A blob's re-encryption record: how far moving the blob from its header's data key to a newer
//! one has come. It lives in the header page, in two slots written in turn, each checksummed,
//! so a torn record write leaves the previous record whole: the newest whole record of the
//! blob's current header is its state.

use crate::{BlobHeader, HEADER_LEN, KeyId};
use sha2::{Digest as _, Sha256};

const MAGIC: &[u8; 8] = b"TRELRKY1";
/// Where the two slots start in the header page (the header itself takes its first bytes).
const SLOTS: [u64; 2] = [1024, 2048];
const BODY_LEN: usize = 8 + 8 + 16 + 4 + 16 + 16 + 8 + 1 + 8 + 32;
/// A record's bytes: its body, then the first 16 bytes of the body's SHA-256.
pub(crate) const RECORD_LEN: usize = BODY_LEN + 16;

const _: () = assert!(SLOTS[1] + RECORD_LEN as u64 <= HEADER_LEN);

/// A chunk being rewritten when the record was made: its old ciphertext is in the scratch
/// blob, whose bytes have this digest, so a torn rewrite is finished from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub len: u64,
    pub digest: [u8; 32],
}

/// One step of a blob's move to a new data key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RekeyRecord {
    /// Orders the records of one move; the slot is `seq % 2`.
    pub seq: u64,
    /// The salt of the header the move starts from: a record left over from an earlier move
    /// (whose header has since been replaced) names another salt and is ignored.
    pub from_salt: [u8; 16],
    /// The header the blob has once moved.
    pub target: BlobHeader,
    /// Bytes below it are under the target key, the rest under the old one.
    pub watermark: u64,
    /// Every byte is under the target key (what remains is replacing the header).
    pub complete: bool,
    /// The chunk at the watermark, if its rewrite may have torn.
    pub pending: Option<Pending>,
}

impl RekeyRecord {
    /// The first record of a move from `from` to `target`, numbered after `last` (the highest
    /// number of any record left in the header page, so it outranks leftovers).
    pub fn start(from: &BlobHeader, target: BlobHeader, last: u64) -> Self {
        Self {
            seq: last + 1,
            from_salt: from.salt,
            target,
            watermark: 0,
            complete: false,
            pending: None,
        }
    }

    /// The record after this one: the watermark at `watermark`, a chunk there pending or not.
    pub fn next(&self, watermark: u64, pending: Option<Pending>) -> Self {
        Self {
            seq: self.seq + 1,
            watermark,
            pending,
            ..*self
        }
    }

    /// The record saying every byte is under the target key.
    pub fn completed(&self) -> Self {
        Self {
            complete: true,
            ..self.next(self.watermark, None)
        }
    }

    /// The highest number of any whole record in the header page (0 without one).
    pub fn last_seq(page: &[u8]) -> u64 {
        Self::all(page).map(|record| record.seq).max().unwrap_or(0)
    }

    /// Where this record is written in the blob (before the storage layer's offsets).
    pub fn slot(&self) -> u64 {
        SLOTS[(self.seq % 2) as usize]
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(RECORD_LEN);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.from_salt);
        bytes.extend_from_slice(&self.target.key_id.0.to_be_bytes());
        bytes.extend_from_slice(&self.target.salt);
        bytes.extend_from_slice(&self.target.check);
        bytes.extend_from_slice(&self.watermark.to_be_bytes());
        bytes.push(u8::from(self.complete));
        let pending = self.pending.unwrap_or(Pending {
            len: 0,
            digest: [0; 32],
        });
        bytes.extend_from_slice(&pending.len.to_be_bytes());
        bytes.extend_from_slice(&pending.digest);
        debug_assert_eq!(bytes.len(), BODY_LEN);
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum[..16]);
        bytes
    }

    /// A whole record from `bytes`, or `None` (an empty slot, a torn write).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..RECORD_LEN)?;
        let (body, sum) = bytes.split_at(BODY_LEN);
        if &body[..8] != MAGIC || Sha256::digest(body)[..16] != *sum {
            return None;
        }
        let mut at = 8;
        let mut take = |n: usize| {
            let field = &body[at..at + n];
            at += n;
            field
        };
        let u64_of = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
        let seq = u64_of(take(8));
        let from_salt = take(16).try_into().expect("16 bytes");
        let key_id = KeyId(u32::from_be_bytes(take(4).try_into().expect("4 bytes")));
        let salt = take(16).try_into().expect("16 bytes");
        let check = take(16).try_into().expect("16 bytes");
        let watermark = u64_of(take(8));
        let complete = take(1)[0] == 1;
        let len = u64_of(take(8));
        let digest = take(32).try_into().expect("32 bytes");
        Some(Self {
            seq,
            from_salt,
            target: BlobHeader {
                key_id,
                salt,
                check,
            },
            watermark,
            complete,
            pending: (len > 0).then_some(Pending { len, digest }),
        })
    }

    /// The record of `header`'s blob among what the header page holds: the newest whole one
    /// that starts from this header.
    pub fn current(page: &[u8], header: &BlobHeader) -> Option<Self> {
        Self::all(page)
            .filter(|record| record.from_salt == header.salt)
            .max_by_key(|record| record.seq)
    }

    /// Every whole record in the header page.
    pub fn all(page: &[u8]) -> impl Iterator<Item = Self> + '_ {
        SLOTS
            .iter()
            .filter_map(|slot| page.get(*slot as usize..).and_then(Self::decode))
    }

    /// What clears both slots.
    pub fn cleared() -> [(u64, Vec<u8>); 2] {
        SLOTS.map(|slot| (slot, vec![0; RECORD_LEN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKey;

    fn record(seq: u64, from: &BlobHeader, watermark: u64) -> RekeyRecord {
        RekeyRecord {
            seq,
            from_salt: from.salt,
            target: BlobHeader::new(KeyId(2), &DataKey::from_bytes([2; 32])).unwrap(),
            watermark,
            complete: false,
            pending: Some(Pending {
                len: 4096,
                digest: [9; 32],
            }),
        }
    }

    #[test]
    fn the_newest_whole_record_of_the_current_header_wins() {
        let header = BlobHeader::new(KeyId(1), &DataKey::from_bytes([1; 32])).unwrap();
        let mut page = header.encode();
        let first = record(1, &header, 100);
        let second = record(2, &header, 200);
        for r in [first, second] {
            let at = r.slot() as usize;
            page[at..at + RECORD_LEN].copy_from_slice(&r.encode());
        }
        assert_eq!(RekeyRecord::current(&page, &header), Some(second));

        // A torn write of the third leaves the second (in the other slot) standing.
        let third = record(3, &header, 300);
        let at = third.slot() as usize;
        page[at..at + 40].copy_from_slice(&third.encode()[..40]);
        assert_eq!(RekeyRecord::current(&page, &header), Some(second));

        // Records of an earlier move (another header's salt) are not this header's.
        let later = BlobHeader::new(KeyId(2), &DataKey::from_bytes([2; 32])).unwrap();
        assert_eq!(RekeyRecord::current(&page, &later), None);
        for (slot, zeros) in RekeyRecord::cleared() {
            page[slot as usize..slot as usize + zeros.len()].copy_from_slice(&zeros);
        }
        assert_eq!(RekeyRecord::all(&page).count(), 0);
    }
}
