//! Transaction gossip: every transaction a client submits to one validator reaches every
//! validator's pool, so whichever validator leads next can include it.
//!
//! Validators are fully connected, so a transaction is sent once, by the validator that admitted
//! it, to all others, and never relayed. Transactions are sent in batches: all that queued up
//! while the previous batch was being sent, up to [`MAX_BATCH_TRANSACTIONS`] or
//! [`MAX_BATCH_BYTES`]. Each receiver runs full admission (it recovers the sender itself: a
//! peer's word is not trusted) and then reuses that recovery when the transaction comes back in a
//! block.
//!
//! # Wire format
//! A batch is a commonware-codec `Vec<Bytes>`: a varint count, then each EIP-2718 envelope as a
//! varint length and its bytes. A batch that does not decode within the limits is dropped.

use crate::{Chain, Runtime};
use bytes::Bytes;
use commonware_codec::{Decode as _, Encode as _, RangeCfg};
use commonware_cryptography::PublicKey;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::Spawner;
use futures::StreamExt as _;
use tracing::{debug, warn};
use trellis_mempool::AdmissionError;

/// Most transactions in one gossip message.
pub const MAX_BATCH_TRANSACTIONS: usize = 1_024;
/// A batch is closed once it holds this many bytes of transactions.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Starts gossiping `chain`'s client transactions on `channel` and admitting the ones peers
/// send.
pub fn start<E, X, S, R>(context: E, chain: Chain<X>, (sender, receiver): (S, R))
where
    E: Spawner,
    X: Runtime,
    S: Sender,
    R: Receiver,
{
    let feed = chain.gossip_feed();
    let max_tx_bytes = chain.mempool().config().max_transaction_bytes;
    context
        .child("gossip_out")
        .spawn(move |_| send_batches(feed, sender));
    context
        .child("gossip_in")
        .spawn(move |_| receive_batches(receiver, chain, max_tx_bytes));
}

async fn send_batches<S: Sender>(
    mut feed: futures::channel::mpsc::UnboundedReceiver<trellis_types::Bytes>,
    mut sender: S,
) {
    while let Some(first) = feed.next().await {
        let mut size = first.len();
        let mut batch: Vec<Bytes> = vec![first.0];
        while batch.len() < MAX_BATCH_TRANSACTIONS && size < MAX_BATCH_BYTES {
            match feed.try_recv() {
                Ok(tx) => {
                    size += tx.len();
                    batch.push(tx.0);
                }
                _ => break,
            }
        }
        debug!(transactions = batch.len(), bytes = size, "gossiping");
        sender.send(Recipients::All, batch.encode(), false);
    }
}

async fn receive_batches<R: Receiver, X: Runtime>(
    mut receiver: R,
    chain: Chain<X>,
    max_tx_bytes: usize,
) {
    let limits = (
        RangeCfg::new(..=MAX_BATCH_TRANSACTIONS),
        RangeCfg::new(..=max_tx_bytes),
    );
    while let Ok((peer, message)) = receiver.recv().await {
        let batch = match Vec::<Bytes>::decode_cfg(message, &limits) {
            Ok(batch) => batch,
            Err(error) => {
                warn!(%peer, %error, "dropped a malformed transaction batch");
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
