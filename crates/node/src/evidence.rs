//! The evidence this node's consensus caught validators signing (conflicting votes), kept in
//! `evidence.jsonl` in the data directory (one record a line, read back at start, so it
//! outlives restarts), served by `trellis_getEvidence`, recorded in the audit log, and handed
//! on to risk control, whose `consensus_faults` rules raise the alarm.
//!
//! Consensus tells it on its own task and must not wait: the log's owner, on a thread of its
//! own (it writes and syncs the file), takes at most [`QUEUE`] reports waiting; more are
//! dropped and counted (the same conflict is reported again whenever its votes arrive again).

use crate::{FileProblem, NodeError, audit::Audit, risk::Risk};
use commonware_runtime::{
    Clock as _, Spawner as _, Supervisor as _,
    telemetry::metrics::{Counter, MetricsExt as _},
    tokio,
};
use std::{
    collections::HashSet,
    future::Future,
    io::Write as _,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::SystemTime,
};
use trellis_consensus::{Evidence, FaultSink};
use trellis_rpc::evidence::{EvidenceBook, EvidenceRecord, EvidenceSource};

/// The log's file name, in the node's data directory.
pub const FILE: &str = "evidence.jsonl";
/// Reports that may wait for the owner.
const QUEUE: usize = 256;

enum Command {
    Add(Box<Evidence>),
    List(::tokio::sync::oneshot::Sender<Vec<EvidenceRecord>>),
}

/// A handle on the node's evidence log. Cheap to clone.
#[derive(Clone)]
pub struct EvidenceLog {
    commands: ::tokio::sync::mpsc::Sender<Command>,
    risk: Option<Risk>,
    dropped: Counter,
}

/// What one conflict is, so that reports of it again are not kept twice.
type Conflict = (String, u64, u64, String);

fn conflict(record: &EvidenceRecord) -> Conflict {
    (
        record.validator.to_string(),
        record.epoch,
        record.view,
        record.kind.clone(),
    )
}

impl EvidenceLog {
    /// Reads what `data_dir` kept and starts the owner; risk control, if any, hears of every
    /// report too.
    pub fn start(
        context: &tokio::Context,
        data_dir: &Path,
        risk: Option<Risk>,
        audit: Audit,
    ) -> Result<Self, NodeError> {
        let path = data_dir.join(FILE);
        let kept = read(&path)?;
        let context = context.child("evidence");
        let recorded = context.counter(
            "recorded",
            "Conflicting votes of validators kept as evidence (evidence.jsonl)",
        );
        let dropped = context.counter(
            "dropped",
            "Reports of conflicting votes dropped because too many waited",
        );
        let (commands, mut queue) = ::tokio::sync::mpsc::channel::<Command>(QUEUE);
        let mut owner = Owner {
            seen: kept.iter().map(conflict).collect(),
            kept,
            path,
            audit,
            recorded,
        };
        context
            .child("owner")
            .dedicated()
            .spawn(move |context| async move {
                while let Some(command) = queue.recv().await {
                    match command {
                        Command::Add(evidence) => owner.add(&evidence, context.current()),
                        Command::List(reply) => {
                            let _ = reply.send(owner.kept.clone());
                        }
                    }
                }
            });
        Ok(Self {
            commands,
            risk,
            dropped,
        })
    }

    /// The log as the API serves it.
    pub fn book(&self) -> EvidenceBook {
        EvidenceBook(Arc::new(self.clone()))
    }
}

impl FaultSink for EvidenceLog {
    fn fault(&self, evidence: &Evidence) {
        if self
            .commands
            .try_send(Command::Add(Box::new(evidence.clone())))
            .is_err()
        {
            self.dropped.inc();
        }
        if let Some(risk) = &self.risk {
            risk.fault(evidence);
        }
    }
}

impl EvidenceSource for EvidenceLog {
    fn evidence(&self) -> Pin<Box<dyn Future<Output = Option<Vec<EvidenceRecord>>> + Send + '_>> {
        Box::pin(async move {
            let (reply, answer) = ::tokio::sync::oneshot::channel();
            self.commands.send(Command::List(reply)).await.ok()?;
            answer.await.ok()
        })
    }
}

/// The owner's state: every piece kept, in the order first seen.
struct Owner {
    kept: Vec<EvidenceRecord>,
    seen: HashSet<Conflict>,
    path: PathBuf,
    audit: Audit,
    recorded: Counter,
}

impl Owner {
    fn add(&mut self, evidence: &Evidence, now: SystemTime) {
        let Some(record) = record_of(evidence, now) else {
            return;
        };
        if !self.seen.insert(conflict(&record)) {
            return;
        }
        if let Err(error) = append(&self.path, &record) {
            tracing::error!(%error, path = %self.path.display(), "evidence not written to disk (kept in memory)");
        }
        self.audit.record(
            "equivocation_evidence",
            serde_json::json!({
                "validator": record.validator,
                "kind": record.kind,
                "epoch": record.epoch,
                "view": record.view,
                "evidence": record.evidence,
            }),
        );
        self.recorded.inc();
        self.kept.push(record);
    }
}

