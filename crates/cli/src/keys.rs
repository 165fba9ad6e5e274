//! `trellis keys`: make keys, in a file or inside an HSM, and move file keys into an HSM.

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use trellis_crypto::{KeyBundle, Passphrase, SealedKey, write_secret_file};
use trellis_hsm::{Ed25519Key, KeyUri, Pin, Secp256k1Key, Token};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new account key (secp256k1) and validator key (ed25519), printed as JSON; or,
    /// with --hsm, one key generated inside an HSM token, which never leaves it.
    New {
        /// Also write the keys to this file, sealed under --passphrase-file (created with mode
        /// 0600; never overwritten).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "hsm",
            requires = "passphrase_file"
        )]
        out: Option<PathBuf>,
        /// The file whose first line is the passphrase that seals --out.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Generate the key on this token instead:
        /// `pkcs11:token=LABEL;object=KEY-LABEL?module-path=LIB&pin-source=file:PIN-FILE`.
        #[arg(long, value_name = "PKCS11-URI", requires = "kind")]
        hsm: Option<String>,
        /// Which key to generate on the token.
        #[arg(long, value_enum)]
        kind: Option<KeyKind>,
    },
    /// Seal a plaintext key file under a passphrase, in place (scrypt + AES-256-GCM); its
    /// addresses and public keys stay readable.
    Seal {
        /// The key file to seal.
        file: PathBuf,
        /// The file whose first line is the passphrase.
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
    },
    /// Hand the account of --key to a new key, from the next block on: same identity, roles
    /// and limits; the old key is refused from then on (needs no vote: only its holder can).
    Rotate {
        #[command(flatten)]
        signer: crate::gov::Signer,
        /// The successor's key (a key file or a `pkcs11:` URI): it signs its consent.
        #[arg(long, value_name = "FILE|PKCS11-URI")]
        new: String,
        /// With an accounts list as --new: which account.
        #[arg(long, value_name = "ADDRESS")]
        new_from: Option<alloy_primitives::Address>,
    },
    /// Hand a validator's seat to a new ed25519 key (its consensus and p2p identity) from the
    /// next epoch on. Both keys sign; the transaction goes from --signer's account (an account
    /// of the validator's operator, if it has one). Then name the new key as
    /// `next_validator_key` in the validator's node.toml: the node switches at the boundary.
    /// A full node's transport key rotates the same way (its successor named as
    /// `next_full_node_key`).
    RotateValidator {
        #[command(flatten)]
        signer: crate::gov::Signer,
        /// The validator's current key (its key file or a `pkcs11:` URI).
        #[arg(long, value_name = "FILE|PKCS11-URI")]
        validator: String,
        /// The successor key (a key file or a `pkcs11:` URI).
        #[arg(long, value_name = "FILE|PKCS11-URI")]
        new: String,
        /// Where the successor key listens for p2p ("ip:port"; the node's address, if it stays
        /// on the same host).
        #[arg(long, value_name = "IP:PORT")]
        p2p: std::net::SocketAddr,
    },
    /// Report a validator key leaked, suspected of misuse from --compromised-since; sent from
    /// an account of the validator's operator (a validator without one: `trellis gov propose
    /// compromise-validator`). It leaves the set at the next epoch; --new hands its seat to a
    /// successor key (needed if the set would drop below four).
    ReportValidator {
        #[command(flatten)]
        signer: crate::gov::Signer,
        /// The leaked key's public key (0x and 64 hex digits).
        #[arg(long, value_name = "PUBLIC-KEY", value_parser = crate::gov::parse_validator_key)]
        validator: trellis_types::ValidatorId,
        /// The first block the key is suspected of having been misused in.
        #[arg(long, value_name = "BLOCK")]
        compromised_since: u64,
        #[command(flatten)]
        successor: crate::seat::SuccessorArgs,
    },
    /// List every record tied to a key: the transactions an account key signed (with proofs),
    /// the blocks a validator key proposed, its status and what can be done, split at the block
    /// it is suspected of misuse from.
    Activity {
        #[command(flatten)]
        node: crate::gov::NodeArg,
        /// An account address, or a validator's ed25519 public key (0x-hex).
        key: String,
        /// Split at this block (default: the compromise the chain records, if any).
        #[arg(long, value_name = "BLOCK")]
        since: Option<u64>,
        /// Print the node's whole answer (with proofs) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retire the account of --key for good; with --compromised-since, report it leaked and
    /// suspected of misuse from that block.
    Revoke {
        #[command(flatten)]
        signer: crate::gov::Signer,
        #[arg(long, value_name = "BLOCK")]
        compromised_since: Option<u64>,
    },
    /// Print the successor's signature that a rotation by vote (`trellis gov propose
    /// rotate-account OLD NEW PROOF`) needs.
    RotationProof {
        /// The account being replaced.
        #[arg(long, value_name = "ADDRESS")]
        old: alloy_primitives::Address,
        /// The successor's key (a key file or a `pkcs11:` URI).
        #[arg(long, value_name = "FILE|PKCS11-URI")]
        new: String,
        #[arg(long, value_name = "ADDRESS")]
        new_from: Option<alloy_primitives::Address>,
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Move a key from a key file onto an HSM token; it signs there from then on, exactly as
    /// before (same address or public key), and can never be read back.
    Import {
        /// The key file (a `trellis keys new` bundle, a validator key file, or an accounts list
        /// with --from).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The token and the label to store the key under (a `pkcs11:` URI).
        #[arg(long, value_name = "PKCS11-URI")]
        hsm: String,
        /// Which key of the file to move.
        #[arg(long, value_enum)]
        kind: KeyKind,
        /// With an accounts list: which account.
        #[arg(long, value_name = "ADDRESS")]
        from: Option<alloy_primitives::Address>,
        /// Opens a sealed key file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// The two kinds of key a token can hold for Trellis.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyKind {
    /// secp256k1: signs transactions.
    Account,
    /// ed25519: signs consensus votes and p2p handshakes.
    Validator,
}

pub fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Rotate {
            signer,
            new,
            new_from,
        } => crate::lifecycle::rotate(&signer, &new, new_from),
        KeysCommand::Activity {
            node,
            key,
            since,
            json,
        } => crate::lifecycle::activity(&node, &key, since, json),
        KeysCommand::RotateValidator {
            signer,
            validator,
            new,
            p2p,
        } => crate::validator_keys::rotate_validator(&signer, &validator, &new, p2p),
        KeysCommand::ReportValidator {
            signer,
            validator,
            compromised_since,
            successor,
        } => crate::validator_keys::report_validator(
            &signer,
            validator,
            compromised_since,
            &successor,
        ),
        KeysCommand::Revoke {
            signer,
            compromised_since,
        } => crate::lifecycle::revoke(&signer, compromised_since),
        KeysCommand::RotationProof {
            old,
            new,
            new_from,
            passphrase_file,
        } => crate::lifecycle::print_proof(old, &new, new_from, passphrase_file.as_deref()),
        KeysCommand::New {
            out,
            hsm: None,
            passphrase_file,
            ..
        } => new_file(out, passphrase_file.as_deref()),
        KeysCommand::Seal {
            file,
            passphrase_file,
        } => seal(&file, &passphrase_file),
        KeysCommand::New {
            hsm: Some(uri),
            kind,
            ..
        } => new_in_token(&uri, kind.context("--kind account|validator is required")?),
        KeysCommand::Import {
            file,
            hsm,
            kind,
            from,
            passphrase_file,
        } => {
            let passphrase = passphrase_file
                .as_deref()
                .map(Passphrase::from_file)
                .transpose()?;
            import(&file, &hsm, kind, from, passphrase.as_ref())
        }
    }
}

