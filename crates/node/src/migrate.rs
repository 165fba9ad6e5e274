//! `trellis data encrypt`: encrypts a plaintext data directory in place, with the node stopped.
//!
//! Crash-safe in three phases, each resumable by running the command again:
//! 1. **Stage**: a fresh data key is wrapped into `trellis-data-keys.migrating.toml`, and every
//!    partition `P` is copied, encrypted, into partition `P__encrypting` beside it.
//! 2. **Commit**: the staged keystore is renamed to `trellis-data-keys.toml`. Before this, an
//!    interrupted run is undone (the staged partitions removed); after it, it is finished.
//! 3. **Swap**: each `P` is replaced by `P__encrypting`. A node refuses to start while any
//!    staged partition is left.

use commonware_runtime::{
    Blob as _, BlobVersion, Runner as _, Storage as _, Supervisor as _, tokio,
};
use std::path::{Path, PathBuf};
use trellis_vault::{KEYSTORE_FILE, KeyStore, KeyWrapper, Keyring, Vaulted, open_encrypted};

/// The suffix of a partition being encrypted.
pub const STAGED_SUFFIX: &str = "__encrypting";
const STAGED_KEYSTORE: &str = "trellis-data-keys.migrating.toml";
/// Bytes copied at a time.
const CHUNK: u64 = 1 << 20;

/// Why a directory could not be encrypted.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0} is already encrypted")]
    AlreadyEncrypted(String),
    #[error("{0} holds no data yet: the node encrypts it when it first starts")]
    Empty(String),
    #[error("a node is running on {0}: stop it first")]
    InUse(String),
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("copying blob {name} of partition {partition}")]
    Copy {
        partition: String,
        name: String,
        #[source]
        source: commonware_runtime::Error,
    },
    #[error(transparent)]
    KeyStore(#[from] trellis_vault::KeyStoreError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MigrateError + '_ {
    move |source| MigrateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What was encrypted.
#[derive(Debug, Default)]
pub struct Migrated {
    pub partitions: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Encrypts data directory `dir` in place under a fresh data key wrapped by `kek`, telling
/// `progress` what it does.
pub fn encrypt(
    dir: &Path,
    kek: &dyn KeyWrapper,
    progress: impl Fn(&str),
) -> Result<Migrated, MigrateError> {
    let shown = dir.display().to_string();
    if !dir.is_dir() || crate::format::is_fresh(dir).map_err(io(dir))? {
        return Err(MigrateError::Empty(shown));
    }
    check_stopped(dir)?;
    let committed = KeyStore::of(dir).exists();
    if committed && staged_partitions(dir)?.is_empty() {
        return Err(MigrateError::AlreadyEncrypted(shown));
    }
    let mut migrated = Migrated::default();
    if !committed {
        undo_staging(dir)?;
        let staged = KeyStore::at(dir.join(STAGED_KEYSTORE));
        let keys = staged.create(kek)?;
        migrated = stage(dir, keys, &progress)?;
        std::fs::rename(dir.join(STAGED_KEYSTORE), dir.join(KEYSTORE_FILE)).map_err(io(dir))?;
        sync_dir(dir)?;
        progress("committed: the data keys are in place");
    } else {
        progress("finishing an encryption that was interrupted after its commit");
    }
    swap(dir)?;
    Ok(migrated)
}

/// Refuses a directory a running node holds (its runtime's lock on `.hold`).
fn check_stopped(dir: &Path) -> Result<(), MigrateError> {
    let path = dir.join(".hold");
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
        return Ok(());
    };
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(MigrateError::InUse(dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

/// The partition directories of `dir`, staged ones or the others.
fn partitions(dir: &Path, staged: bool) -> Result<Vec<String>, MigrateError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().map_err(io(dir))?.is_dir();
        if is_dir && !name.starts_with('.') && name.ends_with(STAGED_SUFFIX) == staged {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

/// Partitions left staged by an interrupted run.
pub fn staged_partitions(dir: &Path) -> Result<Vec<String>, MigrateError> {
    partitions(dir, true)
}

fn undo_staging(dir: &Path) -> Result<(), MigrateError> {
    for name in staged_partitions(dir)? {
        let path = dir.join(name);
        std::fs::remove_dir_all(&path).map_err(io(&path))?;
    }
    let keys = dir.join(STAGED_KEYSTORE);
    if keys.exists() {
        std::fs::remove_file(&keys).map_err(io(&keys))?;
    }
    sync_dir(dir)
}

/// Copies every partition, encrypted, into its staged twin.
fn stage(dir: &Path, keys: Keyring, progress: &impl Fn(&str)) -> Result<Migrated, MigrateError> {
    let names = partitions(dir, false)?;
    let runtime = tokio::Config::new().with_storage_directory(dir);
    tokio::Runner::new(runtime).start(|context| async move {
        let plain = Vaulted::plain(context.child("plain"));
        let mut migrated = Migrated::default();
        for (i, partition) in names.iter().enumerate() {
            let target = format!("{partition}{STAGED_SUFFIX}");
            let copy = |name: &[u8], source| MigrateError::Copy {
                partition: partition.clone(),
                name: hex::encode(name),
                source,
            };
            let blobs = plain.scan(partition).await.map_err(|e| copy(b"", e))?;
            let mut bytes = 0;
            for name in &blobs {
                bytes += copy_blob(&plain, &keys, (partition, &target), name)
                    .await
                    .map_err(|e| copy(name, e))?;
            }
            migrated.partitions += 1;
            migrated.blobs += blobs.len();
            migrated.bytes += bytes;
            progress(&format!(
                "[{}/{}] {partition}: {} blob(s), {:.1} MiB encrypted",
                i + 1,
                names.len(),
                blobs.len(),
                bytes as f64 / (1 << 20) as f64
            ));
        }
        Ok(migrated)
    })
}

/// Copies blob `name` of partition `from` in clear to partition `to`, encrypted, with its
/// version; returns its length.
async fn copy_blob<C: commonware_runtime::Storage>(
    plain: &Vaulted<C>,
    keys: &Keyring,
    (from, to): (&str, &str),
    name: &[u8],
) -> Result<u64, commonware_runtime::Error> {
    let any = BlobVersion::new(0)..=BlobVersion::new(u16::MAX);
    let (source, len, version) = plain.open_versioned(from, name, any).await?;
    // Keyed as the partition it will be renamed to.
    let (target, _, _) =
        open_encrypted(plain.inner(), keys, (to, from), name, version..=version).await?;
    target.resize(0).await?;
    let mut at = 0;
    while at < len {
        let size = (len - at).min(CHUNK);
        let bytes = source
            .read_at(at, size as usize, Default::default())
            .await?;
        target
            .write_at(at, bytes.coalesce().as_ref().to_vec(), Default::default())
            .await?;
        at += size;
    }
    target.sync().await?;
    Ok(len)
}

/// Replaces each partition by its staged, encrypted twin.
fn swap(dir: &Path) -> Result<(), MigrateError> {
    for staged in staged_partitions(dir)? {
        let original: PathBuf = dir.join(staged.trim_end_matches(STAGED_SUFFIX));
        if original.exists() {
            std::fs::remove_dir_all(&original).map_err(io(&original))?;
        }
        std::fs::rename(dir.join(&staged), &original).map_err(io(&original))?;
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), MigrateError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
