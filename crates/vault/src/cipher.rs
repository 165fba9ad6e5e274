//! The keystream: AES-256-CTR under a key derived for each blob from the partition's data key,
//! the blob's name and a salt drawn when the blob was made, read at the byte's offset.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

type Keystream = ctr::Ctr64BE<Aes256>;

/// A partition's data key: 32 random bytes, held only in memory (stored wrapped elsewhere).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The key's bytes, to be wrapped: never to be written anywhere in clear.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA-256 of `parts` under this key (each part length-prefixed, so no two
    /// different lists of parts collide).
    pub(crate) fn derive(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

/// One blob's keystream.
#[derive(Clone, ZeroizeOnDrop)]
pub struct BlobCipher {
    key: [u8; 32],
}

/// The domain the per-blob keys are derived under.
const BLOB_KEY: &[u8] = b"trellis-vault blob key";

impl BlobCipher {
    /// The keystream of blob `name` in `partition`, made with `salt` (kept in its header): a
    /// blob removed and made again under the same name gets a new salt, so a new keystream.
    pub fn new(key: &DataKey, partition: &str, name: &[u8], salt: &[u8; 16]) -> Self {
        Self {
            key: key.derive(&[BLOB_KEY, partition.as_bytes(), name, salt]),
        }
    }

    /// Encrypts (or decrypts: the same operation) `bytes`, which sit at `offset` in the blob.
    pub fn apply(&self, offset: u64, bytes: &mut [u8]) {
        let mut stream = Keystream::new(&self.key.into(), &[0u8; 16].into());
        stream.seek(offset);
        stream.apply_keystream(bytes);
    }
}

impl std::fmt::Debug for BlobCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobCipher(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(name: &[u8], salt: u8) -> BlobCipher {
        BlobCipher::new(&DataKey::from_bytes([7; 32]), "state", name, &[salt; 16])
    }

    #[test]
    fn each_byte_depends_on_its_offset_alone() {
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let blob = cipher(b"blob-1", 1);
        let mut whole = plain.clone();
        blob.apply(4096, &mut whole);
        assert_ne!(whole, plain);
        // Any range encrypted alone, at any alignment, matches the whole.
        for (start, end) in [(0, 1), (3, 17), (15, 16), (100, 999), (999, 1000)] {
            let mut part = plain[start..end].to_vec();
            blob.apply(4096 + start as u64, &mut part);
            assert_eq!(part, whole[start..end], "bytes {start}..{end}");
        }
        // Its own inverse.
        blob.apply(4096, &mut whole);
        assert_eq!(whole, plain);
    }

    #[test]
    fn blobs_salts_and_keys_each_get_their_own_keystream() {
        let zeros = |cipher: &BlobCipher| {
            let mut bytes = [0u8; 64];
            cipher.apply(0, &mut bytes);
            bytes
        };
        let base = zeros(&cipher(b"blob-1", 1));
        assert_ne!(base, zeros(&cipher(b"blob-2", 1)), "another blob");
        assert_ne!(
            base,
            zeros(&cipher(b"blob-1", 2)),
            "the same name made again"
        );
        let other_key =
            BlobCipher::new(&DataKey::from_bytes([8; 32]), "state", b"blob-1", &[1; 16]);
        assert_ne!(base, zeros(&other_key), "another key");
        let other_partition =
            BlobCipher::new(&DataKey::from_bytes([7; 32]), "blocks", b"blob-1", &[1; 16]);
        assert_ne!(base, zeros(&other_partition), "another partition");
        // Length-prefixed parts: moving a byte from the partition into the name changes it.
        let shifted = BlobCipher::new(&DataKey::from_bytes([7; 32]), "stat", b"eblob-1", &[1; 16]);
        assert_ne!(base, zeros(&shifted));
    }
}
