//! Blocks, transactions and receipts, read from the block store (and the pool, for pending
//! transactions).

use crate::{
    Rpc,
    error::{Answer, Reply, internal},
    format::{self, RpcBlock, RpcReceipt, RpcTransaction},
    params::{Args, BlockId, parse_tag},
};
use alloy_primitives::{B256, U64};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;
use std::sync::Arc;
use trellis_chain::{Runtime, StoredBlock};

/// The stored block `id` names, if any, once its state is committed.
pub async fn stored<E: Runtime>(
    rpc: &Rpc<E>,
    id: BlockId,
) -> Result<Option<StoredBlock>, ErrorObjectOwned> {
    let chain = &rpc.chain;
    let block = match id {
        BlockId::Tag(tag) => chain.block(tag.height(chain.latest().0.height)).await,
        BlockId::Hash(hash) => chain.block_by_hash(&hash).await,
    };
    Ok(committed(rpc, block.map_err(internal)?))
}

/// `stored` if its state is committed. A finalized block is stored before its state is
/// committed (so a crash between the two replays it); until then it is not shown, so that a
/// client that sees a receipt also sees the state after it (its nonce, its balances).
pub fn committed<E: Runtime>(rpc: &Rpc<E>, stored: Option<StoredBlock>) -> Option<StoredBlock> {
    stored.filter(|stored| stored.block.height() <= rpc.chain.latest().0.height)
}

/// A block by number or tag (`by_hash` false) or by hash (true), from the first parameter.
async fn block_param<E: Runtime>(
    rpc: &Rpc<E>,
    args: &Args,
    by_hash: bool,
) -> Result<Option<StoredBlock>, ErrorObjectOwned> {
    let id = if by_hash {
        let hash: B256 = args.required(0, "a block hash")?;
        BlockId::Hash(trellis_types::BlockHash(hash))
    } else {
        let tag: String = args.required(0, "a block number or tag")?;
        BlockId::Tag(parse_tag(Some(&tag))?)
    };
    stored(rpc, id).await
}

/// `eth_getBlockByNumber` / `eth_getBlockByHash`: `(block, full transactions?)`.
pub async fn block<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
    by_hash: bool,
) -> Answer<Option<RpcBlock>> {
    let args = Args::parse(&params, 2)?;
    let full: Option<bool> = args.optional(1, "true (full transactions) or false (hashes)")?;
    let block = block_param(&rpc, &args, by_hash).await?;
    Ok(block.map(|stored| {
        format::block(
            &stored,
            rpc.chain.genesis().gas_price,
            full.unwrap_or(false),
        )
    }))
}

/// `eth_getBlockTransactionCountByNumber` / `…ByHash`.
pub async fn transaction_count<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
    by_hash: bool,
) -> Reply {
    let block = block_param(&rpc, &Args::parse(&params, 1)?, by_hash).await?;
    Ok(block.map_or(Value::Null, |stored| {
        format::quantity(stored.block.transactions().len() as u64).into()
    }))
}

/// `eth_getTransactionByBlockNumberAndIndex` / `…HashAndIndex`.
pub async fn transaction_by_index<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
    by_hash: bool,
) -> Answer<Option<RpcTransaction>> {
    let args = Args::parse(&params, 2)?;
    let index: U64 = args.required(1, "a transaction index (hex)")?;
    let block = block_param(&rpc, &args, by_hash).await?;
    let Some(stored) = block else {
        return Ok(None);
    };
    let index = index.to::<u64>() as usize;
    if index >= stored.receipts.len() {
        return Ok(None);
    }
    Ok(Some(format::transaction(&stored, index)))
}

/// `eth_getTransactionByHash`: from the block store, or the pool while pending.
pub async fn transaction_by_hash<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
) -> Answer<Option<RpcTransaction>> {
    let hash: B256 = Args::parse(&params, 1)?.required(0, "a transaction hash")?;
    if let Some((stored, index)) = located(&rpc, hash).await? {
        return Ok(Some(format::transaction(&stored, index)));
    }
    let pending = rpc.chain.pending_transaction(&hash);
    Ok(pending.map(|tx| format::pending_transaction(&tx)))
}

/// The block holding transaction `hash` and its index there.
async fn located<E: Runtime>(
    rpc: &Rpc<E>,
    hash: B256,
) -> Result<Option<(StoredBlock, usize)>, ErrorObjectOwned> {
    let chain = &rpc.chain;
    let Some(location) = chain.transaction_location(&hash).await.map_err(internal)? else {
        return Ok(None);
    };
    let stored = chain
        .block(location.height)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal(format!("indexed block {} is missing", location.height)))?;
    Ok(committed(rpc, Some(stored)).map(|stored| (stored, location.index as usize)))
}

pub async fn receipt<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
) -> Answer<Option<RpcReceipt>> {
    let hash: B256 = Args::parse(&params, 1)?.required(0, "a transaction hash")?;
    let located = located(&rpc, hash).await?;
    Ok(located.map(|(stored, index)| format::receipt(&stored, index)))
}

/// `eth_getBlockReceipts(block)`: every receipt of a block, in order.
pub async fn block_receipts<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    params: Params<'static>,
) -> Answer<Option<Vec<RpcReceipt>>> {
    let id = Args::parse(&params, 1)?.block(0)?;
    let block = stored(&rpc, id).await?;
    Ok(block.map(|stored| {
        (0..stored.receipts.len())
            .map(|index| format::receipt(&stored, index))
            .collect()
    }))
}
