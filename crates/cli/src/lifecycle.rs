//! `trellis keys rotate|revoke|rotation-proof|activity`: an account key's lifecycle through the
//! registry's system contract, and what any key did.

use crate::gov::Signer;
use alloy_primitives::{Address, Bytes};
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use std::{path::Path, time::Duration};
use trellis_client::open_signer;
use trellis_crypto::{Passphrase, TxSigner};
use trellis_governance::{REGISTRY_ADDRESS, contracts::abi::ITrellisRegistry, rotation_digest};

pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
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

pub fn activity(
    node: &crate::gov::NodeArg,
    key: &str,
    since: Option<u64>,
    json: bool,
) -> Result<()> {
    let node = node.open()?;
    let answer = runtime()?
        .block_on(node.key_activity(key, since))
        .context("asking the node for the key's activity")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    print_activity(&answer);
    check_signed(&answer)
}

/// Verifies the proofs of an account's signed writes against the answer's state root.
fn check_signed(answer: &serde_json::Value) -> Result<()> {
    if answer["signed"].is_null() {
        return Ok(());
    }
    let history: trellis_state::History = serde_json::from_value(answer["signed"].clone())
        .context("the node's proofs of the signed transactions do not decode")?;
    let root: alloy_primitives::B256 = serde_json::from_value(answer["stateRoot"].clone())
        .context("the node's answer has no state root")?;
    history
        .verify(&trellis_types::StateRoot(root))
        .context("the node's proofs of the signed transactions do not hold")?;
    println!(
        "the {} write(s) of those transactions are proven against state root {root} (the node's: check it against a header you trust)",
        history.entries.len()
    );
    Ok(())
}

/// Most entries of each side printed (all are in `--json`).
const SHOWN: usize = 10;

/// The activity in a few lines: the record, each side's counts and entries, the gaps, the
/// measures.
fn print_activity(answer: &serde_json::Value) {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let number = |value: &serde_json::Value| {
        value
            .as_str()
            .and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
            .unwrap_or_default()
    };
    let record = &answer["record"];
    let status = if record.is_null() {
        "no record in the registry".to_string()
    } else if answer["kind"] != "account" {
        let until = match record.get("untilEpoch") {
            Some(until) => format!(" until epoch {}", number(until)),
            None => String::new(),
        };
        let status = text(&record["status"]);
        format!(
            "{status}, term from epoch {}{until}",
            number(&record["since"])
        )
    } else {
        let status = text(&record["status"]);
        let until = match record.get("validUntil") {
            Some(until) => format!(", registered until block {}", number(until)),
            None => String::new(),
        };
        format!("{status} since block {}{until}", number(&record["since"]))
    };
    println!(
        "{} {}: {status}",
        text(&answer["kind"]),
        text(&answer["key"])
    );
    if let Some(set) = record.get("set") {
        println!("status set {}", text(set));
    }
    if let Some(successor) = record.get("successor") {
        println!("its successor: {}", text(successor));
    }
    if !answer["splitAt"].is_null() {
        println!(
            "suspected of misuse from block {}",
            number(&answer["splitAt"])
        );
    }
    for side in ["before", "after"] {
        let records = &answer[side];
        let list = |kind: &str| records[kind].as_array().cloned().unwrap_or_default();
        let (transactions, blocks, votes) = (list("transactions"), list("blocks"), list("votes"));
        println!(
            "{side}: {} transaction(s) signed, {} block(s) proposed, {} finalize vote(s) in certificates",
            transactions.len(),
            blocks.len(),
            votes.len()
        );
        let mut lines: Vec<String> = transactions
            .iter()
            .map(|tx| {
                format!(
                    "  block {} tx {} {} (nonce {})",
                    number(&tx["blockNumber"]),
                    number(&tx["transactionIndex"]),
                    text(&tx["transactionHash"]),
                    number(&tx["nonce"])
                )
            })
            .collect();
        lines.extend(blocks.iter().map(|block| {
            format!(
                "  proposed block {} {} (view {})",
                number(&block["blockNumber"]),
                text(&block["blockHash"]),
                number(&block["view"])
            )
        }));
        let shown = lines.len().min(SHOWN);
        for line in &lines[..shown] {
            println!("{line}");
        }
        if lines.len() > shown {
            println!("  … {} more (--json lists them all)", lines.len() - shown);
        }
    }
    if answer["truncated"].as_bool() == Some(true) {
        println!("older records exist than these (the newest are listed)");
    }
    for gap in answer["notRecorded"].as_array().into_iter().flatten() {
        println!("not recorded: {}", text(gap));
    }
    println!(
        "as of block {} (state root {}); --json prints every proof",
        number(&answer["blockNumber"]),
        text(&answer["stateRoot"])
    );
    for measure in answer["measures"].as_array().into_iter().flatten() {
        println!("measure: {}", text(measure));
    }
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
