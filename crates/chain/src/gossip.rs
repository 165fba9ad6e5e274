//! Transaction gossip: every transaction a client submits to one validator reaches every
//! validator's pool, so whichever validator leads next can include it.
//!
//! Validators are fully connected, so a transaction is sent once, by the validator that admitted
//! it, to all others, and never relayed. Transactions are sent in batches: all that were
//! admitted since the previous message, which is at least [`MIN_MESSAGE_SPACING`] earlier, up
//! to [`MAX_BATCH_TRANSACTIONS`] or [`MAX_BATCH_BYTES`]. Each receiver runs full admission (it
//! recovers the sender itself: a peer's word is not trusted) and then reuses that recovery when
//! the transaction comes back in a block.
//!
//! # Wire format
//! A batch is a commonware-codec `Vec<Bytes>`: a varint count, then each EIP-2718 envelope as a
//! varint length and its bytes. A batch that does not decode within the limits is dropped and
//! its sender blocked: no honest node sends one.

use crate::{Chain, Runtime};
use bytes::Bytes;
use commonware_codec::{Decode as _, Encode as _, RangeCfg};
use commonware_cryptography::PublicKey;
use commonware_p2p::{Blocker, CheckedSender as _, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use futures::{StreamExt as _, channel::mpsc::UnboundedReceiver};
use std::{
    collections::VecDeque,
    time::{Duration, SystemTime},
};
use tracing::{debug, warn};
use trellis_mempool::AdmissionError;

/// Most transactions in one gossip message.
pub const MAX_BATCH_TRANSACTIONS: usize = 1_024;
/// A batch is closed once it holds this many bytes of transactions.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// The least time between two of a validator's gossip messages; transactions admitted
/// meanwhile join the next one. Clients that send one transaction a request would otherwise
/// make a message each: a p2p message costs every peer a decryption and an admission job, and
/// past the channel's quota (1,024 a second) the p2p layer skips the recipient, so the
/// transaction stays in one pool and waits for that validator's turn to lead (measured: 4
/// validators at 2,400 TPS sent ~2,000 one-transaction messages a second, hundreds skipped).
pub const MIN_MESSAGE_SPACING: Duration = Duration::from_millis(2);

/// Starts gossiping `chain`'s client transactions on `channel` and admitting the ones peers
/// send; a peer sending what does not decode is blocked with `blocker`.
pub fn start<E, X, S, R, B>(context: E, chain: Chain<X>, (sender, receiver): (S, R), blocker: B)
where
    E: Spawner + Clock,
    X: Runtime,
    S: Sender,
    R: Receiver,
    B: Blocker<PublicKey = R::PublicKey>,
{
    let feed = chain.gossip_feed();
    let max_tx_bytes = chain.max_transaction_bytes();
    context
        .child("gossip_out")
        .spawn(move |context| send_batches(context, feed, sender));
    context
        .child("gossip_in")
        .spawn(move |_| receive_batches(receiver, chain, max_tx_bytes, blocker));
}

async fn send_batches<E: Clock, S: Sender>(
    context: E,
    mut feed: UnboundedReceiver<Vec<trellis_types::Bytes>>,
    mut sender: S,
) {
    let mut queued = VecDeque::new();
    let mut last_sent: Option<SystemTime> = None;
    loop {
        if queued.is_empty() {
            match feed.next().await {
                Some(batch) => queued.extend(batch.into_iter().map(|tx| tx.0)),
                None => return,
            }
        }
        if let Some(next) = last_sent.map(|last| last + MIN_MESSAGE_SPACING)
            && context.current() < next
        {
            context.sleep_until(next).await;
        }
        while let Ok(batch) = feed.try_recv() {
            queued.extend(batch.into_iter().map(|tx| tx.0));
        }
        let batch = next_message(&mut queued);
        // The spacing keeps a validator under the channel's quota; should every peer still be
        // over it, wait rather than drop the batch.
        let checked = loop {
            match sender.check(Recipients::All) {
                Ok(checked) => break checked,
                Err(until) => context.sleep_until(until).await,
            }
        };
        debug!(transactions = batch.len(), "gossiping");
        if !checked.send(batch.encode(), false).accepted() {
            warn!(
                transactions = batch.len(),
                "gossip not accepted: the p2p layer is closing"
            );
        }
        last_sent = Some(context.current());
    }
}

/// The oldest queued transactions, up to [`MAX_BATCH_TRANSACTIONS`] and [`MAX_BATCH_BYTES`]
/// (at least one).
fn next_message(queued: &mut VecDeque<Bytes>) -> Vec<Bytes> {
    let mut size = 0;
    let mut batch = Vec::new();
    while batch.len() < MAX_BATCH_TRANSACTIONS && size < MAX_BATCH_BYTES {
        let Some(tx) = queued.pop_front() else {
            break;
        };
        size += tx.len();
        batch.push(tx);
    }
    batch
}

async fn receive_batches<R: Receiver, X: Runtime, B: Blocker<PublicKey = R::PublicKey>>(
    mut receiver: R,
    chain: Chain<X>,
    max_tx_bytes: usize,
    mut blocker: B,
) {
    let limits = (
        RangeCfg::new(..=MAX_BATCH_TRANSACTIONS),
        RangeCfg::new(..=max_tx_bytes),
    );
    while let Ok((peer, message)) = receiver.recv().await {
        let batch = match Vec::<Bytes>::decode_cfg(message, &limits) {
            Ok(batch) => batch,
            Err(error) => {
                warn!(%peer, %error, "a malformed transaction batch; blocking the peer");
                blocker.block(peer);
                continue;
            }
        };
        admit_batch(&chain, &peer, batch).await;
    }
}

async fn admit_batch<X: Runtime>(chain: &Chain<X>, peer: &impl PublicKey, batch: Vec<Bytes>) {
    let batch = batch.into_iter().map(Into::into).collect();
    for admitted in chain.admit_many(batch).await {
        match admitted {
            // Already here: the client sent it to several validators, or it is back.
            Ok(_) | Err(AdmissionError::AlreadyKnown) => {}
            // Final state moved on between the sender's admission and ours, or our pool is
            // full: the sender's pool still has it.
            Err(error) => debug!(%peer, %error, "gossiped transaction not admitted"),
        }
    }
}
