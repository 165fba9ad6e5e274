//! Installed filters, polled over HTTP: `eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`, `eth_getFilterLogs`,
//! `eth_uninstallFilter`.
//!
//! A filter remembers the next block it has not reported; each poll reports the blocks since.
//! A filter nobody polls for [`FILTER_TIMEOUT`] is removed, as geth does, so abandoned
//! filters do not accumulate.

use crate::{
    Rpc,
    access::Scope,
    error::{Answer, internal, invalid, limit},
    log_filter::{Blocks, LogFilter},
    logs,
    requests::{FilterId, Logs},
};
use alloy_primitives::{B256, TxHash};
use alloy_rpc_types_eth::FilterChanges;
use jsonrpsee::types::ErrorObjectOwned;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::broadcast::{Receiver, error::TryRecvError};
use trellis_chain::Runtime;
use trellis_types::Height;

/// How long a filter lives without being polled.
pub const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

/// What a filter reports.
enum Kind {
    Blocks,
    /// Logs, narrowed to the scope of the caller who installed the filter.
    Logs(LogFilter, Scope),
    Pending(Receiver<TxHash>),
}

struct Installed {
    kind: Kind,
    /// The first block not reported yet.
    next: Height,
    polled: Instant,
}

/// The node's installed filters, shared by all connections.
#[derive(Default)]
pub struct Filters {
    installed: Mutex<HashMap<String, Installed>>,
}

impl Filters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Installed>> {
        self.installed.lock().expect("filters lock poisoned")
    }

    fn install(&self, kind: Kind, next: Height, max: usize) -> Answer<String> {
        let mut installed = self.lock();
        installed.retain(|_, filter| filter.polled.elapsed() < FILTER_TIMEOUT);
        if installed.len() >= max {
            return Err(limit(format!(
                "{max} filters are installed: uninstall some (eth_uninstallFilter) or wait for unpolled ones to expire"
            )));
        }
        let id = filter_id();
        let filter = Installed {
            kind,
            next,
            polled: Instant::now(),
        };
        installed.insert(id.clone(), filter);
        Ok(id)
    }
}

/// A random 128-bit id, so one client cannot guess and poll or remove another's filter.
fn filter_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("0x{}", hex::encode(bytes))
}

fn not_found(id: &str) -> ErrorObjectOwned {
    invalid(format!(
        "filter {id} not found (it expired after {} s unpolled, or was uninstalled)",
        FILTER_TIMEOUT.as_secs()
    ))
}

fn next_block<E: Runtime>(rpc: &Rpc<E>) -> Height {
    rpc.chain.latest().0.height.next()
}

/// `eth_newFilter`: a log filter that reports what the caller's `scope` holds.
pub async fn new_filter<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    Logs(filter): Logs,
    scope: Scope,
) -> Answer<String> {
    if let Blocks::Hash(_) = filter.blocks {
        return Err(invalid(
            "a polled filter takes fromBlock/toBlock, not blockHash",
        ));
    }
    let next = next_block(&rpc);
    rpc.filters
        .install(Kind::Logs(filter, scope), next, rpc.limits.max_filters)
}

pub fn new_block_filter<E: Runtime>(rpc: &Rpc<E>) -> Answer<String> {
    rpc.filters
        .install(Kind::Blocks, next_block(rpc), rpc.limits.max_filters)
}

pub fn new_pending_filter<E: Runtime>(rpc: &Rpc<E>) -> Answer<String> {
    let receiver = rpc.chain.admitted();
    rpc.filters.install(
        Kind::Pending(receiver),
        next_block(rpc),
        rpc.limits.max_filters,
    )
}

pub fn uninstall<E: Runtime>(rpc: &Rpc<E>, FilterId(id): FilterId) -> Answer<bool> {
    Ok(rpc.filters.lock().remove(&id).is_some())
}

/// What a poll found: block range to report and the filter's kind, or pending hashes.
enum Due {
    Blocks(std::ops::RangeInclusive<u64>),
    Logs(LogFilter, Scope, std::ops::RangeInclusive<u64>),
    Pending(Vec<TxHash>),
}

/// `eth_getFilterChanges(id)`: what happened since the last poll.
pub async fn changes<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    FilterId(id): FilterId,
) -> Answer<FilterChanges> {
    let latest = rpc.chain.latest().0.height;
    let due = {
        let mut installed = rpc.filters.lock();
        let filter = installed.get_mut(&id).ok_or_else(|| not_found(&id))?;
        filter.polled = Instant::now();
        // Report at most the node's block-range limit per poll; the rest comes next poll.
        let first = filter.next.get();
        let last = latest
            .get()
            .min(first.saturating_add(rpc.limits.max_log_blocks - 1));
        if first <= last {
            filter.next = Height(last + 1);
        }
        match &mut filter.kind {
            Kind::Blocks => Due::Blocks(first..=last),
            Kind::Logs(log_filter, scope) => Due::Logs(log_filter.clone(), *scope, first..=last),
            Kind::Pending(receiver) => Due::Pending(drain(receiver)),
        }
    };
    match due {
        Due::Blocks(heights) => Ok(FilterChanges::Hashes(block_hashes(&rpc, heights).await?)),
        Due::Logs(filter, scope, heights) => Ok(FilterChanges::Logs(
            logs::query_scoped(&rpc, &filter, heights, scope).await?,
        )),
        Due::Pending(hashes) => Ok(FilterChanges::Hashes(hashes)),
    }
}

/// Every hash waiting in `receiver` (a lagging receiver skips what it missed).
fn drain(receiver: &mut Receiver<TxHash>) -> Vec<TxHash> {
    let mut hashes = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(hash) => hashes.push(hash),
            Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Empty | TryRecvError::Closed) => return hashes,
        }
    }
}

async fn block_hashes<E: Runtime>(
    rpc: &Rpc<E>,
    heights: std::ops::RangeInclusive<u64>,
) -> Answer<Vec<B256>> {
    let mut hashes = Vec::new();
    for height in heights {
        let stored = rpc.chain.block(Height(height)).await.map_err(internal)?;
        let Some(stored) = stored else { break };
        hashes.push(stored.block.hash().0);
    }
    Ok(hashes)
}

/// `eth_getFilterLogs(id)`: every log the filter's whole range matches.
pub async fn filter_logs<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    FilterId(id): FilterId,
) -> Answer<Vec<alloy_rpc_types_eth::Log>> {
    let (filter, scope) = {
        let mut installed = rpc.filters.lock();
        let filter = installed.get_mut(&id).ok_or_else(|| not_found(&id))?;
        filter.polled = Instant::now();
        match &filter.kind {
            Kind::Logs(filter, scope) => (filter.clone(), *scope),
            _ => return Err(invalid(format!("filter {id} is not a log filter"))),
        }
    };
    let heights = logs::heights(&rpc, &filter).await?;
    logs::query_scoped(&rpc, &filter, heights, scope).await
}
