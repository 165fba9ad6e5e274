//! Which data key encrypts each blob of a data directory, read from the files: how far a data
//! key's rotation has reached. Read-only, and safe beside a running node.

use crate::{BlobHeader, HEADER_LEN, KeyId};
use std::{collections::BTreeMap, io::Read as _, path::Path};

/// Where the storage layer's own header (first in a blob's file, named by its magic) ends and
/// ours begins: commonware-runtime's V1 layout takes a page, V0 an 8-byte prelude.
const LAYOUTS: [(&[u8; 4], u64); 2] = [(b"CWIK", 4096), (b"CWIC", 8)];

/// Blobs and their bytes, by the data key they are encrypted under (`None`: in clear, or too
/// short to tell).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub by_key: BTreeMap<Option<KeyId>, Tally>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub blobs: usize,
    pub bytes: u64,
}

/// Counts the blobs in every partition directory of `dir`.
pub fn census(dir: &Path) -> std::io::Result<Census> {
    let mut census = Census::default();
    for partition in std::fs::read_dir(dir)? {
        let partition = partition?;
        if !partition.file_type()?.is_dir() {
            continue;
        }
        for blob in std::fs::read_dir(partition.path())? {
            let blob = blob?;
            if !blob.file_type()?.is_file() {
                continue;
            }
            let key = key_of(&blob.path())?;
            let tally = census.by_key.entry(key).or_default();
            tally.blobs += 1;
            tally.bytes += blob.metadata()?.len();
        }
    }
    Ok(census)
}

/// The data key of the blob stored in file `path`.
fn key_of(path: &Path) -> std::io::Result<Option<KeyId>> {
    let mut start = Vec::new();
    std::fs::File::open(path)?
        .take(4096 + HEADER_LEN)
        .read_to_end(&mut start)?;
    let Some((_, at)) = LAYOUTS.iter().find(|(magic, _)| start.starts_with(*magic)) else {
        return Ok(None);
    };
    let found = start
        .get(*at as usize..)
        .and_then(|ours| BlobHeader::decode(ours).ok());
    Ok(found.map(|header| header.key_id))
}
