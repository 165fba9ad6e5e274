//! Reading the state: balances, nonces, code, storage, read-only calls and gas estimates, at
//! any finalized block (the latest directly, earlier ones through the state's history index).

use crate::{
    Rpc,
    blocks::committed,
    error::{Reply, internal, invalid, rejected, reverted},
    format,
    params::{Args, BlockId, BlockTag, CallArgs},
};
use alloy_primitives::{Address, U256};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use std::sync::Arc;
use trellis_chain::Runtime;
use trellis_execution::{CallOutcome, CallRequest, ExecutionError, HaltReason};
use trellis_state::StateError;
use trellis_types::{Header, Height};

/// The header of the finalized block `block` names, whose state a query reads.
pub async fn header_at<E: Runtime>(
    rpc: &Rpc<E>,
    block: BlockId,
) -> Result<Header, ErrorObjectOwned> {
    let (latest, _) = rpc.chain.latest();
    let stored = match block {
        BlockId::Tag(tag) => {
            let height = tag.height(latest.height);
            if height == latest.height {
                return Ok(latest);
            }
            if height > latest.height {
                return Err(not_finalized(height, latest.height));
            }
            rpc.chain.block(height).await
        }
        BlockId::Hash(hash) => rpc.chain.block_by_hash(&hash).await,
    }
    .map_err(internal)?;
    let stored = committed(rpc, stored).ok_or_else(|| match block {
        BlockId::Hash(hash) => rejected(format!("block {hash} not found")),
        BlockId::Tag(_) => internal("a finalized block is not stored"),
    })?;
    Ok(stored.block.header().clone())
}

/// A state read's failure: history pruned away is the client's to know; the rest is internal.
fn state_failed(error: StateError) -> ErrorObjectOwned {
    match error {
        StateError::NotRetained { .. } => rejected(error.to_string()),
        other => internal(other),
    }
}

/// The error for a block above the latest finalized one.
pub fn not_finalized(height: Height, latest: Height) -> ErrorObjectOwned {
    rejected(format!(
        "block {} is not finalized yet (latest is {})",
        height.get(),
        latest.get()
    ))
}

/// `(address, block?)`: the address, the height whose state to read, and whether the block
/// was `pending`.
async fn address_at<E: Runtime>(
    rpc: &Rpc<E>,
    params: &Params<'_>,
) -> Result<(Address, Height, bool), ErrorObjectOwned> {
    let args = Args::parse(params, 2)?;
    let address: Address = args.required(0, "an address")?;
    let block = args.block(1)?;
    let height = header_at(rpc, block).await?.height;
    Ok((address, height, block == BlockId::Tag(BlockTag::Pending)))
}

pub async fn balance<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, height, _) = address_at(&rpc, &params).await?;
    let account = rpc
        .chain
        .account_at(&address, height)
        .await
        .map_err(state_failed)?;
    Ok(format::u256(account.map(|a| a.balance).unwrap_or_default()).into())
}

/// The account's nonce; at `pending`, counting its transactions in the pool.
pub async fn transaction_count<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, height, pending) = address_at(&rpc, &params).await?;
    let nonce = match pending {
        true => rpc.chain.pending_nonce(&address).await,
        false => rpc
            .chain
            .account_at(&address, height)
            .await
            .map(|account| account.map_or(0, |a| a.nonce)),
    };
    Ok(format::quantity(nonce.map_err(state_failed)?).into())
}

pub async fn code<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (address, height, _) = address_at(&rpc, &params).await?;
    let code = rpc
        .chain
        .code_at(&address, height)
        .await
        .map_err(state_failed)?;
    Ok(code.to_string().into())
}

pub async fn storage_at<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let args = Args::parse(&params, 3)?;
    let address: Address = args.required(0, "an address")?;
    let slot: U256 = args.required(1, "a storage slot (hex quantity)")?;
    let height = header_at(&rpc, args.block(2)?).await?.height;
    let value = rpc
        .chain
        .storage_at(&address, &slot, height)
        .await
        .map_err(state_failed)?;
    Ok(format!("{:#066x}", value).into())
}

/// `(call arguments, block?)`, checked and turned into a request, with the header of the
/// block whose state it runs on.
async fn call_request<E: Runtime>(
    rpc: &Rpc<E>,
    params: &Params<'_>,
) -> Result<(CallRequest, Header), ErrorObjectOwned> {
    let args = Args::parse(params, 3)?;
    let call: CallArgs = args.required(0, "a call object")?;
    let block = args.block(1)?;
    let overrides: Option<serde_json::Value> = args.optional(2, "state overrides")?;
    if overrides.is_some() {
        return Err(invalid("state overrides are not supported"));
    }
    let header = header_at(rpc, block).await?;
    let genesis = rpc.chain.genesis();
    Ok((
        call.request(genesis.chain_id, genesis.block_gas_limit)?,
        header,
    ))
}

/// Runs `request` on the state after `header`'s block (on the state's owner).
async fn run<E: Runtime>(
    rpc: &Arc<Rpc<E>>,
    request: CallRequest,
    header: &Header,
) -> Result<CallOutcome, ErrorObjectOwned> {
    rpc.chain
        .call_at(request, header.clone())
        .await
        .map_err(call_failed)
}

fn call_failed(error: ExecutionError) -> ErrorObjectOwned {
    match error {
        ExecutionError::State(error) => state_failed(error),
        // The EVM refused the call before running it (e.g. a value above the balance).
        invalid @ ExecutionError::InvalidCall(_) => rejected(invalid.to_string()),
        ExecutionError::Evm(error) => internal(error),
    }
}

/// A call that did not succeed, as the error clients expect.
fn unsuccessful(outcome: &CallOutcome) -> ErrorObjectOwned {
    match &outcome.halt_reason {
        Some(HaltReason::OutOfGas(_)) => rejected("out of gas"),
        Some(halt) => rejected(format!("execution halted: {halt:?}")),
        None => reverted(&outcome.output, outcome.revert_reason.as_deref()),
    }
}

pub async fn call<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (request, header) = call_request(&rpc, &params).await?;
    let outcome = run(&rpc, request, &header).await?;
    if !outcome.success {
        return Err(unsuccessful(&outcome));
    }
    Ok(outcome.output.to_string().into())
}

/// The least gas with which the call succeeds, found by bisection between the gas it used
/// and the cap (gas refunds and the 63/64 rule make the used gas too little for some calls).
pub async fn estimate_gas<E: Runtime>(rpc: Arc<Rpc<E>>, params: Params<'static>) -> Reply {
    let (mut request, header) = call_request(&rpc, &params).await?;
    let cap = request.gas.expect("call_request sets the gas");
    let outcome = run(&rpc, request.clone(), &header).await?;
    if !outcome.success {
        return Err(match outcome.halt_reason {
            Some(HaltReason::OutOfGas(_)) => {
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
        if run(&rpc, request.clone(), &header).await?.success {
            high = guess;
        } else {
            low = guess;
        }
    }
    while low + 1 < high {
        let middle = low + (high - low) / 2;
        request.gas = Some(middle);
        if run(&rpc, request.clone(), &header).await?.success {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(format::quantity(high).into())
}
