//! Key-encryption keys: what wraps a node's data keys, so the data keys are stored only
//! wrapped and exist in clear only in the node's memory. [`LocalKek`] is a key file kept off the
//! data disk (for dev chains and single-host setups); an HSM or a key-manager process are
//! others ([`KeyWrapper`]).

use crate::DataKey;
use aes_gcm::{
    Aes256Gcm, Key, KeyInit,
    aead::{Aead, Nonce, Payload},
};
use sha2::{Digest, Sha256};
use std::{
    io::Write as _,
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
/// Bound into every wrapping (with the key's id): a wrapped data key opens as nothing else.
pub const WRAP_DOMAIN: &[u8] = b"trellis-vault data key";

/// Wraps and unwraps data keys under a key-encryption key it holds (or reaches).
pub trait KeyWrapper: Send + Sync {
    /// Names the key-encryption key without revealing it: recorded beside the wrapped keys, so
    /// the node can say which key a directory needs.
    fn id(&self) -> String;

    /// `key` encrypted and authenticated together with `context`.
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// The data key `wrapped` holds, if this key wrapped it with `context`.
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, WrapError>;
}

/// Why a data key could not be wrapped or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error(
        "the key-encryption key does not open it: another key wrapped it, or the stored copy was altered"
    )]
    NotItsKey,
    #[error("the key-encryption key could not be used")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a key-encryption key file could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KekFileError {
    #[error(
        "no key-encryption key at {path}: restore it from its backup (without it the data cannot be read), or point the node at the right file"
    )]
    Missing { path: String },
    #[error("cannot read the key-encryption key {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a key-encryption key: it must hold one line of 64 hex digits (32 bytes)"
    )]
    Malformed { path: String },
    #[error("cannot write the key-encryption key {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random generator failed")]
    Random(#[source] getrandom::Error),
}

/// A 32-byte AES-256 key-encryption key kept in a file (mode 0600) that must not lie on the
/// data disk. Wraps with AES-256-GCM.
pub struct LocalKek {
    key: Zeroizing<[u8; 32]>,
    path: PathBuf,
}

impl LocalKek {
    /// The key in `path`.
    pub fn load(path: &Path) -> Result<Self, KekFileError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KekFileError::Missing { path: shown });
            }
            Err(source) => {
                return Err(KekFileError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut())
            .map_err(|_| KekFileError::Malformed { path: shown })?;
        Ok(Self {
            key,
            path: path.to_owned(),
        })
    }

    /// A fresh key, written to `path` (which must not exist) readable by its owner only.
    pub fn create(path: &Path) -> Result<Self, KekFileError> {
        let shown = path.display().to_string();
        let write = |source| KekFileError::Write {
            path: shown.clone(),
            source,
        };
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(KekFileError::Random)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(write)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_ref())));
        file.write_all(text.as_bytes()).map_err(write)?;
        file.sync_all().map_err(write)?;
        Ok(Self {
            key,
            path: path.to_owned(),
        })
    }

    /// The key in `path`, made there first if there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KekFileError> {
        match Self::load(path) {
            Err(KekFileError::Missing { .. }) => Self::create(path),
            found => found,
        }
    }

    /// Where the key is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.key))
    }
}

impl KeyWrapper for LocalKek {
    fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"trellis-vault key-encryption key id")
            .chain_update(self.key.as_ref())
            .finalize();
        format!("file:{}", hex::encode(&digest[..8]))
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| WrapError::Unavailable(Box::new(e)))?;
        let aad = [WRAP_DOMAIN, context].concat();
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: key.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| WrapError::NotItsKey)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, WrapError> {
        let (nonce, sealed) = wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or(WrapError::NotItsKey)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        let aad = [WRAP_DOMAIN, context].concat();
        let opened = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &Nonce::<Aes256Gcm>::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| WrapError::NotItsKey)?,
        );
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| WrapError::NotItsKey)?;
        Ok(DataKey::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_key_unwraps_under_its_key_and_context_only() {
        let dir = tempfile::tempdir().unwrap();
        let kek = LocalKek::create(&dir.path().join("kek")).unwrap();
        let data = DataKey::from_bytes([7; 32]);
        let wrapped = kek.wrap(&data, b"#1").unwrap();
        assert!(!wrapped.windows(32).any(|w| w == [7; 32]));
        assert_eq!(kek.unwrap(&wrapped, b"#1").unwrap().expose(), &[7; 32]);
        assert!(matches!(
            kek.unwrap(&wrapped, b"#2"),
            Err(WrapError::NotItsKey)
        ));

        let again = LocalKek::load(kek.path()).unwrap();
        assert_eq!(again.id(), kek.id());
        let other = LocalKek::create(&dir.path().join("other")).unwrap();
        assert_ne!(other.id(), kek.id());
        assert!(matches!(
            other.unwrap(&wrapped, b"#1"),
            Err(WrapError::NotItsKey)
        ));
        assert!(
            LocalKek::create(kek.path()).is_err(),
            "never overwrites a key"
        );
    }

    #[test]
    fn a_missing_or_malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let message = LocalKek::load(&path).err().unwrap().to_string();
        assert!(message.contains("no key-encryption key at"), "{message}");
        std::fs::write(&path, "not hex\n").unwrap();
        let message = LocalKek::load(&path).err().unwrap().to_string();
        assert!(message.contains("64 hex digits"), "{message}");
    }
}
