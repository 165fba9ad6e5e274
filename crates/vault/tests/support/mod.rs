//! What the vault's tests share: a runtime on a directory, and the keys.
#![allow(dead_code)]

use commonware_runtime::{Runner as _, tokio};
use std::path::Path;
use trellis_vault::{DataKey, KeyId, Keyring};

pub const PARTITION: &str = "ledger";

/// Runs `test` on a tokio runtime storing in `dir`.
pub fn run<F, Fut>(dir: &Path, test: F)
where
    F: FnOnce(tokio::Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let config = tokio::Config::new().with_storage_directory(dir);
    tokio::Runner::new(config).start(test);
}

pub fn key(byte: u8) -> DataKey {
    DataKey::from_bytes([byte; 32])
}

/// Key 1 made of `byte`s.
pub fn keys(byte: u8) -> Keyring {
    Keyring::new(KeyId(1), key(byte))
}

/// The keys of `keys(1)` after a rotation: key 1, and key 2 for new blobs.
pub fn rotated() -> Keyring {
    Keyring::from_keys(KeyId(2), [(KeyId(1), key(1)), (KeyId(2), key(2))].into()).unwrap()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
