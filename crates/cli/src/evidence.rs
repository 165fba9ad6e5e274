//! `trellis evidence` lists the evidence of equivocation a validator kept, checked here;
//! `trellis verify-evidence FILE` checks evidence offline, trusting no node: each piece must
//! carry two conflicting votes signed by the validator it names, on the chain and in the epoch
//! it names.

use crate::{gov::NodeArg, lifecycle::runtime};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::path::PathBuf;
use trellis_consensus::Evidence;
use trellis_rpc::evidence::EvidenceRecord;

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    #[command(flatten)]
    node: NodeArg,
    /// Print the node's JSON as it is (to hand to others: `trellis verify-evidence` reads it).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyEvidenceArgs {
    /// The evidence: what `trellis evidence --json` printed (or `trellis_getEvidence`
    /// answered), one record, or the hex of pieces one per line. `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn list(args: EvidenceArgs) -> Result<()> {
    let node = args.node.open()?;
    let answer = runtime()?
        .block_on(node.evidence())
        .context("asking the node for its evidence")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let records: Vec<EvidenceRecord> =
        serde_json::from_value(answer).context("the node's answer is not a list of evidence")?;
    if records.is_empty() {
        println!("no evidence: no validator was seen signing conflicting votes");
    }
    report(&records.into_iter().map(Piece::Record).collect::<Vec<_>>())
}

pub fn verify(args: VerifyEvidenceArgs) -> Result<()> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let pieces = parse(&text).with_context(|| format!("{}", args.file.display()))?;
    if pieces.is_empty() {
        bail!("{} holds no evidence", args.file.display());
    }
    report(&pieces)
}

/// What a file may hold.
enum Piece {
    /// A record as the API serves it: its description is checked against its evidence.
    Record(EvidenceRecord),
    /// Bare evidence bytes.
    Bytes(Vec<u8>),
}

/// The pieces in `text`: JSON (a list, one record, or a JSON-RPC answer), or hex lines.
fn parse(text: &str) -> Result<Vec<Piece>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
        let value = value.get("result").cloned().unwrap_or(value);
        let records: Vec<EvidenceRecord> = if value.is_array() {
            serde_json::from_value(value)
        } else {
            serde_json::from_value(value).map(|r| vec![r])
        }
        .context("not evidence records (kind, epoch, view, validator, seenAtMs, evidence)")?;
        return Ok(records.into_iter().map(Piece::Record).collect());
    }
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let hex = line.strip_prefix("0x").unwrap_or(line);
            hex::decode(hex)
                .map(Piece::Bytes)
                .with_context(|| format!("line {} is neither JSON nor hex", i + 1))
        })
        .collect()
}

/// Verifies every piece, printing what each proves; fails if any does not hold.
fn report(pieces: &[Piece]) -> Result<()> {
    let mut failed = 0;
    for (i, piece) in pieces.iter().enumerate() {
        match check(piece) {
            Ok(evidence) => println!("valid: {evidence}"),
            Err(error) => {
                failed += 1;
                println!("INVALID piece {}: {error:#}", i + 1);
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} pieces of evidence do not hold",
            pieces.len()
        );
    }
    Ok(())
}

/// The evidence in `piece`, verified, and its record's description checked against it.
fn check(piece: &Piece) -> Result<Evidence> {
    let bytes = match piece {
        Piece::Record(record) => record.evidence.as_ref(),
        Piece::Bytes(bytes) => bytes.as_slice(),
    };
    let evidence = Evidence::from_bytes(bytes)?;
    let validator = evidence.verify()?;
    if let Piece::Record(record) = piece {
        let claims = [
            (
                "validator",
                record.validator.as_ref() == validator.0.as_slice(),
            ),
            ("kind", record.kind == evidence.kind().name()),
            ("epoch", record.epoch == evidence.epoch().0),
            ("view", record.view == evidence.view()),
        ];
        if let Some((field, _)) = claims.iter().find(|(_, holds)| !holds) {
            bail!("the record's {field} is not what its evidence proves ({evidence})");
        }
    }
    Ok(evidence)
}
