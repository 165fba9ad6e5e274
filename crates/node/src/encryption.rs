//! Data at rest: whether a data directory is encrypted, and the keys it opens with.
//!
//! An encrypted directory holds its data keys only wrapped (`trellis-data-keys.toml`, see
//! `trellis_vault::KeyStore`); the key-encryption key that unwraps them is kept elsewhere and
//! named in node.toml:
//!
//! ```toml
//! [data_encryption]
//! kek_file = "/etc/trellis/kek"   # 32 random bytes in hex, mode 0600, not on the data disk
//!
//! # or, in production, an AES-256 key that never leaves an HSM (`trellis data new-kek --hsm`):
//! [data_encryption.kek_hsm]
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token = "member-0"
//! label = "data-kek"
//! pin_file = "hsm.pin"
//!
//! # or, without an HSM, a key manager on another host holds it (`trellis keyd`):
//! [data_encryption.keyd]
//! address = "10.0.0.9:7400"
//! public_key = "0x…"               # the key manager's identity (`trellis keyd init`)
//! ```
//!
//! Every check that can refuse runs before anything is written: a missing or wrong
//! key-encryption key leaves the directory exactly as it was.

use crate::{FileProblem, NodeError, key_watch::KeyWatch, signer::Pkcs11Key};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tracing::info;
use trellis_crypto::ValidatorSigner;
use trellis_hsm::AesKek;
use trellis_keyd::KeydKek;
use trellis_vault::{KeyStore, KeyWrapper, LocalKek, Protection, Vault};

/// The context a node's chain and consensus run on: the runtime's, with storage in clear or
/// encrypted as the data directory is. p2p runs on the runtime's own.
pub type NodeContext = trellis_vault::Vaulted<commonware_runtime::tokio::Context>;

/// node.toml's `[data_encryption]`: exactly one key-encryption key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataEncryption {
    /// The key-encryption key's file; relative to node.toml.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// An AES-256 key on a PKCS#11 token; relative paths from node.toml.
    #[serde(default)]
    pub kek_hsm: Option<Pkcs11Key>,
    /// A key manager holding it, reached as this node's transport key.
    #[serde(default)]
    pub keyd: Option<KeydSettings>,
    /// Accept a `kek_file` while the node's transport key is a file too: both then sit in
    /// clear on one host, which the white paper rules out. For dev chains and trials only.
    #[serde(default)]
    pub insecure_local_kek: bool,
}

/// Where a node's key manager is, and who it is.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeydSettings {
    pub address: SocketAddr,
    pub public_key: String,
}

impl DataEncryption {
    /// Refuses a key-encryption key held in clear beside a transport key held in clear
    /// (`transport_in_memory`), unless `insecure_local_kek` accepts it.
    pub fn check_apart(&self, transport_in_memory: bool) -> Result<(), FileProblem> {
        if self.kek_file.is_some() && transport_in_memory && !self.insecure_local_kek {
            return Err(FileProblem::KekBesideTransportKey);
        }
        Ok(())
    }

    /// The key it names, relative paths taken from `base` (node.toml's directory); a key
    /// manager is reached as `node` (the node's transport key).
    pub fn kek(&self, base: &Path, node: Option<&ValidatorSigner>) -> Result<Kek, FileProblem> {
        match (&self.kek_file, &self.kek_hsm, &self.keyd) {
            (Some(path), None, None) => Ok(Kek::File {
                path: base.join(path),
                create: false,
            }),
            (None, Some(key), None) => Ok(Kek::Hsm {
                key: key.clone(),
                base: base.to_owned(),
            }),
            (None, None, Some(keyd)) => Ok(Kek::Keyd {
                settings: keyd.clone(),
                node: node.ok_or(FileProblem::KeydWithoutNodeKey)?.clone(),
            }),
            _ => Err(FileProblem::OneKek),
        }
    }
}

/// Where a node's key-encryption key is.
#[derive(Clone, Debug)]
pub enum Kek {
    /// A key file, made on first use if `create` (a dev chain's).
    File { path: PathBuf, create: bool },
    /// An AES-256 key on a token; its PIN file's path is relative to `base`.
    Hsm { key: Pkcs11Key, base: PathBuf },
    /// A key manager's, reached as `node`.
    Keyd {
        settings: KeydSettings,
        node: ValidatorSigner,
    },
}

