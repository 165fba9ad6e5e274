//! The one owner of the chain's mutable state.
//!
//! The finalized state (QMDB), the executed-unfinalized blocks and the tip belong to a single
//! task on a thread of its own (the runtime's `dedicated` spawner). Everyone else sends it a
//! *job*, a closure run on that state, and awaits the answer. Jobs run one after another to
//! completion, so no lock is held across storage I/O and nobody ever waits on a lock that a
//! blocked thread holds: a runtime worker only ever awaits a reply, which frees it for other
//! tasks meanwhile.
//!
//! Jobs may drive storage futures to completion with [`trellis_state::block_on`] (the EVM reads
//! state synchronously). That is sound here and nowhere else: the owner's thread runs nothing
//! but jobs, and the storage futures it drives wait only on the runtime's blocking pool, never
//! on a task that needs this thread or a runtime worker.
//!
//! Two mailboxes, both bounded: consensus (propose, verify, finalize) is always served before
//! clients (admission, state reads, calls), so no client load can delay a vote. A full client
//! mailbox makes its senders wait: that is the backpressure admission passes on.
//!
//! What consensus and clients must learn without waiting (whether a block is known, the tip) is
//! published by the owner into a [`Snapshot`] under a plain mutex held only to copy in memory.

use super::Inner;
use crate::Runtime;
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};
use tokio::sync::{mpsc, oneshot};
use trellis_types::{BlockHash, Header};

/// Jobs from consensus that may wait for the owner; a few views' worth.
const CONSENSUS_MAILBOX: usize = 64;
/// Jobs from clients that may wait for the owner before senders are held back.
const CLIENT_MAILBOX: usize = 1_024;

type Job<E> = Box<dyn FnOnce(&mut Inner<E>) + Send>;

/// Whose job it is: consensus's jobs go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    Consensus,
    Clients,
}

/// What the owner publishes after every change: the finalized tip and every block it holds
/// the state after (finalized in the recent window, or executed and pending).
#[derive(Clone, Debug)]
pub(super) struct Snapshot {
    pub tip: Header,
    pub tip_hash: BlockHash,
    pub known: HashSet<BlockHash>,
}

/// The owner's published snapshot, shared with readers.
pub(super) type Published = Arc<Mutex<Snapshot>>;

/// The senders of both mailboxes.
pub(super) struct Mailbox<E: Runtime> {
    consensus: mpsc::Sender<Job<E>>,
    clients: mpsc::Sender<Job<E>>,
}

impl<E: Runtime> Mailbox<E> {
    /// Runs `job` on the owned state and returns its result.
    ///
    /// If the owner is gone, this never returns. The owner stops only when the runtime shuts
    /// down (a node restarting under a rotated key does, while its other tasks still run) or
    /// when a job panics, which shuts the runtime down too (panics are not caught); either way
    /// the runtime is about to abort the asker. Panicking here instead raced that shutdown: a
    /// second panic mid-shutdown made the process exit rather than restart.
    pub async fn ask<T: Send + 'static>(
        &self,
        lane: Lane,
        job: impl FnOnce(&mut Inner<E>) -> T + Send + 'static,
    ) -> T {
        let (reply, answer) = oneshot::channel();
        let job: Job<E> = Box::new(move |inner| {
            // The asker may have given up (its request was dropped); nothing to do then.
            let _ = reply.send(job(inner));
        });
        let mailbox = match lane {
            Lane::Consensus => &self.consensus,
            Lane::Clients => &self.clients,
        };
        if mailbox.send(job).await.is_err() {
            return std::future::pending().await;
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Starts the owner of `inner` on a thread of its own.
pub(super) fn start<E: Runtime>(context: E, inner: Inner<E>) -> Mailbox<E> {
    let (consensus, consensus_jobs) = mpsc::channel(CONSENSUS_MAILBOX);
    let (clients, client_jobs) = mpsc::channel(CLIENT_MAILBOX);
    context
        .dedicated()
        .spawn(move |_| serve(inner, consensus_jobs, client_jobs));
    Mailbox { consensus, clients }
}

/// Runs jobs until both mailboxes close, consensus's first whenever both have some.
async fn serve<E: Runtime>(
    mut inner: Inner<E>,
    mut consensus: mpsc::Receiver<Job<E>>,
    mut clients: mpsc::Receiver<Job<E>>,
) {
    loop {
        let job = tokio::select! {
            biased;
            Some(job) = consensus.recv() => job,
            Some(job) = clients.recv() => job,
            else => return,
        };
        job(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Clock as _, Runner as _, deterministic};
    use futures::{FutureExt as _, future::Either};
    use std::time::Duration;

    /// A task asking a stopped owner (the runtime is shutting down) waits to be aborted; it
    /// does not panic, which would turn the shutdown into a crash.
    #[test]
    fn asking_a_stopped_owner_waits_instead_of_panicking() {
        deterministic::Runner::default().start(|context| async move {
            for lane in [Lane::Consensus, Lane::Clients] {
                let (consensus, consensus_jobs) = mpsc::channel(1);
                let (clients, client_jobs) = mpsc::channel(1);
                drop((consensus_jobs, client_jobs));
                let mailbox: Mailbox<deterministic::Context> = Mailbox { consensus, clients };
                let asked = mailbox.ask(lane, |_| 1u8).boxed();
                let waited = context.sleep(Duration::from_millis(50)).boxed();
                let outcome = futures::future::select(asked, waited).await;
                assert!(matches!(outcome, Either::Right(_)), "{lane:?}: answered");
            }
            // The owner takes the job and stops before running it.
            let (consensus, mut jobs) = mpsc::channel(1);
            let (clients, _client_jobs) = mpsc::channel(1);
            let mailbox: Mailbox<deterministic::Context> = Mailbox { consensus, clients };
            let asked = mailbox.ask(Lane::Consensus, |_| 1u8).boxed();
            let stopping = async {
                drop(jobs.recv().await.expect("the job"));
                context.sleep(Duration::from_millis(50)).await;
            }
            .boxed();
            let outcome = futures::future::select(asked, stopping).await;
            assert!(
                matches!(outcome, Either::Right(_)),
                "answered without a job run"
            );
        });
    }
}
