//! The header every encrypted blob starts with: which data key encrypts it, the salt its
//! keystream is made with, and a check that tells a wrong key from a right one without
//! revealing either. It takes a whole blob page, so the data after it keeps its alignment.

use crate::{BlobCipher, DataKey};

/// Bytes the header occupies at the start of every encrypted blob (one blob page).
pub const HEADER_LEN: u64 = 4096;

const MAGIC: &[u8; 8] = b"TRELVLT1";
const KEY_CHECK: &[u8] = b"trellis-vault key check";

/// Which of a partition's data keys encrypts a blob (keys rotate; old blobs keep theirs until
/// rewritten).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "data key #{}", self.0)
    }
}

/// A blob's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    pub key_id: KeyId,
    pub salt: [u8; 16],
    /// HMAC of the salt under the data key: proves the key without revealing it.
    pub(crate) check: [u8; 16],
}

/// Why a blob's first bytes are not a header this key opens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "the blob does not start with a Trellis encryption header: it was written without encryption (or is damaged)"
    )]
    NotEncrypted,
    #[error(
        "the blob is encrypted, and this node was started without data encryption: configure the key-encryption key it was written under"
    )]
    Encrypted,
    #[error("the blob's header is {0} bytes long, shorter than a header: its creation was torn")]
    Short(usize),
    #[error("the blob is encrypted under {0}, which this node was not given")]
    UnknownKey(KeyId),
    #[error(
        "the blob is encrypted under another {0} than the one this node holds (another key, or another node's directory)"
    )]
    WrongKey(KeyId),
    #[error(
        "the blob's move to a new data key was interrupted while rewriting a chunk, and the copy of that chunk (partition trellis-vault-rekey) is missing or damaged: restore the directory from a backup or resync the node"
    )]
    LostChunk,
}

impl HeaderError {
    /// The storage error refusing to open blob `name` of `partition` for this reason.
    pub fn refusing(self, partition: &str, name: &[u8]) -> commonware_runtime::Error {
        commonware_runtime::Error::BlobOpenFailed(
            partition.to_owned(),
            hex::encode(name),
            std::sync::Arc::new(std::io::Error::other(self)),
        )
    }
}

impl BlobHeader {
    /// Bytes of the magic every header starts with.
    pub const MAGIC_LEN: usize = MAGIC.len();
    /// Bytes the header's fields take (the rest of its page is zeros, or re-encryption
    /// records): what replacing a header rewrites.
    pub const FIELDS_LEN: usize = 44;

    /// Whether `bytes` (a blob's first [`Self::MAGIC_LEN`] bytes) are a header's magic.
    pub fn has_magic(bytes: &[u8]) -> bool {
        bytes == MAGIC
    }

    /// A new blob's header under `key` (known as `key_id`), with a fresh salt.
    pub fn new(key_id: KeyId, key: &DataKey) -> Result<Self, getrandom::Error> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)?;
        Ok(Self {
            key_id,
            salt,
            check: check(key, &salt),
        })
    }

    /// The header's bytes: magic ‖ key id ‖ salt ‖ check, zero-padded to [`HEADER_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.key_id.0.to_be_bytes());
        bytes.extend_from_slice(&self.salt);
        bytes.extend_from_slice(&self.check);
        bytes.resize(HEADER_LEN as usize, 0);
        bytes
    }

    /// Reads a header, without checking a key.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        if bytes.len() < HEADER_LEN as usize {
            return Err(HeaderError::Short(bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err(HeaderError::NotEncrypted);
        }
        let field = |range: std::ops::Range<usize>| &bytes[range];
        Ok(Self {
            key_id: KeyId(u32::from_be_bytes(
                field(8..12).try_into().expect("4 bytes"),
            )),
            salt: field(12..28).try_into().expect("16 bytes"),
            check: field(28..44).try_into().expect("16 bytes"),
        })
    }

    /// Whether `bytes`, shorter than a header, can be what a torn header write left: each
    /// magic byte there or still zero, and the padding zero. A short blob written in clear
    /// almost never is, so it is refused rather than taken for a new blob and overwritten.
    pub fn torn_prefix(bytes: &[u8]) -> bool {
        let magic = bytes.iter().zip(MAGIC).all(|(b, m)| *b == 0 || b == m);
        magic && bytes.iter().skip(Self::FIELDS_LEN).all(|b| *b == 0)
    }

    /// The blob's keystream, if `key` is the one its header names.
    pub fn cipher(
        &self,
        key: &DataKey,
        partition: &str,
        name: &[u8],
    ) -> Result<BlobCipher, HeaderError> {
        if check(key, &self.salt) != self.check {
            return Err(HeaderError::WrongKey(self.key_id));
        }
        Ok(BlobCipher::new(key, partition, name, &self.salt))
    }
}

fn check(key: &DataKey, salt: &[u8; 16]) -> [u8; 16] {
    let mac = key.derive(&[KEY_CHECK, salt]);
    mac[..16].try_into().expect("16 of 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_names_its_key_and_refuses_another() {
        let key = DataKey::from_bytes([3; 32]);
        let header = BlobHeader::new(KeyId(2), &key).unwrap();
        let bytes = header.encode();
        assert_eq!(bytes.len() as u64, HEADER_LEN);
        let read = BlobHeader::decode(&bytes).unwrap();
        assert_eq!(read, header);
        assert!(read.cipher(&key, "state", b"blob").is_ok());
        let other = DataKey::from_bytes([4; 32]);
        assert_eq!(
            read.cipher(&other, "state", b"blob").unwrap_err(),
            HeaderError::WrongKey(KeyId(2))
        );
        // Fresh salts: two blobs made under one key never share a keystream.
        assert_ne!(BlobHeader::new(KeyId(2), &key).unwrap().salt, header.salt);
    }

    #[test]
    fn plaintext_and_torn_headers_are_named() {
        let plain = vec![0x11; HEADER_LEN as usize];
        assert_eq!(BlobHeader::decode(&plain), Err(HeaderError::NotEncrypted));
        let key = DataKey::from_bytes([3; 32]);
        let bytes = BlobHeader::new(KeyId(0), &key).unwrap().encode();
        assert_eq!(
            BlobHeader::decode(&bytes[..100]),
            Err(HeaderError::Short(100))
        );
        let message = HeaderError::NotEncrypted.to_string();
        assert!(message.contains("without encryption"), "{message}");
    }
}
