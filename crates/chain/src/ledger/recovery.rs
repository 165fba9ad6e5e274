//! Sender recovery of finalized blocks ahead of their turn, on a thread of its own.
//!
//! A node catching up (or a full node whose pool never saw a block's transactions) must know
//! every sender of every block it applies. Recovering one is tens of µs of secp256k1, more than
//! executing an ERC-20 transfer; done here as blocks arrive, it runs on the other cores while
//! the owner executes and commits the block before.
//!
//! Usually nothing is recovered: a block travels with its proposer's claim of the senders
//! ([`ClaimedSenders`]), and a claim that hashes to the senders root of the block's header,
//! which the finalization certificate covers, names exactly the senders a quorum of validators
//! recovered before voting.

use alloy_primitives::{Bytes, keccak256};
use tokio::sync::{mpsc, oneshot};
use trellis_execution::recover_senders;
use trellis_mempool::Mempool;
use trellis_types::{ClaimedSenders, RecoveredTx, transaction::decode_claimed};

use crate::Runtime;

/// Blocks waiting for recovery; the finalizer's pipeline holds fewer.
const QUEUE: usize = 16;

/// One block's transactions with their senders, ahead of execution, by position: taken from
/// the pool, from the certified claim, or recovered; `None` where a transaction did not decode
/// (the owner reports the error with the block).
#[derive(Debug, Default)]
pub struct RecoveredBlock(Vec<Option<RecoveredTx>>);

impl RecoveredBlock {
    /// The transaction at `index`, if recovered here.
    pub(super) fn take(&mut self, index: usize) -> Option<RecoveredTx> {
        self.0.get_mut(index).and_then(Option::take)
    }
}

struct Job {
    transactions: Vec<Bytes>,
    certified: ClaimedSenders,
    reply: oneshot::Sender<RecoveredBlock>,
}

/// The handle blocks are sent through.
pub(super) struct BlockRecovery {
    jobs: mpsc::Sender<Job>,
}

impl BlockRecovery {
    /// Starts the recovery thread; transactions `pool` holds are taken from it, not recovered.
    pub fn start<E: Runtime>(context: E, pool: Mempool) -> Self {
        let (jobs, mut inbox) = mpsc::channel::<Job>(QUEUE);
        context.dedicated().spawn(move |_| async move {
            while let Some(job) = inbox.recv().await {
                let recovered = recover_missing(&pool, &job.transactions, &job.certified);
                let _ = job.reply.send(recovered);
            }
        });
        Self { jobs }
    }

    /// Finds the senders of `transactions` the pool does not hold: as `certified` names them
    /// (one per transaction, already checked against the block's senders root, or none), or
    /// else recovered.
    pub async fn recover(
        &self,
        transactions: Vec<Bytes>,
        certified: ClaimedSenders,
    ) -> RecoveredBlock {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            transactions,
            certified,
            reply,
        };
        if self.jobs.send(job).await.is_err() {
            panic!("the block recovery thread has stopped (a recovery panicked)");
        }
        answer
            .await
            .unwrap_or_else(|_| panic!("the block recovery thread stopped during a recovery"))
    }
}

/// Takes what the pool holds (so the owner looks nothing up again), then the certified senders
/// of the rest, or recovers them.
fn recover_missing(
    pool: &Mempool,
    transactions: &[Bytes],
    certified: &ClaimedSenders,
) -> RecoveredBlock {
    let mut recovered: Vec<Option<RecoveredTx>> = transactions
        .iter()
        .map(|raw| pool.get(&keccak256(raw)))
        .collect();
    let missing: Vec<usize> = (0..transactions.len())
        .filter(|&i| recovered[i].is_none())
        .collect();
    let senders = certified.as_slice();
    if senders.len() == transactions.len() {
        for index in missing {
            recovered[index] = decode_claimed(transactions[index].clone(), senders[index]).ok();
        }
    } else {
        let raws: Vec<Bytes> = missing.iter().map(|&i| transactions[i].clone()).collect();
        for (index, tx) in missing.into_iter().zip(recover_senders(&raws)) {
            recovered[index] = tx.ok();
        }
    }
    RecoveredBlock(recovered)
}
