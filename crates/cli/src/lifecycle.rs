//! `trellis keys rotate|revoke|rotation-proof`: an account key's lifecycle, through the
//! registry's system contract.

use crate::gov::Signer;
use alloy_primitives::{Address, Bytes};
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use std::{path::Path, time::Duration};
use trellis_client::open_signer;
use trellis_crypto::{Passphrase, TxSigner};
use trellis_governance::{REGISTRY_ADDRESS, contracts::abi::ITrellisRegistry, rotation_digest};

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
