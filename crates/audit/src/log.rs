//! Appending to the log: each record synced to disk before `append` returns.

use crate::record::{Digest, Key, NAMESPACE, Record};
use std::{
    fs::File,
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};
use trellis_crypto::ValidatorSigner;

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "audit log {path}: its last record (line {line}) does not read, so the next cannot be chained to it: {detail}; keep the file for the auditors and move it aside"
    )]
    Unreadable {
        path: String,
        line: usize,
        detail: String,
    },
    #[error("audit log {path}: the node's key did not sign the record (its device failed)")]
    Unsigned { path: String },
}

/// An open audit log, written by one owner.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    signer: ValidatorSigner,
    next: u64,
    prev: Digest,
    /// The first record's hash: the log's name, under which its head is anchored.
    first: Option<Digest>,
    /// A torn last line cut when the log opened (bytes), reported by the first record.
    cut: Option<u64>,
}

/// Where a log stands: its name (the first record's hash) and its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub log: Digest,
    pub seq: u64,
    pub hash: Digest,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, to be signed by `signer`. A last line torn by a
    /// crash (no newline, not a record) is cut and reported by [`Self::cut`]; any other
    /// unreadable line refuses to open, so nothing is chained to a record that is not there.
    pub fn open(path: &Path, signer: ValidatorSigner) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let (first, last, lines, good_len, total) = first_and_last(&file).map_err(io)?;
        let mut cut = None;
        if good_len < total {
            // Only the tail after the last newline: a write torn by a crash.
            file.set_len(good_len).map_err(io)?;
            file.sync_data().map_err(io)?;
            cut = Some(total - good_len);
        }
        let (next, prev) = match last {
            None => (1, Digest::default()),
            Some(Ok(record)) => (record.seq + 1, record.hash),
            Some(Err(detail)) => {
                return Err(AuditError::Unreadable {
                    path: path.display().to_string(),
                    line: lines,
                    detail,
                });
            }
        };
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            signer,
            next,
            prev,
            first: first.and_then(Result::ok).map(|record| record.hash),
            cut,
        })
    }

    /// The log's name and last record, once it has one.
    pub fn head(&self) -> Option<Head> {
        Some(Head {
            log: self.first?,
            seq: self.next - 1,
            hash: self.prev,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn last record cut when the log opened, if any.
    pub fn cut(&self) -> Option<u64> {
        self.cut
    }

    /// Appends a record of `kind` with `detail` at `at_ms`, signed and synced.
    pub fn append(
        &mut self,
        at_ms: u64,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<Record, AuditError> {
        let key = self.signer.validator_id();
        let hash = Record::digest(self.next, at_ms, kind, &detail, &self.prev, &key);
        let signature =
            self.signer
                .sign_bytes(NAMESPACE, &hash.0)
                .ok_or_else(|| AuditError::Unsigned {
                    path: self.path.display().to_string(),
                })?;
        let record = Record {
            seq: self.next,
            at_ms,
            kind: kind.to_owned(),
            detail,
            prev: self.prev,
            key: Key(key),
            hash,
            signature: format!("0x{}", hex::encode(signature)),
        };
        let mut line = serde_json::to_vec(&record).expect("a record serializes");
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.next += 1;
        self.prev = hash;
        self.first.get_or_insert(hash);
        Ok(record)
    }
}

/// A complete line read as a record, or why not.
type Line = Option<Result<Record, String>>;

/// The log's first and last complete lines read as records, how many complete lines it has,
/// the length up to its last newline, and its whole length.
fn first_and_last(file: &File) -> std::io::Result<(Line, Line, usize, u64, u64)> {
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0))?;
    let mut first_line: Option<String> = None;
    let mut last_line: Option<String> = None;
    let mut lines = 0;
    let mut good_len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        lines += 1;
        good_len += read as u64;
        if first_line.is_none() {
            first_line = Some(line.trim_end().to_owned());
        }
        last_line = Some(line.trim_end().to_owned());
    }
    // Only the first and last records are read here; the ones between are verify's business.
    let parse = |text: String| serde_json::from_str::<Record>(&text).map_err(|e| e.to_string());
    Ok((
        first_line.map(parse),
        last_line.map(parse),
        lines,
        good_len,
        total,
    ))
}
