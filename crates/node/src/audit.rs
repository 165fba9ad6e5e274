//! The node's audit log, `audit.jsonl` in its data directory (`trellis_audit`): its start, its
//! risk rules loaded, reloaded or refused, the alarms they raised, the freezes and validator removals it proposed and
//! the rotation of its key, each record chained to the one before and signed by the node's key.
//!
//! One owner task, on a thread of its own (each record is signed, perhaps by an HSM, and
//! synced), holds the log. Parts of the node hand it records without waiting: at most
//! [`QUEUE`] wait, and when records had to be dropped the next record written says how many
//! (`records_dropped`), so the log itself shows the gap. A record that must be on disk before
//! the node goes on (its key's rotation, just before it restarts) is awaited.

use crate::NodeError;
use commonware_runtime::{
    Clock as _, Spawner as _, Supervisor as _, telemetry::metrics::MetricsExt as _, tokio,
};
use serde_json::{Value, json};
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};
use trellis_audit::{AuditLog, Head};
use trellis_crypto::ValidatorSigner;

/// Records that may wait for the owner.
const QUEUE: usize = 1_024;

/// The log's file name, in the node's data directory.
pub const FILE: &str = "audit.jsonl";

struct Entry {
    at: SystemTime,
    kind: &'static str,
    detail: Value,
    /// Told once the record is on disk.
    written: Option<::tokio::sync::oneshot::Sender<()>>,
}

/// A handle on the node's audit log. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    entries: ::tokio::sync::mpsc::Sender<Entry>,
    dropped: Arc<AtomicU64>,
    clock: Arc<tokio::Context>,
    /// The log's name and last record, as the owner last wrote it.
    head: ::tokio::sync::watch::Receiver<Option<Head>>,
}

impl Audit {
    /// Opens the log in `data_dir` (a torn last record from a crash is cut, and the first new
    /// record says so) and starts its owner; records are signed by `signer`.
    pub fn start(
        context: &tokio::Context,
        data_dir: &Path,
        signer: ValidatorSigner,
    ) -> Result<Self, NodeError> {
        let path = data_dir.join(FILE);
        let mut log = AuditLog::open(&path, signer).map_err(NodeError::Audit)?;
        let context = context.child("audit");
        let written = context.counter("records", "Records written to the audit log");
        let failures = context.counter(
            "failures",
            "Records that could not be written to the audit log (signing or disk)",
        );
        let dropped_total = context.counter(
            "dropped",
            "Records dropped because too many waited (the next record says how many)",
        );
        let dropped = Arc::new(AtomicU64::new(0));
        let (entries, mut queue) = ::tokio::sync::mpsc::channel::<Entry>(QUEUE);
        let owner_dropped = dropped.clone();
        let cut = log.cut();
        let (heads, head) = ::tokio::sync::watch::channel(log.head());
        context
            .child("owner")
            .dedicated()
            .spawn(move |owner| async move {
                let mut append = |at: SystemTime, kind: &str, detail: Value| match log.append(
                    millis(at),
                    kind,
                    detail,
                ) {
                    Ok(_) => {
                        written.inc();
                        heads.send_replace(log.head());
                    }
                    Err(error) => {
                        failures.inc();
                        tracing::error!(%error, kind, "audit record not written");
                    }
                };
                if let Some(bytes) = cut {
                    let detail = json!({ "bytes": bytes });
                    append(owner.current(), "torn_record_cut", detail);
                }
                while let Some(entry) = queue.recv().await {
                    let lost = owner_dropped.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        dropped_total.inc_by(lost);
                        append(entry.at, "records_dropped", json!({ "count": lost }));
                    }
                    append(entry.at, entry.kind, entry.detail);
                    if let Some(written) = entry.written {
                        let _ = written.send(());
                    }
                }
            });
        tracing::info!(path = %path.display(), "audit log open");
        Ok(Self {
            entries,
            dropped,
            clock: Arc::new(context),
            head,
        })
    }

    /// The log's name and last record, following every record written.
    pub fn head(&self) -> ::tokio::sync::watch::Receiver<Option<Head>> {
        self.head.clone()
    }

    /// Hands a record of `kind` to the log without waiting (counted as dropped if too many
    /// wait).
    pub fn record(&self, kind: &'static str, detail: Value) {
        let entry = Entry {
            at: self.clock.current(),
            kind,
            detail,
            written: None,
        };
        if self.entries.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes a record of `kind` and waits until it is on disk (or the log has stopped).
    pub async fn write(&self, kind: &'static str, detail: Value) {
        let (written, on_disk) = ::tokio::sync::oneshot::channel();
        let entry = Entry {
            at: self.clock.current(),
            kind,
            detail,
            written: Some(written),
        };
        if self.entries.send(entry).await.is_ok() {
            let _ = on_disk.await;
        }
    }
}

fn millis(time: SystemTime) -> u64 {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
