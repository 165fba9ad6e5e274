//! `trellis data`: a node's data at rest: its key-encryption key, and re-wrapping its data keys
//! under a new one.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use trellis_node::{encryption::Kek, node_config::DataSettings};
use trellis_vault::{KeyStore, KeyWrapper as _, LocalKek};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Make a key-encryption key file (32 random bytes, mode 0600) for node.toml's
    /// `[data_encryption] kek_file`. Keep it off the data disk, and back it up: without it the
    /// data cannot be read.
    NewKek {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Encrypt a data directory written in clear, in place, with the node stopped: under a
    /// fresh data key wrapped by node.toml's `[data_encryption] kek_file`. Resumable: if it
    /// is interrupted, run it again.
    Encrypt {
        /// The node's configuration, with its `[data_encryption]` table added.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Wrap the node's data keys under another key-encryption key, in place and in seconds;
    /// the data itself is untouched, and a running node goes on. Then point node.toml's
    /// `kek_file` at the new key (the old one no longer opens the directory).
    Rewrap {
        /// The node's configuration: its data directory and current key-encryption key.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The new key-encryption key (`trellis data new-kek`).
        #[arg(long, value_name = "FILE")]
        new_kek: PathBuf,
    },
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::NewKek { out } => {
            let kek = LocalKek::create(&out)?;
            println!(
                "key-encryption key {} written to {}",
                kek.id(),
                out.display()
            );
            Ok(())
        }
        DataCommand::Rewrap { config, new_kek } => rewrap(&config, &new_kek),
        DataCommand::Encrypt { config } => encrypt(&config),
    }
}

fn encrypt(config: &Path) -> Result<()> {
    let settings = DataSettings::load(config)?;
    let Some(kek) = settings.kek else {
        bail!(
            "{} names no [data_encryption]: add it with kek_file naming the key-encryption key (`trellis data new-kek --out FILE` makes one)",
            config.display()
        );
    };
    let dir = &settings.data_dir;
    let kek = kek.for_dir(dir)?;
    let migrated = trellis_node::migrate::encrypt(dir, kek.as_ref(), |line| eprintln!("{line}"))
        .with_context(|| format!("encrypting {}", dir.display()))?;
    println!(
        "{} encrypted: {} partition(s), {} blob(s), {:.1} MiB; the node now starts with it as it is",
        dir.display(),
        migrated.partitions,
        migrated.blobs,
        migrated.bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn rewrap(config: &Path, new_kek: &Path) -> Result<()> {
    let settings = DataSettings::load(config)?;
    let Some(Kek::File { path: old, .. }) = settings.kek else {
        bail!(
            "{} names no [data_encryption]: the node's data is stored in clear",
            config.display()
        );
    };
    let old = LocalKek::load(&old)?;
    let new = LocalKek::load(new_kek)?;
    let store = KeyStore::of(&settings.data_dir);
    store
        .rewrap(&old, &new)
        .with_context(|| format!("re-wrapping the data keys in {}", store.path().display()))?;
    println!(
        "the data keys in {} are now wrapped by {} ({}); set kek_file = {:?} in {} before the node next starts",
        store.path().display(),
        new.id(),
        new_kek.display(),
        new_kek.display().to_string(),
        config.display()
    );
    Ok(())
}
