//! `trellis field`: sensitive fields kept off the ledger in clear. A writer seals a field
//! (a salted commitment for the chain, an envelope its parties and an auditor decrypt); a
//! recipient opens the envelope; anyone handed an opening checks it against the chain.

use crate::{gov::NodeArg, lifecycle::runtime};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use trellis_client::load_account_key_with;
use trellis_confidential::{Commitment, Envelope, FieldLabel, Found, Opening};
use trellis_crypto::{AccountKey, AccountPublicKey, Passphrase};
use trellis_types::{Address, TxHash};

#[derive(Debug, Subcommand)]
pub enum FieldCommand {
    /// Print an account's public key: hand it to whoever seals fields to the account.
    PublicKey(KeyFile),
    /// Seal a field: print its commitment (for the chain) and its envelope (the opening
    /// encrypted to each --to key), as JSON.
    Seal(SealArgs),
    /// Decrypt an envelope addressed to your account: print the field's opening (label, value,
    /// salt) as JSON, checked against the envelope's commitment.
    Open(OpenArgs),
    /// Check an opening: against a commitment, or against the transaction that recorded it.
    Verify(VerifyArgs),
}

/// An account key in a key file (an HSM key cannot decrypt envelopes yet).
#[derive(Debug, Args)]
pub struct KeyFile {
    /// A key file: a `trellis keys new` bundle, or a list of accounts with --from.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Which account of the key file.
    #[arg(long, value_name = "ADDRESS")]
    from: Option<Address>,
    /// The file whose first line opens a sealed key file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// What the field is, e.g. `claim.diagnosis` (letters, digits, . _ : -; at most 64).
    #[arg(long)]
    label: FieldLabel,
    /// The value, as text.
    #[arg(
        long,
        conflicts_with = "value_file",
        required_unless_present = "value_file"
    )]
    value: Option<String>,
    /// The value: the bytes of this file.
    #[arg(long, value_name = "FILE")]
    value_file: Option<PathBuf>,
    /// A recipient's public key (`trellis field public-key`): each party, and the auditor.
    #[arg(long = "to", value_name = "PUBLIC-KEY", required = true)]
    to: Vec<AccountPublicKey>,
    /// Also write the opening here (readable by its owner only): the writer's own copy, to
    /// prove the value later.
    #[arg(long, value_name = "FILE")]
    opening_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    key: KeyFile,
    /// The envelope, as hex (the `envelope` of `trellis field seal`).
    #[arg(long, value_name = "HEX", required_unless_present = "tx")]
    envelope: Option<String>,
    /// Or the transaction that recorded it: its envelopes addressed to the key are opened.
    #[arg(long, value_name = "HASH", conflicts_with = "envelope")]
    tx: Option<TxHash>,
    #[command(flatten)]
    node: NodeArg,
    /// Write the opening here (readable by its owner only) instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The opening, as `trellis field seal --opening-out` or `trellis field open` wrote it.
    #[arg(long, value_name = "FILE")]
    opening: PathBuf,
    /// The commitment it must open.
    #[arg(long, value_name = "HEX", required_unless_present = "tx")]
    commitment: Option<Commitment>,
    /// The transaction that must record its commitment (asked of the node of --rpc).
    #[arg(long, value_name = "HASH")]
    tx: Option<TxHash>,
    #[command(flatten)]
    node: NodeArg,
}

pub fn run(command: FieldCommand) -> Result<()> {
    match command {
        FieldCommand::PublicKey(key) => {
            let key = key.load()?;
            println!("{}", key.public_key());
            eprintln!(
                "public key of account {}: fields sealed to it are opened with its key",
                key.address().to_checksum(None)
            );
            Ok(())
        }
        FieldCommand::Seal(args) => seal(args),
        FieldCommand::Open(args) => open(args),
        FieldCommand::Verify(args) => verify(args),
    }
}

