//! Reading the state: balances, nonces, code, storage, read-only calls and gas estimates, at
//! any finalized block (the latest directly, earlier ones through the state's history index).

use crate::{
    Rpc,
    access::Scope,
    blocks::committed,
    error::{Answer, internal, rejected, reverted},
    params::{BlockId, BlockTag},
    requests::{AccountAt, CallAt, SlotAt},
};
use alloy_primitives::{B256, Bytes, U64, U256};
use jsonrpsee::types::ErrorObjectOwned;
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

/// The height whose state an account query reads, and whether it named `pending`.
async fn height_of<E: Runtime>(
    rpc: &Rpc<E>,
    block: BlockId,
) -> Result<(Height, bool), ErrorObjectOwned> {
    let height = header_at(rpc, block).await?.height;
    Ok((height, block == BlockId::Tag(BlockTag::Pending)))
}

pub async fn balance<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    request: AccountAt,
    scope: Scope,
) -> Answer<U256> {
    scope.reads_account(&rpc.chain, request.address).await?;
    let (height, _) = height_of(&rpc, request.block).await?;
    let account = rpc
        .chain
        .account_at(&request.address, height)
        .await
        .map_err(state_failed)?;
    Ok(account.map(|a| a.balance).unwrap_or_default())
}

/// The account's nonce; at `pending`, counting its transactions in the pool.
pub async fn transaction_count<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    request: AccountAt,
    scope: Scope,
) -> Answer<U64> {
    scope.reads_account(&rpc.chain, request.address).await?;
    let (height, pending) = height_of(&rpc, request.block).await?;
    let address = &request.address;
    let nonce = match pending {
        true => rpc.chain.pending_nonce(address).await,
        false => rpc
            .chain
            .account_at(address, height)
            .await
            .map(|account| account.map_or(0, |a| a.nonce)),
    };
    Ok(U64::from(nonce.map_err(state_failed)?))
}

pub async fn code<E: Runtime>(rpc: Arc<Rpc<E>>, request: AccountAt) -> Answer<Bytes> {
    let (height, _) = height_of(&rpc, request.block).await?;
    rpc.chain
        .code_at(&request.address, height)
        .await
        .map_err(state_failed)
}

/// A slot's value as the 32-byte word clients expect.
pub async fn storage_at<E: Runtime>(rpc: Arc<Rpc<E>>, request: SlotAt) -> Answer<B256> {
    let height = header_at(&rpc, request.block).await?.height;
    let value = rpc
        .chain
        .storage_at(&request.address, &request.slot, height)
        .await
        .map_err(state_failed)?;
    Ok(B256::from(value))
}

/// The call as a request to execute, with the header of the block whose state it runs on.
async fn call_request<E: Runtime>(
    rpc: &Rpc<E>,
    request: &CallAt,
) -> Result<(CallRequest, Header), ErrorObjectOwned> {
    let header = header_at(rpc, request.block).await?;
    let chain_id = rpc.chain.genesis().chain_id;
    let gas_limit = rpc
        .chain
        .params_for(header.height.next())
        .await
        .block_gas_limit;
    Ok((request.call.request(chain_id, gas_limit)?, header))
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
        // Calls do not consult the registry; a transaction's execution does.
        ExecutionError::Registry(error) => internal(error),
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

pub async fn call<E: Runtime>(rpc: Arc<Rpc<E>>, request: CallAt) -> Answer<Bytes> {
    let (request, header) = call_request(&rpc, &request).await?;
    let outcome = run(&rpc, request, &header).await?;
    if !outcome.success {
        return Err(unsuccessful(&outcome));
    }
    Ok(outcome.output)
}

/// The least gas with which the call succeeds, found by bisection between the gas it used
/// and the cap (gas refunds and the 63/64 rule make the used gas too little for some calls).
pub async fn estimate_gas<E: Runtime>(rpc: Arc<Rpc<E>>, request: CallAt) -> Answer<U64> {
    let (mut request, header) = call_request(&rpc, &request).await?;
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
    Ok(U64::from(high))
}