fn new_file(out: Option<PathBuf>, passphrase_file: Option<&Path>) -> Result<()> {
    let bundle = KeyBundle::generate().context("generating keys")?;
    let json = bundle.to_json();
    match (out, passphrase_file) {
        (Some(path), Some(passphrase_file)) => {
            let passphrase = Passphrase::from_file(passphrase_file)?;
            let sealed = SealedKey::seal_key_file(&json, &passphrase)?;
            write_secret_file(&path, &format!("{}\n", sealed.to_json()))?;
            eprintln!("keys written to {}, sealed (mode 0600)", path.display());
            // Only the public halves: the file is the one copy of the private keys.
            println!("{}", serde_json::to_string_pretty(&sealed.public)?);
        }
        _ => println!("{json}"),
    }
    Ok(())
}

/// Replaces a plaintext key file by its sealed form: written beside it, then renamed over it,
/// so a crash leaves one or the other whole.
fn seal(file: &Path, passphrase_file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if SealedKey::is_sealed(&text) {
        bail!("{} is sealed already", file.display());
    }
    let passphrase = Passphrase::from_file(passphrase_file)?;
    let sealed = SealedKey::seal_key_file(&text, &passphrase)?;
    let staged = file.with_extension("sealing");
    write_secret_file(&staged, &format!("{}\n", sealed.to_json()))?;
    std::fs::rename(&staged, file).with_context(|| format!("replacing {}", file.display()))?;
    eprintln!("{} is sealed; the passphrase file opens it", file.display());
    Ok(())
}

