//! A directory's data keys, stored beside the data only wrapped by a key-encryption key that
//! is kept elsewhere: `trellis-data-keys.toml` in the data directory.
//!
//! ```toml
//! version = 1
//! kek = "file:3fa2…"      # names the key-encryption key, never reveals it
//! current = 2             # the key new blobs are encrypted under
//! [[keys]]
//! id = 1
//! wrapped = "…"           # nonce ‖ AES-GCM(data key), bound to the key's id
//! ```
//!
//! The file is replaced whole (written beside, synced, renamed), so a crash leaves the old or
//! the new keys, never a mix.

use crate::{DataKey, KeyId, KeyWrapper, Keyring, WrapError};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The keystore's file name in a data directory.
pub const KEYSTORE_FILE: &str = "trellis-data-keys.toml";
const VERSION: u32 = 1;

/// Why a directory's data keys could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a Trellis keystore")]
    Malformed {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path} is keystore version {found}; this build reads version {VERSION}")]
    Version { path: String, found: u32 },
    #[error(
        "the data keys in {path} are wrapped by key-encryption key {wrapped_by}, and the node was given {offered}: configure the key this directory was written under"
    )]
    WrongKek {
        path: String,
        wrapped_by: String,
        offered: String,
    },
    #[error("{id} in {path} does not unwrap under its key-encryption key")]
    Unwrap {
        path: String,
        id: KeyId,
        #[source]
        source: WrapError,
    },
    #[error("{path} names {current} as the key for new data but holds no such key")]
    NoCurrentKey { path: String, current: KeyId },
    #[error("cannot wrap a data key")]
    Wrap(#[source] WrapError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random generator failed")]
    Random(#[source] getrandom::Error),
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    kek: String,
    current: u32,
    keys: Vec<Wrapped>,
}

#[derive(Serialize, Deserialize)]
struct Wrapped {
    id: u32,
    wrapped: String,
}

/// What a wrapping of key `id` is bound to: a wrapped key cannot be passed off as another.
fn context(id: KeyId) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

/// A data directory's keystore.
pub struct KeyStore {
    path: PathBuf,
}

impl KeyStore {
    /// The keystore of data directory `dir` (which may not have one yet).
    pub fn of(dir: &Path) -> Self {
        Self {
            path: dir.join(KEYSTORE_FILE),
        }
    }

    /// A keystore kept at `path` (one being staged).
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// A new keystore of one fresh data key, wrapped by `kek`. Refuses to replace one.
    pub fn create(&self, kek: &dyn KeyWrapper) -> Result<Keyring, KeyStoreError> {
        let id = KeyId(1);
        let key = DataKey::generate().map_err(KeyStoreError::Random)?;
        let file = File {
            version: VERSION,
            kek: kek.id(),
            current: id.0,
            keys: vec![self.wrap(kek, id, &key)?],
        };
        self.write(&file, true)?;
        Ok(Keyring::new(id, key))
    }

    /// The data keys, unwrapped by `kek`.
    pub fn open(&self, kek: &dyn KeyWrapper) -> Result<Keyring, KeyStoreError> {
        let file = self.read()?;
        self.check_kek(&file, kek)?;
        let keys = self.unwrap_all(&file, kek)?;
        Keyring::from_keys(KeyId(file.current), keys).ok_or(KeyStoreError::NoCurrentKey {
            path: self.shown(),
            current: KeyId(file.current),
        })
    }

    /// Wraps every data key under `new` instead of `old`: the data is untouched.
    pub fn rewrap(&self, old: &dyn KeyWrapper, new: &dyn KeyWrapper) -> Result<(), KeyStoreError> {
        let file = self.read()?;
        self.check_kek(&file, old)?;
        let keys = self.unwrap_all(&file, old)?;
        let rewrapped = File {
            version: VERSION,
            kek: new.id(),
            current: file.current,
            keys: keys
                .iter()
                .map(|(id, key)| self.wrap(new, *id, key))
                .collect::<Result<_, _>>()?,
        };
        self.write(&rewrapped, false)
    }

    /// Adds a fresh data key and makes it the key new blobs are encrypted under; blobs already
    /// written keep theirs. Returns the new key's id.
    pub fn add_key(&self, kek: &dyn KeyWrapper) -> Result<KeyId, KeyStoreError> {
        let mut file = self.read()?;
        self.check_kek(&file, kek)?;
        let next = file.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        let id = KeyId(next);
        let key = DataKey::generate().map_err(KeyStoreError::Random)?;
        file.keys.push(self.wrap(kek, id, &key)?);
        file.current = id.0;
        self.write(&file, false)?;
        Ok(id)
    }

    fn check_kek(&self, file: &File, kek: &dyn KeyWrapper) -> Result<(), KeyStoreError> {
        let offered = kek.id();
        if file.kek != offered {
            return Err(KeyStoreError::WrongKek {
                path: self.shown(),
                wrapped_by: file.kek.clone(),
                offered,
            });
        }
        Ok(())
    }

    fn unwrap_all(
        &self,
        file: &File,
        kek: &dyn KeyWrapper,
    ) -> Result<BTreeMap<KeyId, DataKey>, KeyStoreError> {
        let mut keys = BTreeMap::new();
        for entry in &file.keys {
            let id = KeyId(entry.id);
            let unwrap = |source| KeyStoreError::Unwrap {
                path: self.shown(),
                id,
                source,
            };
            let bytes = hex::decode(&entry.wrapped).map_err(|_| unwrap(WrapError::NotItsKey))?;
            keys.insert(id, kek.unwrap(&bytes, &context(id)).map_err(unwrap)?);
        }
        Ok(keys)
    }

    fn wrap(
        &self,
        kek: &dyn KeyWrapper,
        id: KeyId,
        key: &DataKey,
    ) -> Result<Wrapped, KeyStoreError> {
        let wrapped = kek.wrap(key, &context(id)).map_err(KeyStoreError::Wrap)?;
        Ok(Wrapped {
            id: id.0,
            wrapped: hex::encode(wrapped),
        })
    }

    fn read(&self) -> Result<File, KeyStoreError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| KeyStoreError::Read {
            path: self.shown(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|source| KeyStoreError::Malformed {
            path: self.shown(),
            source,
        })?;
        if file.version != VERSION {
            return Err(KeyStoreError::Version {
                path: self.shown(),
                found: file.version,
            });
        }
        Ok(file)
    }

    /// Replaces the file whole: written beside, synced, renamed over, the directory synced.
    fn write(&self, file: &File, new: bool) -> Result<(), KeyStoreError> {
        let error = |source| KeyStoreError::Write {
            path: self.shown(),
            source,
        };
        if new && self.path.exists() {
            return Err(error(std::io::ErrorKind::AlreadyExists.into()));
        }
        let text = format!(
            "# This data directory's keys, each wrapped by the key-encryption key named `kek`,\n\
             # which is kept elsewhere: without it they (and the data) cannot be read.\n{}",
            toml::to_string(file).expect("the keystore always serializes")
        );
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(error)?;
        let staged = self.path.with_extension("toml.new");
        {
            use std::io::Write as _;
            let mut out = std::fs::File::create(&staged).map_err(error)?;
            out.write_all(text.as_bytes()).map_err(error)?;
            out.sync_all().map_err(error)?;
        }
        std::fs::rename(&staged, &self.path).map_err(error)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(error)
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalKek;

    #[test]
    fn keys_open_under_their_kek_rewrap_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let kek = LocalKek::create(&dir.path().join("kek")).unwrap();
        let store = KeyStore::of(&dir.path().join("data"));
        let made = store.create(&kek).unwrap();
        assert!(store.create(&kek).is_err(), "never replaces a keystore");
        let opened = store.open(&kek).unwrap();
        assert_eq!(opened.current(), made.current());

        let other = LocalKek::create(&dir.path().join("other")).unwrap();
        let message = store.open(&other).err().unwrap().to_string();
        assert!(
            message.contains(&kek.id()) && message.contains(&other.id()),
            "{message}"
        );

        store.rewrap(&kek, &other).unwrap();
        assert!(store.open(&kek).is_err(), "the old key no longer opens it");
        let rewrapped = store.open(&other).unwrap();
        assert_eq!(
            rewrapped.key_bytes(KeyId(1)),
            made.key_bytes(KeyId(1)),
            "the data keys themselves are unchanged"
        );

        let id = store.add_key(&other).unwrap();
        assert_eq!(id, KeyId(2));
        let rotated = store.open(&other).unwrap();
        assert_eq!(rotated.current(), KeyId(2));
        assert_eq!(rotated.key_bytes(KeyId(1)), made.key_bytes(KeyId(1)));
        assert_ne!(rotated.key_bytes(KeyId(2)), made.key_bytes(KeyId(1)));
    }

    #[test]
    fn an_altered_wrapped_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kek = LocalKek::create(&dir.path().join("kek")).unwrap();
        let store = KeyStore::of(dir.path());
        store.create(&kek).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        let at = text.find("wrapped = \"").unwrap() + 11;
        let mut altered = text.clone().into_bytes();
        altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
        std::fs::write(store.path(), altered).unwrap();
        let message = store.open(&kek).err().unwrap().to_string();
        assert!(message.contains("does not unwrap"), "{message}");
    }
}
