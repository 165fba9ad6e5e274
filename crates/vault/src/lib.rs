//! Data at rest, encrypted below the storage layer: every byte a node writes to a blob is
//! encrypted at its offset, so roots, checksums and consensus above see the same bytes as
//! before and a copied data directory shows none of them.
//!
//! The cipher is a keystream per blob (AES-256 in counter mode under a key derived for that
//! blob), applied at the byte's offset: deterministic per (blob, offset) and length-preserving,
//! and each ciphertext byte depends on its plaintext byte alone. That last property is why it
//! is not a 16-byte block mode such as XTS: commonware's paged blobs rewrite a partial page
//! with its durable prefix and the checksum protecting it byte for byte, relying on a torn
//! write leaving those bytes as they were; a block mode would re-encrypt the 16-byte block
//! where old and new bytes meet, and a tear there would destroy durable bytes.
//!
//! What it does not hide: someone holding two copies of a disk taken at different times learns
//! how the bytes rewritten at one offset in between differ (the XOR of the two versions), as
//! disk encryption at any granularity reveals at least which blocks changed. Integrity is not
//! its job: the checksums and roots above detect a tampered page.

mod blob;
mod census;
mod cipher;
mod context;
mod header;
mod keyring;
mod keystore;
mod record;
mod recover;
mod registry;
mod rekey;
mod scratch;
mod shared;
mod steps;
mod storage;
mod stored;
mod wrap;

pub use blob::EncryptedBlob;
pub use census::{Census, Moving, StoredFile, Tally, blobs, census};
pub use cipher::{BlobCipher, DataKey};
pub use context::{Protection, Vaulted};
pub use header::{BlobHeader, HEADER_LEN, HeaderError, KeyId};
pub use keyring::Keyring;
pub use keystore::{KEYSTORE_FILE, KeyStore, KeyStoreError};
pub use registry::Vault;
pub use rekey::{CHUNK, Rekeying, Step};
pub use scratch::SCRATCH_PARTITION;
pub use storage::open_encrypted;
pub use stored::StoredBlob;
pub use wrap::{KekFileError, KeyWrapper, LocalKek, WRAP_DOMAIN, WrapError};