impl Kek {
    /// Makes the key if it is to be made and is not there yet; checks it is readable.
    pub fn make_ready(&self) -> Result<(), NodeError> {
        match self {
            Self::File { path, create: true } => LocalKek::load_or_create(path).map(drop)?,
            Self::File {
                path,
                create: false,
            } => LocalKek::load(path).map(drop)?,
            Self::Hsm { .. } | Self::Keyd { .. } => drop(self.for_dir(Path::new(""))?),
        }
        Ok(())
    }

    /// The key, for data directory `dir` (which must not hold it).
    pub fn for_dir(&self, dir: &Path) -> Result<Box<dyn KeyWrapper>, NodeError> {
        match self {
            Self::File { path, create } => {
                if inside(path, dir) {
                    return Err(NodeError::DataDir {
                        path: dir.display().to_string(),
                        problem: FileProblem::KekInsideData {
                            kek: path.display().to_string(),
                        },
                    });
                }
                let kek = if *create {
                    LocalKek::load_or_create(path)?
                } else {
                    LocalKek::load(path)?
                };
                Ok(Box::new(kek))
            }
            Self::Hsm { key, base } => {
                let token = key.open_token(base)?;
                let kek = AesKek::open(&token, &key.label).map_err(|e| key.error(e))?;
                Ok(Box::new(kek))
            }
            Self::Keyd { settings, node } => {
                let kek = KeydKek::connect(settings.address, &settings.public_key, node.clone())?;
                Ok(Box::new(kek))
            }
        }
    }
}

/// Whether `path` lies in `dir` (as far as either exists to be resolved).
fn inside(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| {
        let parent = p.parent().unwrap_or(Path::new("."));
        let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
        parent.join(p.file_name().unwrap_or_default())
    };
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    resolve(path).starts_with(dir)
}

/// Opens data directory `dir` as `kek` says: encrypted under the keys its keystore holds
/// (made now for an empty directory), or in clear without a `kek`. Refuses a plaintext
/// directory asked to be encrypted and an encrypted one started without its key, naming what
/// to do; marks the storage format of a fresh directory (`format.rs`). An encrypted directory
/// comes with what follows its keystore while the node runs (`key_watch.rs`).
pub fn open(dir: &Path, kek: Option<&Kek>) -> Result<(Protection, Option<KeyWatch>), NodeError> {
    let refuse = |problem| NodeError::DataDir {
        path: dir.display().to_string(),
        problem,
    };
    let kek = kek.map(|kek| kek.for_dir(dir)).transpose()?;
    let store = KeyStore::of(dir);
    let fresh = crate::format::is_fresh(dir).map_err(|e| refuse(e.into()))?;
    let (keys, kek) = match (kek, store.exists()) {
        (None, false) => {
            crate::format::check_or_mark(dir)?;
            info!("data at rest is stored in clear: node.toml names no [data_encryption]");
            return Ok((Protection::Plain, None));
        }
        (None, true) => return Err(refuse(FileProblem::EncryptedData)),
        (Some(_), false) if !fresh => return Err(refuse(FileProblem::PlaintextData)),
        (Some(kek), false) => {
            crate::format::check_or_mark(dir)?;
            let keys = store.create(kek.as_ref())?;
            info!(kek = %kek.id(), "encrypting a new data directory under a fresh data key");
            (keys, kek)
        }
        (Some(kek), true) => {
            if !crate::migrate::staged_partitions(dir)
                .map_err(|_| refuse(FileProblem::EncryptionUnfinished))?
                .is_empty()
            {
                return Err(refuse(FileProblem::EncryptionUnfinished));
            }
            let keys = store.open(kek.as_ref())?;
            crate::format::check_or_mark(dir)?;
            info!(kek = %kek.id(), current = %keys.current(), "data at rest is encrypted");
            (keys, kek)
        }
    };
    let vault = std::sync::Arc::new(Vault::new(std::sync::Arc::new(keys)));
    let protection = Protection::Encrypted(vault.clone());
    let watch = KeyWatch {
        seen: std::fs::metadata(store.path())
            .and_then(|m| m.modified())
            .ok(),
        store,
        kek,
        keys: vault.keys().clone(),
        protection: protection.clone(),
    };
    Ok((protection, Some(watch)))
}
