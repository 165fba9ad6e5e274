//! Reading the state: balances, nonces, code, storage, read-only calls and gas estimates.
//!
//! The node answers from the latest finalized state. A block parameter naming another block is
//! refused with a clear error rather than answered from the wrong state.

use crate::{
    Rpc,
    error::{Reply, internal, invalid, rejected, reverted},
    format,
    params::{Args, BlockId, BlockTag, CallArgs},
};
use alloy_primitives::{Address, U256};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use std::sync::Arc;
use trellis_chain::Runtime;
use trellis_execution::{CallOutcome, CallRequest, ExecutionError};
use trellis_types::Height;

/// Checks that `block` names the latest finalized block, whose state the node answers from.
pub async fn require_latest<E: Runtime>(
    rpc: &Rpc<E>,
    block: BlockId,
) -> Result<(), ErrorObjectOwned> {
    let latest = rpc.chain.latest().0.height;
    let height = match block {
        BlockId::Tag(tag) => tag.height(latest),
        BlockId::Hash(hash) => rpc
            .chain
            .store()
            .block_by_hash(&hash)
            .await
            .map_err(internal)?
            .ok_or_else(|| rejected(format!("block {hash} not found")))?
            .block
            .height(),
    };
    state_at(height, latest)
}

/// Refuses a state query at `height` unless it is `latest`.
pub fn state_at(height: Height, latest: Height) -> Result<(), ErrorObjectOwned> {
    if height == latest {
        Ok(())
    } else if height > latest {
        Err(rejected(format!(
            "block {} is not finalized yet (latest is {})",
            height.get(),
            latest.get()
        )))
    } else {
        Err(rejected(format!(
            "state at block {} is not available: this node answers state queries at the latest block ({}); read older values with trellis_getHistory",
            height.get(),
            latest.get()
        )))
    }
}

/// `(address, block?)`.
async fn address_at<E: Runtime>(
    rpc: &Rpc<E>,
    params: &Params<'_>,
) -> Result<(Address, BlockTag), ErrorObjectOwned> {
    let args = Args::parse(params, 2)?;
    let address: Address = args.required(0, "an address")?;
    let block = args.block(1)?;
    require_latest(rpc, block).await?;
    let tag = match block {
        BlockId::Tag(tag) => tag,
        BlockId::Hash(_) => BlockTag::Latest,
    };
    Ok((address, tag))
}

pub async fn balance<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, _) = address_at(&rpc, &params).await?;
    let account = rpc.chain.account(&address).map_err(internal)?;
    Ok(format::u256(account.map(|a| a.balance).unwrap_or_default()).into())
}

/// The account's nonce; at `pending`, counting its transactions in the pool.
pub async fn transaction_count<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, tag) = address_at(&rpc, &params).await?;
    let nonce = rpc
        .chain
        .account(&address)
        .map_err(internal)?
        .map_or(0, |a| a.nonce);
    let nonce = match tag {
        BlockTag::Pending => rpc.chain.mempool().pending_nonce(&address, nonce),
        _ => nonce,
    };
    Ok(format::quantity(nonce).into())
}

pub async fn code<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, _) = address_at(&rpc, &params).await?;
    Ok(rpc
        .chain
        .code(&address)
        .map_err(internal)?
        .to_string()
        .into())
}

pub async fn storage_at<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let args = Args::parse(&params, 3)?;
    let address: Address = args.required(0, "an address")?;
    let slot: U256 = args.required(1, "a storage slot (hex quantity)")?;
    let block = args.block(2)?;
    require_latest(&rpc, block).await?;
    let value = rpc.chain.storage(&address, &slot).map_err(internal)?;
    Ok(format!("{:#066x}", value).into())
}

/// `(call arguments, block?)`, checked and turned into a request.
async fn call_request<E: Runtime>(
    rpc: &Rpc<E>,
    params: &Params<'_>,
) -> Result<CallRequest, ErrorObjectOwned> {
    let args = Args::parse(params, 3)?;
    let call: CallArgs = args.required(0, "a call object")?;
    let block = args.block(1)?;
    let overrides: Option<serde_json::Value> = args.optional(2, "state overrides")?;
    if overrides.is_some() {
        return Err(invalid("state overrides are not supported"));
    }
    require_latest(rpc, block).await?;
    let genesis = rpc.chain.genesis();
    call.request(genesis.chain_id, genesis.block_gas_limit)
}

/// Runs `request` on a blocking thread: the chain's lock is held for the whole call.
async fn run<E: Runtime>(
    rpc: &Arc<Rpc<E>>,
    request: CallRequest,
) -> Result<CallOutcome, ErrorObjectOwned> {
    let rpc = rpc.clone();
    tokio::task::spawn_blocking(move || rpc.chain.call(&request))
        .await
        .map_err(internal)?
        .map(|(_, outcome)| outcome)
        .map_err(call_failed)
}

fn call_failed(error: ExecutionError) -> ErrorObjectOwned {
    match error {
        ExecutionError::State(error) => internal(error),
        // The EVM refused the call before running it (e.g. a value above the balance).
        ExecutionError::Evm(message) => rejected(message),
    }
}

/// A call that did not succeed, as the error clients expect.
fn unsuccessful(outcome: &CallOutcome) -> ErrorObjectOwned {
    match &outcome.halt_reason {
        Some(halt) if halt.starts_with("OutOfGas") => rejected("out of gas"),
        Some(halt) => rejected(format!("execution halted: {halt}")),
        None => reverted(&outcome.output, outcome.revert_reason.as_deref()),
    }
}

pub async fn call<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let request = call_request(&rpc, &params).await?;
    let outcome = run(&rpc, request).await?;
    if !outcome.success {
        return Err(unsuccessful(&outcome));
    }
    Ok(outcome.output.to_string().into())
}

/// The least gas with which the call succeeds, found by bisection between the gas it used
/// and the cap (gas refunds and the 63/64 rule make the used gas too little for some calls).
pub async fn estimate_gas<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let mut request = call_request(&rpc, &params).await?;
    let cap = request.gas.expect("call_request sets the gas");
    let outcome = run(&rpc, request.clone()).await?;
    if !outcome.success {
        return Err(match outcome.halt_reason {
            Some(ref halt) if halt.starts_with("OutOfGas") => {
                rejected(format!("gas required exceeds allowance ({cap})"))
            }
            _ => unsuccessful(&outcome),
        });
    }
    let mut low = outcome.gas_used.saturating_sub(1);
    let mut high = cap;
    // Most calls succeed with what they used plus the 1/64 kept back from subcalls.
    let guess = outcome.gas_used.saturating_mul(64) / 63;
    if guess < high {
        request.gas = Some(guess);
        if run(&rpc, request.clone()).await?.success {
            high = guess;
        } else {
            low = guess;
        }
    }
    while low + 1 < high {
        let middle = low + (high - low) / 2;
        request.gas = Some(middle);
        if run(&rpc, request.clone()).await?.success {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(format::quantity(high).into())
}
