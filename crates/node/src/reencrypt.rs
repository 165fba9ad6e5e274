//! Data written under older data keys moved to the current one in the background, while the
//! node runs: at start, and after each rotation (`key_watch.rs`). One blob at a time, a chunk
//! per step with a pause between steps, so the node's own reads and writes keep the disk;
//! progress is logged every few seconds (and `trellis data status` reads it from the files).

use commonware_runtime::{Clock as _, Spawner as _, Supervisor as _};
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};
use tokio::sync::mpsc;
use tracing::{info, warn};
use trellis_vault::{KeyId, Protection, Step, StoredFile, Vaulted};

/// The node's storage (`encryption::NodeContext`, named here so this module depends on no other).
type NodeContext = Vaulted<commonware_runtime::tokio::Context>;

/// Between two steps: the node's I/O goes first.
const PAUSE: Duration = Duration::from_millis(20);
/// How often progress is logged.
const REPORT: Duration = Duration::from_secs(5);

/// Asks the re-encryption for another pass (a key rotated).
#[derive(Clone)]
pub(crate) struct Nudge(mpsc::Sender<()>);

impl Nudge {
    pub fn again(&mut self) {
        // Full: a pass is asked for already.
        let _ = self.0.try_send(());
    }
}

/// Starts the background re-encryption of data directory `dir` on `context`: a pass now, and
/// one each time it is nudged.
pub(crate) fn start(context: NodeContext, dir: PathBuf) -> Nudge {
    let (tx, mut rx) = mpsc::channel(1);
    context.child("reencrypt").spawn(move |context| async move {
        loop {
            // Passes until one finds nothing: a blob whose move was to a key since
            // superseded moves again on the next.
            while pass(&context, &dir).await.blobs > 0 {}
            if rx.recv().await.is_none() {
                return;
            }
        }
    });
    Nudge(tx)
}

/// The blobs of `dir` not (wholly) under `current`, read from the files on a thread that may
/// block.
async fn behind(context: &NodeContext, dir: &Path, current: KeyId) -> Vec<StoredFile> {
    let dir = dir.to_path_buf();
    let listed = context
        .child("list")
        .shared(true)
        .spawn(move |_| async move { trellis_vault::blobs(&dir) })
        .await;
    match listed {
        Ok(Ok(blobs)) => blobs
            .into_iter()
            .filter(|blob| {
                blob.key.is_some() && (blob.key != Some(current) || blob.moving.is_some())
            })
            .collect(),
        Ok(Err(error)) => {
            warn!(%error, "cannot list the data directory's blobs to re-encrypt them");
            Vec::new()
        }
        Err(error) => {
            warn!(%error, "listing the data directory's blobs stopped");
            Vec::new()
        }
    }
}

/// What a pass moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    /// Blobs now wholly under the key that was current when the pass began.
    pub blobs: usize,
    /// Bytes rewritten.
    pub bytes: u64,
    pub duration: Duration,
}

/// One pass over every blob of `dir` behind the current key, as the node makes it in the
/// background (`trellis bench rekey` measures it).
pub async fn pass(context: &NodeContext, dir: &Path) -> Pass {
    let Protection::Encrypted(vault) = context.protection() else {
        return Pass::default();
    };
    let current = vault.keys().current();
    let todo = behind(context, dir, current).await;
    if todo.is_empty() {
        return Pass::default();
    }
    let total: u64 = todo.iter().map(|blob| blob.bytes).sum();
    info!(
        blobs = todo.len(),
        mib = format!("{:.1}", mib(total)),
        %current,
        "re-encrypting data written under older data keys, in the background"
    );
    let started = context.current();
    let mut progress = Progress {
        moved: 0,
        total,
        last: started,
    };
    let mut blobs_moved = 0;
    for blob in &todo {
        match context.rekey(&blob.partition, &blob.name).await {
            Ok(Some(mut rekeying)) => loop {
                match rekeying.step().await {
                    Ok(Step::Moved(bytes)) => progress.moved += bytes,
                    Ok(Step::Done) => {
                        blobs_moved += 1;
                        break;
                    }
                    Err(error) => {
                        warn!(partition = blob.partition, %error, "re-encrypting a blob stopped; the next start of the node goes on with it");
                        break;
                    }
                }
                progress.report(context);
                context.sleep(PAUSE).await;
            },
            // Removed meanwhile, or under the current key already.
            Ok(None) => {}
            Err(error) => {
                warn!(partition = blob.partition, %error, "cannot open a blob to re-encrypt it");
            }
        }
    }
    let duration = context
        .current()
        .duration_since(started)
        .unwrap_or_default();
    info!(
        blobs = blobs_moved,
        mib = format!("{:.1}", mib(progress.moved)),
        seconds = format!("{:.1}", duration.as_secs_f64()),
        %current,
        "re-encryption pass done: the data it reached is under the current data key"
    );
    Pass {
        blobs: blobs_moved,
        bytes: progress.moved,
        duration,
    }
}

struct Progress {
    moved: u64,
    total: u64,
    last: SystemTime,
}

impl Progress {
    fn report(&mut self, context: &NodeContext) {
        let now = context.current();
        if now.duration_since(self.last).unwrap_or_default() < REPORT {
            return;
        }
        self.last = now;
        info!(
            moved_mib = format!("{:.1}", mib(self.moved)),
            listed_mib = format!("{:.1}", mib(self.total)),
            "re-encrypting under the current data key (blobs still being written grow past what was listed)"
        );
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
