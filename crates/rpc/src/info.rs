//! What the node and the chain are: client version, network and chain ids, peers, sync status,
//! height, and gas prices (`eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_feeHistory`).
//!
//! Trellis charges a fixed base fee (the genesis gas price) and needs no tips: proposers are
//! known validators, not bidders. `eth_maxPriorityFeePerGas` is therefore zero, and fee history
//! reports the fixed base fee with the tips transactions actually paid.

use crate::{
    Rpc,
    error::{Reply, internal, invalid},
    format,
    params::{Args, parse_tag},
};
use alloy_primitives::{Bytes, keccak256};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use std::sync::Arc;
use trellis_chain::{Runtime, StoredBlock};
use trellis_types::Height;

/// Most blocks one `eth_feeHistory` call covers (geth's limit).
const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;
/// Most reward percentiles one `eth_feeHistory` call asks for.
const MAX_PERCENTILES: usize = 100;

pub fn client_version() -> String {
    format!("trellis/v{}", env!("CARGO_PKG_VERSION"))
}

pub fn sha3(params: &Params<'_>) -> Reply {
    let data: Bytes = Args::parse(params, 1)?.required(0, "0x-prefixed hex data")?;
    Ok(format!("{:#x}", keccak256(&data)).into())
}

/// A block count given as a hex quantity (ethers) or a JSON number (web3.py).
fn block_count(args: &Args) -> Result<u64, ErrorObjectOwned> {
    let value: Value = args.required(0, "a block count")?;
    let count = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text
            .strip_prefix("0x")
            .and_then(|digits| u64::from_str_radix(digits, 16).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(format!(
            "invalid block count {value}: use a number or a 0x-prefixed hex quantity"
        ))
    })?;
    if count == 0 || count > MAX_FEE_HISTORY_BLOCKS {
        return Err(invalid(format!(
            "block count {count} is out of range: ask for 1 to {MAX_FEE_HISTORY_BLOCKS} blocks"
        )));
    }
    Ok(count)
}

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles?)`.
pub async fn fee_history<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let args = Args::parse(&params, 3)?;
    let count = block_count(&args)?;
    let newest: String = args.required(1, "the newest block (number or tag)")?;
    let percentiles: Option<Vec<f64>> =
        args.optional(2, "an array of reward percentiles (0 to 100)")?;
    check_percentiles(percentiles.as_deref())?;
    let latest = rpc.chain.latest().0.height;
    let newest = parse_tag(Some(&newest))?.height(latest).min(latest);
    let oldest = newest.get().saturating_sub(count - 1);
    let base_fee = format::quantity(rpc.chain.genesis().gas_price);
    let mut ratios = Vec::new();
    let mut rewards = Vec::new();
    for height in oldest..=newest.get() {
        let stored = rpc
            .chain
            .block(Height(height))
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(format!("finalized block {height} is not stored")))?;
        let header = stored.block.header();
        ratios.push(json!(header.gas_used as f64 / header.gas_limit as f64));
        if let Some(percentiles) = &percentiles {
            rewards.push(block_rewards(
                &stored,
                rpc.chain.genesis().gas_price,
                percentiles,
            ));
        }
    }
    let mut answer = json!({
        "oldestBlock": format::quantity(oldest),
        // One more than the blocks: the base fee of the block after the newest.
        "baseFeePerGas": vec![base_fee; ratios.len() + 1],
        "gasUsedRatio": ratios,
    });
    if percentiles.is_some() {
        answer["reward"] = rewards.into();
    }
    Ok(answer)
}

fn check_percentiles(percentiles: Option<&[f64]>) -> Result<(), ErrorObjectOwned> {
    let Some(percentiles) = percentiles else {
        return Ok(());
    };
    if percentiles.len() > MAX_PERCENTILES {
        return Err(invalid(format!(
            "{} reward percentiles asked: at most {MAX_PERCENTILES}",
            percentiles.len()
        )));
    }
    for pair in percentiles.windows(2) {
        if pair[0] > pair[1] {
            return Err(invalid("reward percentiles must be in ascending order"));
        }
    }
    if let Some(bad) = percentiles.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        return Err(invalid(format!(
            "reward percentile {bad} is outside 0 to 100"
        )));
    }
    Ok(())
}

/// The tip paid at each percentile of a block's gas, transactions sorted by tip (geth's way).
fn block_rewards(stored: &StoredBlock, base_fee: u64, percentiles: &[f64]) -> Vec<String> {
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
        return vec![format::quantity(0u64); percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut cumulative = 0;
            let tip = tips
                .iter()
                .find(|(_, gas)| {
                    cumulative += gas;
                    cumulative >= threshold
                })
                .unwrap_or(&tips[tips.len() - 1])
                .0;
            format::quantity(tip)
        })
        .collect()
}
