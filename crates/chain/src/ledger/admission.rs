//! Sender recovery for admission, on a thread of its own.
//!
//! Recovering a sender is the costliest step of admission (tens of µs of secp256k1 per
//! transaction) and comes in floods: a client's batch of 1,000, a peer's gossip. Run in the
//! callers' tasks it would fill every runtime worker, and consensus's tasks (votes, proposals,
//! block delivery) would queue behind it until a view timed out. Here it runs one job after
//! another on a dedicated thread at a lower OS priority (nice [`NICE`]) than the runtime's
//! workers and the state's owner, so when the cores are short consensus and execution get them
//! first and recovery takes what is left; the pool refills as fast as blocks empty it.
//!
//! At most [`QUEUE`] transactions wait for recovery. Clients beyond that are refused at once
//! with [`AdmissionError::Busy`] (they retry later); peers' gossip waits for room instead, so a
//! busy validator slows its peers' gossip rather than losing their transactions.

use super::Rules;
use crate::Runtime;
use alloy_primitives::Bytes;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use trellis_mempool::{AdmissionError, Prepared};

/// Transactions that may wait for sender recovery: a few batches of 1,000, well under a
/// second of work.
pub(super) const QUEUE: usize = 4_096;

/// The admission thread's nice value: on Linux a thread's own; with others at 0 it gets about
/// a tenth of a contended core.
const NICE: i32 = 10;

/// What recovery gives for each transaction of a job, in order.
pub(super) type Recovered = Vec<Result<Prepared, AdmissionError>>;

struct Job {
    batch: Vec<Bytes>,
    /// Places in the queue, given back once the batch is recovered.
    _places: OwnedSemaphorePermit,
    reply: oneshot::Sender<Recovered>,
}

/// Whether a caller waits for room in the queue or is refused when it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WhenFull {
    Refuse,
    Wait,
}

/// The handle callers send batches through.
pub(super) struct Admission {
    places: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Admission {
    /// Starts the recovery thread for the pool of `rules`.
    pub fn start<E: Runtime>(context: E, rules: Arc<Rules>) -> Self {
        // Every job holds at least one place, so the channel never holds more jobs than this.
        let (jobs, mut inbox) = mpsc::channel::<Job>(QUEUE);
        context.dedicated().spawn(move |_| async move {
            // Best effort: at worst recovery competes as an equal (as it did on the workers).
            if let Err(error) = rustix::process::setpriority_process(None, NICE) {
                tracing::warn!(%error, "cannot lower the admission thread's priority");
            }
            while let Some(job) = inbox.recv().await {
                let recovered = job
                    .batch
                    .into_iter()
                    .map(|raw| rules.mempool.prepare(raw))
                    .collect();
                // The caller may have gone (its request was dropped); nothing to do then.
                let _ = job.reply.send(recovered);
            }
        });
        Self {
            places: Arc::new(Semaphore::new(QUEUE)),
            jobs,
        }
    }

    /// Recovers the senders of `batch` (and runs the other checks that need no state).
    pub async fn prepare(&self, batch: Vec<Bytes>, when_full: WhenFull) -> Recovered {
        let count = batch.len();
        // A batch larger than the whole queue waits for all of it.
        let wanted = u32::try_from(count.clamp(1, QUEUE)).expect("QUEUE fits in u32");
        let places = match when_full {
            WhenFull::Refuse => match self.places.clone().try_acquire_many_owned(wanted) {
                Ok(places) => places,
                Err(_) => return busy(count),
            },
            WhenFull::Wait => self
                .places
                .clone()
                .acquire_many_owned(wanted)
                .await
                .expect("the admission queue's semaphore is never closed"),
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            batch,
            _places: places,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            panic!("the admission thread has stopped (a recovery panicked)");
        }
        answer
            .await
            .unwrap_or_else(|_| panic!("the admission thread stopped during a recovery"))
    }
}

fn busy(count: usize) -> Recovered {
    (0..count)
        .map(|_| Err(AdmissionError::Busy { queue: QUEUE }))
        .collect()
}
