//! Subscriptions over WebSocket: `eth_subscribe` to `newHeads`, `logs` and
//! `newPendingTransactions`, ended by `eth_unsubscribe` or the connection closing.
//!
//! A subscription follows the chain's finalized height and reads each new block from the block
//! store, so a block finalized while a notification was being sent is never skipped.

use crate::{
    Rpc,
    access::Scope,
    format,
    log_filter::LogFilter,
    requests::{Request as _, Subscription},
};
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink,
    core::traits::IdProvider,
    types::{Params, SubscriptionId},
};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use trellis_chain::Runtime;
use trellis_types::Height;

/// `eth_subscribe`: accepts or rejects, then sends notifications until the client leaves;
/// `logs` sends only what the subscriber's `scope` holds.
pub async fn subscribe<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    scope: Scope,
) {
    let topic = match Subscription::parse(&params) {
        Ok(topic) => topic,
        Err(error) => {
            pending.reject(error).await;
            return;
        }
    };
    let Ok(sink) = pending.accept().await else {
        return;
    };
    match topic {
        Subscription::PendingTransactions { full } => pending_transactions(&rpc, &sink, full).await,
        Subscription::NewHeads => blocks(&rpc, &sink, None).await,
        Subscription::Logs(filter) => blocks(&rpc, &sink, Some((&filter, scope))).await,
    }
}

/// Sends `value` as a notification; `false` once the client has gone.
async fn send(sink: &SubscriptionSink, value: &impl serde::Serialize) -> bool {
    let Ok(message) = serde_json::value::to_raw_value(value) else {
        return false;
    };
    sink.send(SubscriptionMessage::from(message)).await.is_ok()
}

/// Each new block's header, or each log of it `filter` matches and the scope holds.
async fn blocks<E: Runtime>(
    rpc: &Rpc<E>,
    sink: &SubscriptionSink,
    filter: Option<(&LogFilter, Scope)>,
) {
    let mut heads = rpc.chain.heads();
    let mut next = heads.borrow_and_update().next();
    loop {
        tokio::select! {
            _ = sink.closed() => return,
            changed = heads.changed() => if changed.is_err() { return },
        }
        let latest = *heads.borrow_and_update();
        while next <= latest {
            let Ok(Some(stored)) = rpc.chain.block(next).await else {
                tracing::warn!(height = %next, "a finalized block is not readable for subscribers");
                return;
            };
            let sent = match filter {
                None => {
                    let base_fee = rpc.chain.params_for(next).await.base_fee_per_gas;
                    send(sink, &format::header(&stored, base_fee)).await
                }
                Some((filter, scope)) => {
                    let mut logs = Vec::new();
                    filter.collect(&stored, &mut logs);
                    if let Err(error) = scope.retain_logs(&rpc.chain, &mut logs).await {
                        tracing::warn!(height = %next, error = %error.message(), "whose logs a subscriber sees is not readable");
                        return;
                    }
                    let mut sent = true;
                    for log in &logs {
                        sent = sent && send(sink, log).await;
                    }
                    sent
                }
            };
            if !sent {
                return;
            }
            next = Height(next.get() + 1);
        }
    }
}

async fn pending_transactions<E: Runtime>(rpc: &Rpc<E>, sink: &SubscriptionSink, full: bool) {
    let mut admitted = rpc.chain.admitted();
    loop {
        let hash = tokio::select! {
            _ = sink.closed() => return,
            received = admitted.recv() => match received {
                Ok(hash) => hash,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a pending-transactions subscriber fell behind");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        let sent = match full {
            false => send(sink, &hash).await,
            true => match rpc.chain.pending_transaction(&hash) {
                Some(tx) => send(sink, &format::pending_transaction(&tx)).await,
                // Already included in a block: the hash alone would mislead no one, but
                // a full subscriber asked for objects.
                None => continue,
            },
        };
        if !sent {
            return;
        }
    }
}

/// Subscription ids as Ethereum clients expect them: random 128-bit `0x`-prefixed hex strings.
#[derive(Debug)]
pub struct HexIds;

impl IdProvider for HexIds {
    fn next_id(&self) -> SubscriptionId<'static> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        SubscriptionId::Str(format!("0x{}", hex::encode(bytes)).into())
    }
}