fn open_token(uri: &str) -> Result<(KeyUri, std::sync::Arc<Token>)> {
    let uri = KeyUri::parse(uri)?;
    let pin = Pin::from_file(&uri.pin_file)?;
    let token = Token::open(&uri.module, &uri.token, pin)?;
    Ok((uri, token))
}

fn new_in_token(uri: &str, kind: KeyKind) -> Result<()> {
    let (uri, token) = open_token(uri)?;
    let described = match kind {
        KeyKind::Account => {
            let key = Secp256k1Key::generate(&token, &uri.object)?;
            serde_json::json!({ "address": key.address().to_checksum(None), "key": uri.to_string() })
        }
        KeyKind::Validator => {
            let key = Ed25519Key::generate(&token, &uri.object)?;
            serde_json::json!({
                "public_key": format!("0x{}", hex::encode(key.public_key())),
                "key": uri.to_string(),
            })
        }
    };
    eprintln!(
        "generated on token {:?} under label {:?}; the private key cannot leave the token",
        uri.token, uri.object
    );
    println!("{}", serde_json::to_string_pretty(&described)?);
    Ok(())
}

fn import(
    file: &Path,
    uri: &str,
    kind: KeyKind,
    from: Option<alloy_primitives::Address>,
    passphrase: Option<&Passphrase>,
) -> Result<()> {
    let described = match kind {
        KeyKind::Account => {
            let key = trellis_client::load_account_key_with(file, from, passphrase)?;
            let secret = secret_bytes(&key.secret_hex())?;
            let (uri, token) = open_token(uri)?;
            let moved = Secp256k1Key::import(&token, &uri.object, &secret)?;
            if moved.address() != key.address() {
                bail!(
                    "the token's key answers for {}, not {}",
                    moved.address(),
                    key.address()
                );
            }
            serde_json::json!({ "address": moved.address().to_checksum(None), "key": uri.to_string() })
        }
        KeyKind::Validator => {
            let key = trellis_node::keyfile::load_with(file, passphrase)?;
            let seed = secret_bytes(&key.secret_hex())?;
            let (uri, token) = open_token(uri)?;
            let moved = Ed25519Key::import(&token, &uri.object, &seed, &key.validator_id().0)?;
            serde_json::json!({
                "public_key": format!("0x{}", hex::encode(moved.public_key())),
                "key": uri.to_string(),
            })
        }
    };
    eprintln!(
        "moved onto the token; now delete {} (it still holds the key)",
        file.display()
    );
    println!("{}", serde_json::to_string_pretty(&described)?);
    Ok(())
}

fn secret_bytes(hex_text: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim_start_matches("0x")).context("a key's secret hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("a key's secret is not 32 bytes"))
}
