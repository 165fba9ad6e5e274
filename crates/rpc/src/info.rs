//! What the node and the chain are: client version, network and chain ids, peers, sync status,
//! height, and gas prices (`eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_feeHistory`).
//!
//! Trellis charges a fixed base fee (the genesis gas price) and needs no tips: proposers are
//! known validators, not bidders. `eth_maxPriorityFeePerGas` is therefore zero, and fee history
//! reports the fixed base fee with the tips transactions actually paid.

use crate::{
    Rpc,
    error::{Answer, internal},
    requests::{FeeHistory, NoParams},
};
use alloy_primitives::U64;
use std::sync::Arc;
use trellis_chain::{Runtime, StoredBlock};
use trellis_types::Height;

pub fn client_version() -> String {
    format!("trellis/v{}", env!("CARGO_PKG_VERSION"))
}

/// `eth_gasPrice`: the base fee the next block runs under (tips buy nothing here).
pub async fn gas_price<E: Runtime>(rpc: Arc<Rpc<E>>, _: NoParams) -> Answer<U64> {
    let next = rpc.chain.latest().0.height.next();
    Ok(U64::from(rpc.chain.params_for(next).await.base_fee_per_gas))
}

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles?)`.
pub async fn fee_history<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    request: FeeHistory,
) -> Answer<alloy_rpc_types_eth::FeeHistory> {
    let FeeHistory {
        count,
        newest,
        percentiles,
    } = request;
    let latest = rpc.chain.latest().0.height;
    let newest = newest.height(latest).min(latest);
    let oldest = newest.get().saturating_sub(count - 1);
    let mut base_fees = Vec::new();
    let mut ratios = Vec::new();
    let mut rewards = Vec::new();
    for height in oldest..=newest.get() {
        let base_fee = rpc.chain.params_for(Height(height)).await.base_fee_per_gas;
        base_fees.push(u128::from(base_fee));
        let stored = rpc
            .chain
            .block(Height(height))
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(format!("finalized block {height} is not stored")))?;
        let header = stored.block.header();
        ratios.push(header.gas_used as f64 / header.gas_limit as f64);
        if let Some(percentiles) = &percentiles {
            rewards.push(block_rewards(&stored, base_fee, percentiles));
        }
    }
    Ok(alloy_rpc_types_eth::FeeHistory {
        // One more than the blocks: the base fee of the block after the newest.
        base_fee_per_gas: {
            let next = rpc.chain.params_for(newest.next()).await.base_fee_per_gas;
            base_fees.push(u128::from(next));
            base_fees
        },
        gas_used_ratio: ratios,
        base_fee_per_blob_gas: Vec::new(),
        blob_gas_used_ratio: Vec::new(),
        oldest_block: oldest,
        reward: percentiles.map(|_| rewards),
    })
}

/// The tip paid at each percentile of a block's gas, transactions sorted by tip (geth's way).
fn block_rewards(stored: &StoredBlock, base_fee: u64, percentiles: &[f64]) -> Vec<u128> {
    let mut tips: Vec<(u128, u64)> = stored
        .receipts
        .iter()
        .map(|r| {
            (
                r.effective_gas_price.saturating_sub(u128::from(base_fee)),
                r.gas_used,
            )
        })
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut cumulative = 0;
            tips.iter()
                .find(|(_, gas)| {
                    cumulative += gas;
                    cumulative >= threshold
                })
                .unwrap_or(&tips[tips.len() - 1])
                .0
        })
        .collect()
}
