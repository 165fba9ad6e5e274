//! `trellis keys rotate|revoke|rotation-proof|rotate-validator`: an account key's and a
//! validator key's lifecycle, through the registry's system contract.

use crate::gov::Signer;
use alloy_primitives::{Address, Bytes};
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use std::{net::SocketAddr, path::Path, time::Duration};
use trellis_client::open_signer;
use trellis_crypto::{Passphrase, TxSigner, ValidatorSigner};
use trellis_governance::{
    REGISTRY_ADDRESS, VALIDATOR_ROTATION_NAMESPACE, contracts::abi::ITrellisRegistry,
    rotation_digest, validator_rotation_message,
};
use trellis_node::signer::KeySource;

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client's runtime")
}

/// `new`'s 65-byte consent to take over from `old`.
fn proof(old: Address, new: &dyn TxSigner) -> Result<Bytes> {
    let signature = new
        .sign_hash(rotation_digest(&old, &new.address()))
        .context("the successor's key did not sign")?;
    Ok(signature.as_bytes().to_vec().into())
}

pub fn rotate(signer: &Signer, new: &str, new_from: Option<Address>) -> Result<()> {
    let (node, old) = signer.open()?;
    let passphrase = signer.passphrase()?;
    let successor = open_signer(new, new_from, passphrase.as_ref())?;
    let input = ITrellisRegistry::rotateKeyCall {
        successor: successor.address(),
        proof: proof(old.address(), successor.as_ref())?,
    }
    .abi_encode();
    let sent = runtime()?
        .block_on(node.send(old.as_ref(), REGISTRY_ADDRESS, input.into(), WAIT))
        .context("rotating the key")?;
    println!(
        "account {} handed its registration to {} in block {}; {} is refused from that block on",
        old.address(),
        successor.address(),
        sent.receipt.block_number.unwrap_or_default(),
        old.address()
    );
    Ok(())
}

/// The validator key `spec` names (a key file or a `pkcs11:` URI).
fn open_validator_key(spec: &str, passphrase: Option<&Passphrase>) -> Result<ValidatorSigner> {
    let source = KeySource::from_arg(spec)?;
    source
        .load(Path::new("."), passphrase)
        .with_context(|| format!("opening validator key {spec}"))
}

pub fn rotate_validator(signer: &Signer, current: &str, new: &str, p2p: SocketAddr) -> Result<()> {
    let (node, sender) = signer.open()?;
    let passphrase = signer.passphrase()?;
    let current = open_validator_key(current, passphrase.as_ref())?;
    let new = open_validator_key(new, passphrase.as_ref())?;
    let (old_id, new_id) = (current.validator_id(), new.validator_id());
    let message = validator_rotation_message(&old_id, &new_id, &p2p);
    let sign = |key: &ValidatorSigner, which: &str| {
        key.sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
            .with_context(|| format!("the {which} key's device did not sign"))
    };
    let input = ITrellisRegistry::rotateValidatorCall {
        key: old_id.0.into(),
        successor: new_id.0.into(),
        p2p: p2p.to_string(),
        keySignature: sign(&current, "current")?.into(),
        successorSignature: sign(&new, "new")?.into(),
    }
    .abi_encode();
    let sent = runtime()?
        .block_on(node.send(sender.as_ref(), REGISTRY_ADDRESS, input.into(), WAIT))
        .context("rotating the validator key")?;
    let from = sent
        .receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| {
            log.log_decode::<ITrellisRegistry::ValidatorRotated>()
                .ok()
                .map(|event| event.inner.data.fromEpoch)
        })
        .context("the rotation's receipt has no ValidatorRotated event")?;
    println!(
        "validator {} hands its seat to {} from epoch {from} (block {}); name the new key as next_validator_key in the node's node.toml now, if it is not there yet: the node switches when epoch {from} begins",
        current.public_hex(),
        new.public_hex(),
        sent.receipt.block_number.unwrap_or_default(),
    );
    Ok(())
}

pub fn revoke(signer: &Signer, compromised_since: Option<u64>) -> Result<()> {
    let (node, key) = signer.open()?;
    let input = ITrellisRegistry::revokeKeyCall {
        compromised: compromised_since.is_some(),
        suspectedFrom: compromised_since.unwrap_or(0),
    }
    .abi_encode();
    let sent = runtime()?
        .block_on(node.send(key.as_ref(), REGISTRY_ADDRESS, input.into(), WAIT))
        .context("revoking the key")?;
    let block = sent.receipt.block_number.unwrap_or_default();
    match compromised_since {
        Some(since) => println!(
            "account {} reported compromised in block {block}, suspected from block {since}; refused from block {block} on",
            key.address()
        ),
        None => println!(
            "account {} revoked in block {block}, for good",
            key.address()
        ),
    }
    Ok(())
}

pub fn print_proof(
    old: Address,
    new: &str,
    new_from: Option<Address>,
    passphrase_file: Option<&Path>,
) -> Result<()> {
    let passphrase = passphrase_file.map(Passphrase::from_file).transpose()?;
    let successor = open_signer(new, new_from, passphrase.as_ref())?;
    println!("{}", proof(old, successor.as_ref())?);
    Ok(())
}
