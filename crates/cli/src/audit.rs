//! `trellis audit verify|export`: a node's audit log checked offline, record by record, and
//! handed to auditors once it holds.

use crate::{gov::NodeArg, lifecycle::runtime};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::{
    io::BufReader,
    path::{Path, PathBuf},
};
use trellis_audit::{Digest, Record, Summary};
use trellis_types::{Address, ValidatorId};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a node's audit log (DATA_DIR/audit.jsonl): every record in its place, unchanged,
    /// signed. Exits non-zero naming the first record edited, removed, moved or inserted.
    Verify {
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// A key the records must be signed by (0x-hex ed25519, as `trellis keys` prints it);
        /// repeat for a node whose key rotated. Without one, any key the log names, as long as
        /// its signatures hold.
        #[arg(long = "key", value_name = "HEX")]
        keys: Vec<String>,
        #[command(flatten)]
        anchors: AnchorArgs,
    },
    /// Print the records of a log that verifies, as one JSON document for auditors, with its
    /// head (the last record's number and hash) to compare a later copy against.
    Export {
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        #[arg(long = "key", value_name = "HEX")]
        keys: Vec<String>,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// The anchors of the log's head on chain to check it against.
#[derive(Debug, Args)]
pub struct AnchorArgs {
    /// The AuditAnchors contract the node anchors its head at (node.toml's
    /// `[audit_anchor] contract`): the log must match every anchor of it, asked of --rpc.
    #[arg(long = "anchors", value_name = "ADDRESS")]
    contract: Option<Address>,
    #[command(flatten)]
    node: NodeArg,
}

pub fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { log, keys, anchors } => {
            let mut hashes = Vec::new();
            let summary = check(&log, &keys, |record| hashes.push(record.hash))?;
            print_summary(&log, &summary, anchors.contract.is_none());
            if let Some(contract) = anchors.contract {
                check_anchors(&log, &hashes, contract, &anchors.node)?;
            }
            Ok(())
        }
        AuditCommand::Export { log, keys, out } => {
            let mut records = Vec::new();
            let summary = check(&log, &keys, |record| records.push(record.clone()))?;
            let head = summary
                .head
                .map(|(seq, hash)| serde_json::json!({ "seq": seq, "hash": hash }));
            let document = serde_json::json!({ "head": head, "records": records });
            let text = serde_json::to_string_pretty(&document)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    print_summary(&log, &summary, true);
                }
                None => println!("{text}"),
            }
            Ok(())
        }
    }
}

fn check(log: &Path, keys: &[String], each: impl FnMut(&Record)) -> Result<Summary> {
    let trusted = keys
        .iter()
        .map(|key| parse_key(key))
        .collect::<Result<Vec<_>>>()?;
    let file = std::fs::File::open(log)
        .with_context(|| format!("cannot read the audit log {}", log.display()))?;
    match trellis_audit::verify(BufReader::new(file), &trusted, each) {
        Ok(summary) => Ok(summary),
        Err(broken) => bail!("{} does not hold: {broken}", log.display()),
    }
}

fn parse_key(text: &str) -> Result<ValidatorId> {
    let bytes = text
        .strip_prefix("0x")
        .and_then(|digits| hex::decode(digits).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("{text:?} is not a 32-byte 0x-hex ed25519 key"))?;
    Ok(ValidatorId(bytes))
}

/// Checks the log's record `hashes` against every anchor of it at `contract`.
fn check_anchors(log: &Path, hashes: &[Digest], contract: Address, node: &NodeArg) -> Result<()> {
    let Some(first) = hashes.first().copied() else {
        bail!(
            "{} is empty: there is nothing to check against anchors",
            log.display()
        );
    };
    let anchors = runtime()?
        .block_on(node.open()?.audit_anchors(contract, first))
        .with_context(|| format!("reading the anchors at {contract}"))?;
    match trellis_audit::check_anchors(hashes, &anchors) {
        Ok(newest) => {
            println!(
                "matches its {} anchor(s) at {contract}; the newest: record {} in block {}",
                anchors.len(),
                newest.seq,
                newest.block
            );
            let after = hashes.len() as u64 - newest.seq;
            if after > 0 {
                println!(
                    "note: the {after} record(s) after record {} are not anchored yet",
                    newest.seq
                );
            }
            Ok(())
        }
        Err(problem) => bail!(
            "{} does not hold against the chain: {problem}",
            log.display()
        ),
    }
}

fn print_summary(log: &Path, summary: &Summary, note_cut: bool) {
    let Some((seq, hash)) = summary.head else {
        println!("{}: empty", log.display());
        return;
    };
    println!(
        "{}: intact, {} records from {} ms to {} ms; head: record {seq}, hash {hash}",
        log.display(),
        summary.records,
        summary.first_at_ms.unwrap_or_default(),
        summary.last_at_ms.unwrap_or_default(),
    );
    for key in &summary.keys {
        println!("  signed by 0x{}", hex::encode(key.0));
    }
    if note_cut {
        println!(
            "note: a log cut short at its end still verifies; compare the head with one kept elsewhere (an earlier export, or the anchors on chain: --anchors)"
        );
    }
}
