//! Which data key encrypts each blob of a data directory, read from the files: how far a data
//! key's rotation has reached, and the list of blobs a re-encryption walks. Read-only, and
//! safe beside a running node.

use crate::{BlobHeader, HEADER_LEN, KeyId, SCRATCH_PARTITION, record::RekeyRecord};
use std::{collections::BTreeMap, io::Read as _, path::Path};

/// Where the storage layer's own header (first in a blob's file, named by its magic) ends and
/// ours begins: commonware-runtime's V1 layout takes a page, V0 an 8-byte prelude.
const LAYOUTS: [(&[u8; 4], u64); 2] = [(b"CWIK", 4096), (b"CWIC", 8)];

/// Blobs and their bytes, by the data key they are encrypted under (`None`: in clear, or too
/// short to tell). A blob midway through a move to a new key is counted under its old key,
/// and its bytes under the key each is under.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub by_key: BTreeMap<Option<KeyId>, Tally>,
    /// Blobs midway through a move, and their bytes still under the old key.
    pub moving: Tally,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub blobs: usize,
    pub bytes: u64,
}

/// One blob of a data directory, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub partition: String,
    pub name: Vec<u8>,
    /// The file's size.
    pub bytes: u64,
    /// The key its header names (`None`: in clear, or too short to tell).
    pub key: Option<KeyId>,
    /// Midway through a move: the key it moves to, and how many of its bytes are there.
    pub moving: Option<Moving>,
}

/// A blob's move to a new key, as far as it has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moving {
    pub to: KeyId,
    /// Bytes of the file under the new key (its headers counted).
    pub moved: u64,
}

/// Every blob in every partition directory of `dir` (the vault's scratch copies left out).
pub fn blobs(dir: &Path) -> std::io::Result<Vec<StoredFile>> {
    let mut found = Vec::new();
    for partition in std::fs::read_dir(dir)? {
        let partition = partition?;
        let partition_name = partition.file_name().to_string_lossy().into_owned();
        if !partition.file_type()?.is_dir() || partition_name == SCRATCH_PARTITION {
            continue;
        }
        for blob in std::fs::read_dir(partition.path())? {
            let blob = blob?;
            // Blob files are named by their name in hex; anything else is not a blob.
            let Ok(name) = hex::decode(blob.file_name().to_string_lossy().as_bytes()) else {
                continue;
            };
            if !blob.file_type()?.is_file() {
                continue;
            }
            let (key, moving) = keys_of(&blob.path())?;
            found.push(StoredFile {
                partition: partition_name.clone(),
                name,
                bytes: blob.metadata()?.len(),
                key,
                moving,
            });
        }
    }
    Ok(found)
}

/// Counts the blobs in every partition directory of `dir`.
pub fn census(dir: &Path) -> std::io::Result<Census> {
    let mut census = Census::default();
    for blob in blobs(dir)? {
        let tally = census.by_key.entry(blob.key).or_default();
        tally.blobs += 1;
        let Some(Moving { to, moved }) = blob.moving else {
            tally.bytes += blob.bytes;
            continue;
        };
        let moved = moved.min(blob.bytes);
        tally.bytes += blob.bytes - moved;
        census.by_key.entry(Some(to)).or_default().bytes += moved;
        census.moving.blobs += 1;
        census.moving.bytes += blob.bytes - moved;
    }
    Ok(census)
}

/// The data key of the blob stored in file `path`, and where its move stands if it moves.
fn keys_of(path: &Path) -> std::io::Result<(Option<KeyId>, Option<Moving>)> {
    let mut start = Vec::new();
    std::fs::File::open(path)?
        .take(4096 + HEADER_LEN)
        .read_to_end(&mut start)?;
    let Some((_, at)) = LAYOUTS.iter().find(|(magic, _)| start.starts_with(*magic)) else {
        return Ok((None, None));
    };
    let Some(page) = start.get(*at as usize..) else {
        return Ok((None, None));
    };
    let Ok(header) = BlobHeader::decode(page) else {
        return Ok((None, None));
    };
    let moving = RekeyRecord::current(page, &header).map(|record| {
        let moved = if record.complete {
            u64::MAX
        } else {
            record.watermark.saturating_add(HEADER_LEN + *at)
        };
        Moving {
            to: record.target.key_id,
            moved,
        }
    });
    Ok((Some(header.key_id), moving))
}
