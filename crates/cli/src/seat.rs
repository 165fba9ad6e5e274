//! A validator seat's successor key as the CLI names it, and the signatures a seat change
//! needs (the rotation message, ed25519).

use anyhow::{Context, Result};
use clap::Args;
use std::{net::SocketAddr, path::Path};
use trellis_crypto::{Passphrase, ValidatorSigner};
use trellis_governance::{SeatSuccessor, VALIDATOR_ROTATION_NAMESPACE, validator_rotation_message};
use trellis_node::signer::KeySource;
use trellis_types::ValidatorId;

/// The key that takes a validator's seat, and where it listens.
#[derive(Debug, Args)]
pub struct SuccessorArgs {
    /// The successor key (a key file or a `pkcs11:` URI): it signs its consent.
    #[arg(long, value_name = "FILE|PKCS11-URI", requires = "p2p")]
    pub new: Option<String>,
    /// Where the successor key listens for p2p ("ip:port").
    #[arg(long, value_name = "IP:PORT", requires = "new")]
    pub p2p: Option<SocketAddr>,
}

impl SuccessorArgs {
    /// The successor's consent to take `old`'s seat, if one is named.
    pub fn open(
        &self,
        old: &ValidatorId,
        passphrase: Option<&Passphrase>,
    ) -> Result<Option<SeatSuccessor>> {
        let (Some(new), Some(p2p)) = (&self.new, self.p2p) else {
            return Ok(None);
        };
        let key = open_validator_key(new, passphrase)?;
        let signature = sign(&key, old, &key.validator_id(), &p2p, "new")?;
        Ok(Some(SeatSuccessor {
            key: key.validator_id(),
            p2p,
            signature,
        }))
    }
}

/// The validator key `spec` names (a key file or a `pkcs11:` URI).
pub fn open_validator_key(spec: &str, passphrase: Option<&Passphrase>) -> Result<ValidatorSigner> {
    let source = KeySource::from_arg(spec)?;
    source
        .load(Path::new("."), passphrase)
        .with_context(|| format!("opening validator key {spec}"))
}

/// `key`'s signature of the rotation message from `old` to `new` at `p2p`.
pub fn sign(
    key: &ValidatorSigner,
    old: &ValidatorId,
    new: &ValidatorId,
    p2p: &SocketAddr,
    which: &str,
) -> Result<Vec<u8>> {
    let message = validator_rotation_message(old, new, p2p);
    key.sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
        .with_context(|| format!("the {which} key's device did not sign"))
}