/// The record of `evidence`, or `None` if it names no validator of its set (consensus only
/// reports evidence it checked, so that is a bug, logged).
fn record_of(evidence: &Evidence, now: SystemTime) -> Option<EvidenceRecord> {
    let Some(validator) = evidence.validator() else {
        tracing::error!(%evidence, "evidence names no validator of its epoch: not kept");
        return None;
    };
    Some(EvidenceRecord {
        kind: evidence.kind().name().to_owned(),
        epoch: evidence.epoch().0,
        view: evidence.view(),
        validator: validator.0.to_vec().into(),
        seen_at_ms: now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        evidence: evidence.to_bytes().into(),
    })
}

/// The records in `path` (none if it does not exist). A torn last line (a crash mid-write)
/// is cut off the file; a bad line before it is an error: the file was edited.
fn read(path: &Path) -> Result<Vec<EvidenceRecord>, NodeError> {
    let problem = |problem: FileProblem| NodeError::DataDir {
        path: path.display().to_string(),
        problem,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(problem(e.into())),
    };
    let mut records = Vec::new();
    let mut good = 0;
    for line in text.split_inclusive('\n') {
        match serde_json::from_str::<EvidenceRecord>(line) {
            Ok(record) if line.ends_with('\n') => {
                records.push(record);
                good += line.len();
            }
            _ if good + line.len() == text.len() => {
                tracing::warn!(path = %path.display(), "the last evidence record was torn by a crash: cut");
                let file = std::fs::OpenOptions::new().write(true).open(path);
                file.and_then(|f| f.set_len(good as u64))
                    .map_err(|e| problem(e.into()))?;
            }
            Ok(_) => unreachable!("only the last line lacks its newline"),
            Err(e) => return Err(problem(e.into())),
        }
    }
    Ok(records)
}

fn append(path: &Path, record: &EvidenceRecord) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::Runner as _;
    use std::time::Duration;

    /// Four pieces a byzantine validator's conflicting votes gave in a simulated run
    /// (`trellis-simulate --seed 20 --evidence-out FILE`).
    const FIXTURE: &str = include_str!("../../consensus/tests/fixtures/equivocation.hex");

    fn pieces() -> Vec<Evidence> {
        FIXTURE
            .lines()
            .map(|line| {
                let bytes = hex::decode(line.trim().trim_start_matches("0x")).unwrap();
                Evidence::from_bytes(&bytes).unwrap()
            })
            .collect()
    }

    /// Starts the log on `dir` and returns what it holds once it holds `expected` pieces
    /// (after reporting `report` to it, each twice).
    fn run(dir: &Path, report: Vec<Evidence>, expected: usize) -> Vec<EvidenceRecord> {
        let runtime = tokio::Config::new().with_storage_directory(dir);
        let dir = dir.to_path_buf();
        tokio::Runner::new(runtime).start(|context| async move {
            let signer = trellis_crypto::ValidatorKey::generate()
                .unwrap()
                .validator_signer();
            let audit = Audit::start(&context, &dir, signer).unwrap();
            let log = EvidenceLog::start(&context, &dir, None, audit).unwrap();
            for evidence in report.iter().chain(&report) {
                log.fault(evidence);
            }
            for _ in 0..500 {
                let records = log.evidence().await.expect("the log runs");
                if records.len() >= expected {
                    return records;
                }
                commonware_runtime::Clock::sleep(&context, Duration::from_millis(10)).await;
            }
            panic!("the log never held {expected} pieces");
        })
    }

    #[test]
    fn each_conflict_is_kept_once_on_disk_and_read_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let pieces = pieces();
        let records = run(dir.path(), pieces.clone(), pieces.len());
        assert_eq!(
            records.len(),
            pieces.len(),
            "a conflict reported twice is kept once"
        );
        for (record, evidence) in records.iter().zip(&pieces) {
            assert_eq!(record.evidence.as_ref(), evidence.to_bytes().as_slice());
            assert_eq!(record.validator.as_ref(), evidence.validator().unwrap().0);
            assert_eq!(record.kind, evidence.kind().name());
            assert_eq!(
                (record.epoch, record.view),
                (evidence.epoch().0, evidence.view())
            );
        }
        let audit = std::fs::read_to_string(dir.path().join(crate::audit::FILE)).unwrap();
        assert_eq!(audit.matches("equivocation_evidence").count(), pieces.len());

        // A crash tore the last line: it is cut, and what came before is read back.
        let path = dir.path().join(FILE);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"kind":"conflicting_notar"#).unwrap();
        let again = run(dir.path(), Vec::new(), pieces.len());
        assert_eq!(again, records);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == pieces.len());
    }

    #[test]
    fn an_edited_record_before_the_last_refuses_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "not json\n{}\n").unwrap();
        let error = read(&dir.path().join(FILE)).unwrap_err().to_string();
        assert!(error.contains(FILE), "{error}");
    }
}