impl KeyFile {
    fn load(&self) -> Result<AccountKey> {
        let passphrase = self
            .passphrase_file
            .as_deref()
            .map(Passphrase::from_file)
            .transpose()?;
        Ok(load_account_key_with(
            &self.key,
            self.from,
            passphrase.as_ref(),
        )?)
    }
}

fn seal(args: SealArgs) -> Result<()> {
    let value = match (&args.value, &args.value_file) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the value with --value or --value-file"),
    };
    let opening = Opening::new(args.label, value)?;
    let envelope = Envelope::seal(&opening, &args.to)?;
    if let Some(path) = &args.opening_out {
        write_opening(path, &opening)?;
    }
    let sealed = json!({
        "label": opening.label,
        "commitment": opening.commitment(),
        "envelope": format!("0x{}", hex::encode(envelope.to_bytes())),
        "recipients": envelope.recipients(),
    });
    println!("{}", serde_json::to_string_pretty(&sealed)?);
    eprintln!(
        "sealed field {} to {} recipients: put the commitment and the envelope on chain, never the value",
        opening.label,
        envelope.recipients().len()
    );
    Ok(())
}

fn open(args: OpenArgs) -> Result<()> {
    let key = args.key.load()?;
    let envelope = match (&args.envelope, args.tx) {
        (Some(text), _) => {
            let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
            let bytes = hex::decode(digits).context("the envelope is not hex")?;
            Envelope::from_bytes(&bytes)?
        }
        (None, Some(tx)) => addressed_in(&args.node, tx, key.address())?,
        (None, None) => bail!("give the envelope with --envelope or --tx"),
    };
    let opening = envelope.open(&key)?;
    eprintln!(
        "field {}: {} (commitment {})",
        opening.label,
        shown(&opening),
        opening.commitment()
    );
    match &args.out {
        Some(path) => write_opening(path, &opening),
        None => {
            println!("{}", serde_json::to_string_pretty(&opening)?);
            Ok(())
        }
    }
}

/// The envelope addressed to `account` among those transaction `tx` carries.
fn addressed_in(node: &NodeArg, tx: TxHash, account: Address) -> Result<Envelope> {
    let envelopes = runtime()?
        .block_on(node.open()?.envelopes(tx))
        .with_context(|| format!("reading transaction {tx}"))?;
    if envelopes.is_empty() {
        bail!("transaction {tx} carries no field envelope");
    }
    envelopes
        .into_iter()
        .find(|envelope| envelope.recipients().contains(&account))
        .with_context(|| {
            format!("transaction {tx} carries no envelope addressed to account {account}")
        })
}

fn verify(args: VerifyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.opening)
        .with_context(|| format!("reading {}", args.opening.display()))?;
    let opening: Opening = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an opening", args.opening.display()))?;
    if let Some(commitment) = &args.commitment {
        opening.verify(commitment)?;
        println!(
            "field {} = {} opens commitment {commitment}",
            opening.label,
            shown(&opening)
        );
    }
    if let Some(tx) = args.tx {
        let disclosed = runtime()?
            .block_on(args.node.open()?.check_disclosure(&opening, tx))
            .with_context(|| format!("checking transaction {tx}"))?;
        let place = match disclosed.found {
            Found::Input => "its input".to_owned(),
            Found::Log(index) => format!("its log {index}"),
        };
        println!(
            "field {} = {} is what transaction {tx} recorded in block {} (commitment {} in {place})",
            opening.label,
            shown(&opening),
            disclosed.block,
            opening.commitment()
        );
    }
    Ok(())
}

/// The value as text, or as hex when it is not text.
fn shown(opening: &Opening) -> String {
    match opening.text() {
        Some(text) => format!("{text:?}"),
        None => format!("0x{}", hex::encode(&opening.value)),
    }
}

fn write_opening(path: &Path, opening: &Opening) -> Result<()> {
    let text = serde_json::to_string_pretty(opening)? + "\n";
    trellis_crypto::write_secret_file(path, &text)?;
    eprintln!(
        "wrote the opening of field {} to {} (keep it secret: it reveals the value)",
        opening.label,
        path.display()
    );
    Ok(())
}
