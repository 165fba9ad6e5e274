//! `trellis audit verify|export`: a node's audit log checked offline, record by record, and
//! handed to auditors once it holds.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::{
    io::BufReader,
    path::{Path, PathBuf},
};
use trellis_audit::{Record, Summary};
use trellis_types::ValidatorId;

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

pub fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { log, keys } => {
            let summary = check(&log, &keys, |_| {})?;
            print_summary(&log, &summary);
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
                    print_summary(&log, &summary);
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

fn print_summary(log: &Path, summary: &Summary) {
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
    println!(
        "note: a log cut short at its end still verifies; compare the head with one kept elsewhere (an earlier export)"
    );
}
