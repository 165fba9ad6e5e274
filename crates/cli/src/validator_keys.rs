//! `trellis keys rotate-validator|report-validator`: a validator key's seat handed to a new key
//! at the next epoch, by consent of both keys, or after a leak, by its operator.

use crate::{
    gov::Signer,
    lifecycle::{WAIT, runtime},
    seat::{SuccessorArgs, open_validator_key, sign},
};
use alloy_primitives::B256;
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use trellis_client::Sent;
use trellis_governance::{REGISTRY_ADDRESS, contracts::abi::ITrellisRegistry};
use trellis_types::ValidatorId;

fn hex(key: &ValidatorId) -> String {
    format!("0x{}", alloy_primitives::hex::encode(key.0))
}

/// Sends `input` to the registry from `signer`'s account.
fn send(signer: &Signer, input: Vec<u8>, what: &str) -> Result<Sent> {
    let (node, sender) = signer.open()?;
    runtime()?
        .block_on(node.send(sender.as_ref(), REGISTRY_ADDRESS, input.into(), WAIT))
        .with_context(|| what.to_string())
}

/// The event of type `T` in `sent`'s receipt.
fn event<T: alloy_sol_types::SolEvent>(sent: &Sent) -> Result<T> {
    sent.receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<T>().ok().map(|event| event.inner.data))
        .with_context(|| format!("the receipt has no {} event", T::SIGNATURE))
}

pub fn rotate_validator(signer: &Signer, current: &str, new: &str, p2p: SocketAddr) -> Result<()> {
    let passphrase = signer.passphrase()?;
    let current = open_validator_key(current, passphrase.as_ref())?;
    let new = open_validator_key(new, passphrase.as_ref())?;
    let (old_id, new_id) = (current.validator_id(), new.validator_id());
    let input = ITrellisRegistry::rotateValidatorCall {
        key: old_id.0.into(),
        successor: new_id.0.into(),
        p2p: p2p.to_string(),
        keySignature: sign(&current, &old_id, &new_id, &p2p, "current")?.into(),
        successorSignature: sign(&new, &old_id, &new_id, &p2p, "new")?.into(),
    }
    .abi_encode();
    let sent = send(signer, input, "rotating the validator key")?;
    let from = event::<ITrellisRegistry::ValidatorRotated>(&sent)?.fromEpoch;
    println!(
        "validator {} hands its seat to {} from epoch {from} (block {}); name the new key as next_validator_key in the node's node.toml now, if it is not there yet: the node switches when epoch {from} begins",
        hex(&old_id),
        hex(&new_id),
        sent.receipt.block_number.unwrap_or_default(),
    );
    Ok(())
}

/// Reports `key` leaked from block `since`, from an account of its operator.
pub fn report_validator(
    signer: &Signer,
    key: ValidatorId,
    since: u64,
    successor: &SuccessorArgs,
) -> Result<()> {
    let passphrase = signer.passphrase()?;
    let successor = successor.open(&key, passphrase.as_ref())?;
    let input = ITrellisRegistry::reportValidatorCompromisedCall {
        key: key.0.into(),
        suspectedFrom: since,
        successor: successor.as_ref().map_or(B256::ZERO, |s| s.key.0.into()),
        p2p: successor
            .as_ref()
            .map_or(String::new(), |s| s.p2p.to_string()),
        successorSignature: successor
            .as_ref()
            .map_or(Vec::new(), |s| s.signature.clone())
            .into(),
    }
    .abi_encode();
    let sent = send(signer, input, "reporting the validator key compromised")?;
    let from = event::<ITrellisRegistry::ValidatorCompromised>(&sent)?.fromEpoch;
    let block = sent.receipt.block_number.unwrap_or_default();
    match successor {
        Some(successor) => println!(
            "validator {} reported compromised in block {block}, suspected from block {since}; its seat goes to {} from epoch {from}: name that key as next_validator_key in the node's node.toml",
            hex(&key),
            hex(&successor.key)
        ),
        None => println!(
            "validator {} reported compromised in block {block}, suspected from block {since}; it leaves the set from epoch {from}",
            hex(&key)
        ),
    }
    println!(
        "what it signed from block {since} on: `trellis keys activity {}`",
        hex(&key)
    );
    Ok(())
}
