//! Key kinds of Trellis and how they are made, stored and used.
//!
//! Two kinds of key exist, for two different jobs:
//!
//! | kind | curve | used for | identity derived from it |
//! |---|---|---|---|
//! | [`AccountKey`] | secp256k1 | signing Ethereum transactions (EIP-155/2930/1559) | 20-byte [`Address`] |
//! | [`ValidatorKey`] | ed25519 | signing consensus votes and authenticating p2p links | 32-byte public key |
//!
//! Secret material is generated from the operating system's CSPRNG (`getrandom`) and never
//! printed by `Debug`. [`write_secret_file`] stores a key file readable only by its owner and
//! refuses to overwrite an existing file, so a key is never lost by a mistyped path.
//!
//! Who signs does not have to hold the key in memory: [`ValidatorSigner`] and [`TxSigner`] sign
//! with a key in memory or through a device (an HSM, in the `trellis-hsm` crate). Key files
//! are stored sealed under a passphrase ([`SealedKey`]).

mod account;
mod account_public;
mod file;
mod sealed;
mod signer;
mod tx_signer;
mod validator;

pub use account::AccountKey;
pub use account_public::AccountPublicKey;
pub use alloy_primitives::Address;
pub use file::{AccountEntry, KeyBundle, ValidatorEntry, read_first_line, write_secret_file};
pub use sealed::{Passphrase, SealedKey};
pub use signer::{DeviceFailure, Ed25519Device, ValidatorSigner};
pub use tx_signer::{TxSigner, sign_transaction};
pub use validator::{ValidatorKey, is_valid_validator_id, verify_validator_signature};

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the operating system's random source failed: {0}")]
    Randomness(String),
    #[error("invalid {kind} private key: {reason}")]
    InvalidKey { kind: &'static str, reason: String },
    #[error(
        "refusing to overwrite existing key file {path}: move it away or choose another --out path"
    )]
    FileExists { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the passphrase does not open this key file (or the file was altered)")]
    WrongPassphrase,
    #[error("the passphrase file {path} is empty; write the passphrase on its first line")]
    EmptyPassphrase { path: String },
    #[error("cannot write key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Fills 32 bytes from the operating system's CSPRNG.
fn random_32() -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Randomness(e.to_string()))?;
    Ok(bytes)
}

/// Parses a 32-byte secret given as hex, with or without a `0x` prefix.
fn parse_hex_32(kind: &'static str, text: &str) -> Result<[u8; 32], KeyError> {
    let invalid = |reason: String| KeyError::InvalidKey { kind, reason };
    let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    let bytes = hex::decode(digits).map_err(|e| invalid(format!("not hex: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| invalid(format!("expected 32 bytes, got {}", b.len())))
}
