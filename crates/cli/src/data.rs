//! `trellis data`: a node's data at rest: its key-encryption key, encrypting a directory
//! written in clear, and re-wrapping its data keys under a new key-encryption key.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use trellis_node::{
    encryption::{Kek, KeydSettings},
    node_config::DataSettings,
    signer::KeySource,
};
use trellis_vault::{KeyStore, KeyWrapper, LocalKek};

/// A key-encryption key named on the command line.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct KekArg {
    /// A key file (32 random bytes in hex).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// An AES-256 key on an HSM token:
    /// `pkcs11:token=LABEL;object=KEY?module-path=LIB&pin-source=file:PIN`.
    #[arg(long, value_name = "PKCS11-URI")]
    hsm: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Make a key-encryption key for node.toml's `[data_encryption]`: a file (mode 0600; keep
    /// it off the data disk and back it up, without it the data cannot be read) or, for
    /// production, an AES-256 key generated on an HSM that never leaves it.
    NewKek {
        #[command(flatten)]
        kek: KekArg,
    },
    /// Encrypt a data directory written in clear, in place, with the node stopped: under a
    /// fresh data key wrapped by node.toml's `[data_encryption]` key. Resumable: if it is
    /// interrupted, run it again.
    Encrypt {
        /// The node's configuration, with its `[data_encryption]` table added.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Make a new data key and encrypt everything written from now on under it: a running
    /// node takes it within seconds. Blobs already written keep their keys (see `status`).
    RotateKey {
        /// The node's configuration: its data directory and key-encryption key.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The directory's data keys, and how many blobs (and bytes) each encrypts.
    Status {
        /// The node's configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Wrap the node's data keys under another key-encryption key, in place and in seconds;
    /// the data itself is untouched, and a running node goes on. Then point node.toml's
    /// `[data_encryption]` at the new key (the old one no longer opens the directory).
    Rewrap {
        /// The node's configuration: its data directory and current key-encryption key.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The new key-encryption key: a file (`--new-kek FILE`) or an HSM key
        /// (`--new-kek pkcs11:…`), made by `trellis data new-kek`, or the key a key manager
        /// holds for this node (`--new-kek keyd:ADDR@0xIDENTITY`, after `trellis keyd allow`).
        #[arg(long, value_name = "FILE|PKCS11-URI|keyd:ADDR@0xKEY")]
        new_kek: String,
    },
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::NewKek { kek } => new_kek(kek),
        DataCommand::Rewrap { config, new_kek } => rewrap(&config, &new_kek),
        DataCommand::Encrypt { config } => encrypt(&config),
        DataCommand::RotateKey { config } => rotate_key(&config),
        DataCommand::Status { config } => status(&config),
    }
}

fn new_kek(kek: KekArg) -> Result<()> {
    let (id, place) = match (kek.out, kek.hsm) {
        (Some(out), _) => {
            let kek = LocalKek::create(&out)?;
            (kek.id(), out.display().to_string())
        }
        (None, Some(uri)) => {
            let KeySource::Pkcs11(key) = KeySource::from_arg(&uri)? else {
                bail!("--hsm takes a pkcs11: URI");
            };
            let token = key.open_token(Path::new("."))?;
            let kek = trellis_hsm::AesKek::generate(&token, &key.label)?;
            (kek.id(), format!("token {:?}", token.label()))
        }
        (None, None) => bail!("give --out FILE or --hsm PKCS11-URI"),
    };
    println!("key-encryption key {id} made in {place}");
    Ok(())
}

/// A key-encryption key named by a file path, a `pkcs11:` URI or `keyd:ADDR@0xIDENTITY` (a key
/// manager, reached as the node `config` configures).
fn kek_from_arg(spec: &str, config: &Path) -> Result<Kek> {
    if let Some(keyd) = spec.strip_prefix("keyd:") {
        let Some((address, public_key)) = keyd.split_once('@') else {
            bail!("{spec}: name a key manager as keyd:ADDR@0xIDENTITY");
        };
        let address = address
            .parse()
            .with_context(|| format!("{address} is not a socket address"))?;
        let node = trellis_node::node_config::NodeConfig::load(config)?.key;
        return Ok(Kek::Keyd {
            settings: KeydSettings {
                address,
                public_key: public_key.to_owned(),
            },
            node,
        });
    }
    Ok(match KeySource::from_arg(spec)? {
        KeySource::Pkcs11(key) => Kek::Hsm {
            key,
            base: PathBuf::from("."),
        },
        KeySource::File(path) => Kek::File {
            path,
            create: false,
        },
    })
}

/// The node's data directory and its key-encryption key, opened.
fn configured(config: &Path) -> Result<(PathBuf, Box<dyn KeyWrapper>)> {
    let settings = DataSettings::load(config)?;
    let Some(kek) = settings.kek else {
        bail!(
            "{} names no [data_encryption]: add it, naming the key-encryption key (`trellis data new-kek` makes one)",
            config.display()
        );
    };
    let kek = kek.for_dir(&settings.data_dir)?;
    Ok((settings.data_dir, kek))
}

fn encrypt(config: &Path) -> Result<()> {
    let (dir, kek) = configured(config)?;
    let migrated = trellis_node::migrate::encrypt(&dir, kek.as_ref(), |line| eprintln!("{line}"))
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

fn rotate_key(config: &Path) -> Result<()> {
    let (dir, kek) = configured(config)?;
    let id = KeyStore::of(&dir)
        .add_key(kek.as_ref())
        .with_context(|| format!("adding a data key to {}", dir.display()))?;
    println!(
        "{id} made: what the node writes from now on is encrypted under it (a running node takes it within seconds), and the running node moves what it wrote before to it in the background (`trellis data status` shows how far)"
    );
    Ok(())
}

fn status(config: &Path) -> Result<()> {
    let (dir, kek) = configured(config)?;
    let keys = KeyStore::of(&dir)
        .open(kek.as_ref())
        .with_context(|| format!("opening the data keys of {}", dir.display()))?;
    println!(
        "{}: data keys wrapped by {}; {} encrypts new data",
        dir.display(),
        kek.id(),
        keys.current()
    );
    let census =
        trellis_vault::census(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for (key, tally) in &census.by_key {
        let name = key.map_or_else(
            || "in clear or unrecognised".to_owned(),
            |id| id.to_string(),
        );
        println!(
            "  {name}: {} blob(s), {:.1} MiB",
            tally.blobs,
            tally.bytes as f64 / (1 << 20) as f64
        );
    }
    let behind: usize = census
        .by_key
        .iter()
        .filter(|(key, _)| key.is_some_and(|key| key != keys.current()))
        .map(|(_, tally)| tally.blobs)
        .sum();
    if census.moving.blobs > 0 {
        println!(
            "  moving to a newer key now: {} blob(s), {:.1} MiB still under their old key",
            census.moving.blobs,
            census.moving.bytes as f64 / (1 << 20) as f64
        );
    }
    if behind == 0 {
        println!("  every blob is under {}", keys.current());
    } else {
        println!(
            "  {behind} blob(s) under older keys: the running node moves them to {} in the background",
            keys.current()
        );
    }
    Ok(())
}

fn rewrap(config: &Path, new_kek: &str) -> Result<()> {
    let (dir, old) = configured(config)?;
    let new = kek_from_arg(new_kek, config)?.for_dir(&dir)?;
    let store = KeyStore::of(&dir);
    store
        .rewrap(old.as_ref(), new.as_ref())
        .with_context(|| format!("re-wrapping the data keys in {}", store.path().display()))?;
    println!(
        "the data keys in {} are now wrapped by {} ({new_kek}); name it in {}'s [data_encryption] before the node next starts",
        store.path().display(),
        new.id(),
        config.display()
    );
    Ok(())
}
