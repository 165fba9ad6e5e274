//! Checking a whole log: every record in its place, unchanged, signed by a trusted key.

use crate::record::{Digest, Record};
use std::{collections::BTreeSet, fmt, io::BufRead};
use trellis_types::ValidatorId;

/// What was wrong with a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    /// The line is not a record (a torn write, or text put there).
    NotARecord(String),
    /// The record's number is not the next one: a record before it was removed, or it was
    /// moved or inserted.
    OutOfSequence { expected: u64, found: u64 },
    /// It does not name the previous record's hash: the chain is broken here.
    BrokenChain { expected: Digest, found: Digest },
    /// Its content does not give its hash: it was edited.
    Edited,
    /// Its signature is not its key's signature of its hash.
    BadSignature,
    /// It is signed by a key the verifier was not told to trust.
    UntrustedKey(ValidatorId),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARecord(error) => write!(f, "not a record ({error})"),
            Self::OutOfSequence { expected, found } => write!(
                f,
                "numbered {found} where {expected} comes next: a record was removed, moved or inserted"
            ),
            Self::BrokenChain { expected, found } => write!(
                f,
                "names {found} as the record before it, which is {expected}: a record was removed, moved or inserted"
            ),
            Self::Edited => f.write_str("its content does not match its hash: it was edited"),
            Self::BadSignature => {
                f.write_str("its signature does not hold: it was edited or signed by another key")
            }
            Self::UntrustedKey(key) => write!(
                f,
                "signed by 0x{}, not a key given to trust",
                hex::encode(key.0)
            ),
        }
    }
}

/// The first bad record of a log.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {problem}", .seq.map(|s| format!(" (record {s})")).unwrap_or_default())]
pub struct Broken {
    /// 1-based line of the log.
    pub line: usize,
    /// The record's number, when the line is a record.
    pub seq: Option<u64>,
    pub problem: Problem,
}

/// What an intact log holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// The last record's number and hash: compare it with one kept elsewhere to see that
    /// nothing was cut from the end.
    pub head: Option<(u64, Digest)>,
    /// The first record's hash: the log's name, under which its head is anchored on chain.
    pub first: Option<Digest>,
    /// The keys that signed records.
    pub keys: BTreeSet<ValidatorId>,
    pub first_at_ms: Option<u64>,
    pub last_at_ms: Option<u64>,
}

/// Verifies the log `lines` from its first record; `trusted` empty trusts the keys the log
/// names (the signatures must still hold). Records are handed to `each` as they verify.
pub fn verify(
    lines: impl BufRead,
    trusted: &[ValidatorId],
    mut each: impl FnMut(&Record),
) -> Result<Summary, Broken> {
    let mut summary = Summary::default();
    let mut prev = Digest::default();
    for (index, line) in lines.lines().enumerate() {
        let line_number = index + 1;
        let broken = |seq, problem| Broken {
            line: line_number,
            seq,
            problem,
        };
        let text = line.map_err(|e| broken(None, Problem::NotARecord(e.to_string())))?;
        let record: Record = serde_json::from_str(&text)
            .map_err(|e| broken(None, Problem::NotARecord(e.to_string())))?;
        let seq = Some(record.seq);
        let expected = summary.records + 1;
        if record.seq != expected {
            return Err(broken(
                seq,
                Problem::OutOfSequence {
                    expected,
                    found: record.seq,
                },
            ));
        }
        if record.prev != prev {
            return Err(broken(
                seq,
                Problem::BrokenChain {
                    expected: prev,
                    found: record.prev,
                },
            ));
        }
        if record.content_digest() != record.hash {
            return Err(broken(seq, Problem::Edited));
        }
        if !record.signed() {
            return Err(broken(seq, Problem::BadSignature));
        }
        if !trusted.is_empty() && !trusted.contains(&record.key.0) {
            return Err(broken(seq, Problem::UntrustedKey(record.key.0)));
        }
        each(&record);
        prev = record.hash;
        summary.records = record.seq;
        summary.head = Some((record.seq, record.hash));
        summary.first.get_or_insert(record.hash);
        summary.keys.insert(record.key.0);
        summary.first_at_ms.get_or_insert(record.at_ms);
        summary.last_at_ms = Some(record.at_ms);
    }
    Ok(summary)
}
