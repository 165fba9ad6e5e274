//! Answering log filters over a range of blocks, within the node's limits: `eth_getLogs`, and
//! the queries of polled filters.

use crate::{
    Rpc,
    access::Scope,
    error::{Answer, internal, invalid, limit, rejected},
    format,
    log_filter::{Blocks, LogFilter},
    requests::Logs,
};
use jsonrpsee::types::ErrorObjectOwned;
use std::sync::Arc;
use trellis_chain::{LogsError, Runtime};
use trellis_types::Height;

/// The heights `filter` covers when the latest block is `latest`, checked against the limits;
/// empty when the range starts above `latest`.
pub async fn heights<E: Runtime>(
    rpc: &Rpc<E>,
    filter: &LogFilter,
) -> Result<std::ops::RangeInclusive<u64>, ErrorObjectOwned> {
    let latest = rpc.chain.latest().0.height;
    match &filter.blocks {
        Blocks::Hash(hash) => {
            let stored = crate::blocks::stored(rpc, crate::params::BlockId::Hash(*hash))
                .await?
                .ok_or_else(|| rejected(format!("unknown block {hash}")))?;
            let height = stored.block.height().get();
            Ok(height..=height)
        }
        Blocks::Range { from, to } => {
            let (from, to) = (from.height(latest), to.height(latest));
            if from > to {
                return Err(invalid(format!(
                    "fromBlock {} is after toBlock {}: the range is reversed",
                    from.get(),
                    to.get()
                )));
            }
            // The range asked is checked, not what is left after clamping to the latest
            // block: a client gets the same answer whatever the chain's height.
            let span = (to.get() - from.get()).saturating_add(1);
            if span > rpc.limits.max_log_blocks {
                return Err(limit(format!(
                    "block range of {span} blocks is too large: ask for at most {} blocks per query",
                    rpc.limits.max_log_blocks
                )));
            }
            let to = to.min(latest);
            Ok(from.get()..=to.get())
        }
    }
}

/// The matching logs of the blocks `heights`, at most the node's limit. Only the blocks the
/// log index names as candidates are read.
pub async fn query<E: Runtime>(
    rpc: &Rpc<E>,
    filter: &LogFilter,
    heights: std::ops::RangeInclusive<u64>,
) -> Result<Vec<alloy_rpc_types_eth::Log>, ErrorObjectOwned> {
    let (from, to) = (Height(*heights.start()), Height(*heights.end()));
    let found = rpc
        .chain
        .logs(&filter.query, from, to, rpc.limits.max_logs)
        .await
        .map_err(|error| match error {
            LogsError::TooMany { .. } => limit(error.to_string()),
            LogsError::Store(error) => internal(error),
        })?;
    Ok(found.iter().map(format::log).collect())
}

/// [`query`] narrowed to what `scope` holds (a member's: the logs naming its account and its
/// contracts' logs).
pub async fn query_scoped<E: Runtime>(
    rpc: &Rpc<E>,
    filter: &LogFilter,
    heights: std::ops::RangeInclusive<u64>,
    scope: Scope,
) -> Answer<Vec<alloy_rpc_types_eth::Log>> {
    let mut logs = query(rpc, filter, heights).await?;
    scope.retain_logs(&rpc.chain, &mut logs).await?;
    Ok(logs)
}

/// `eth_getLogs(filter)`: the logs the caller's `scope` holds.
pub async fn get_logs<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    Logs(filter): Logs,
    scope: Scope,
) -> Answer<Vec<alloy_rpc_types_eth::Log>> {
    let heights = heights(&rpc, &filter).await?;
    query_scoped(&rpc, &filter, heights, scope).await
}
