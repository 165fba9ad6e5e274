//! Blocks, transactions and receipts, read from the block store (and the pool, for pending
//! transactions).

use crate::{
    Rpc,
    access::Scope,
    error::{Answer, internal},
    format::{self, RpcBlock, RpcReceipt, RpcTransaction},
    params::BlockId,
    requests::{AnyBlock, GetBlock, TransactionAt, TxHash},
};
use alloy_primitives::{B256, U64};
use jsonrpsee::types::ErrorObjectOwned;
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

/// `eth_getBlockByNumber` / `eth_getBlockByHash`.
pub async fn block<E: Runtime>(rpc: Arc<Rpc<E>>, request: GetBlock) -> Answer<Option<RpcBlock>> {
    let Some(block) = stored(&rpc, request.block).await? else {
        return Ok(None);
    };
    let base_fee = rpc
        .chain
        .params_for(block.block.height())
        .await
        .base_fee_per_gas;
    Ok(Some(format::block(&block, base_fee, request.full)))
}

/// `eth_getBlockTransactionCountByNumber` / `…ByHash`.
pub async fn transaction_count<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    block: BlockId,
) -> Answer<Option<U64>> {
    let block = stored(&rpc, block).await?;
    Ok(block.map(|stored| U64::from(stored.block.transactions().len())))
}

/// `eth_getTransactionByBlockNumberAndIndex` / `…HashAndIndex`.
pub async fn transaction_by_index<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    at: TransactionAt,
    scope: Scope,
) -> Answer<Option<RpcTransaction>> {
    let Some(stored) = stored(&rpc, at.block).await? else {
        return Ok(None);
    };
    let index = usize::try_from(at.index).unwrap_or(usize::MAX);
    if index >= stored.receipts.len() {
        return Ok(None);
    }
    visible(&rpc, format::transaction(&stored, index), scope)
        .await
        .map(Some)
}

/// `tx`, if the caller's `scope` holds it.
async fn visible<E: Runtime>(
    rpc: &Rpc<E>,
    tx: RpcTransaction,
    scope: Scope,
) -> Answer<RpcTransaction> {
    use alloy_consensus::Transaction as _;
    if scope.sees(&rpc.chain, tx.inner.signer(), tx.to()).await? {
        Ok(tx)
    } else {
        Err(scope.refusal(*tx.inner.tx_hash()))
    }
}

/// `eth_getTransactionByHash`: from the block store, or the pool while pending.
pub async fn transaction_by_hash<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    TxHash(hash): TxHash,
    scope: Scope,
) -> Answer<Option<RpcTransaction>> {
    if let Some((stored, index)) = located(&rpc, hash).await? {
        return visible(&rpc, format::transaction(&stored, index), scope)
            .await
            .map(Some);
    }
    match rpc.chain.pending_transaction(&hash) {
        Some(tx) => visible(&rpc, format::pending_transaction(&tx), scope)
            .await
            .map(Some),
        None => Ok(None),
    }
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
    TxHash(hash): TxHash,
    scope: Scope,
) -> Answer<Option<RpcReceipt>> {
    let Some((stored, index)) = located(&rpc, hash).await? else {
        return Ok(None);
    };
    let receipt = format::receipt(&stored, index);
    if !scope.sees(&rpc.chain, receipt.from, receipt.to).await? {
        return Err(scope.refusal(hash));
    }
    Ok(Some(receipt))
}

/// `eth_getBlockReceipts(block)`: every receipt of a block, in order.
pub async fn block_receipts<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    AnyBlock(block): AnyBlock,
) -> Answer<Option<Vec<RpcReceipt>>> {
    let block = stored(&rpc, block).await?;
    Ok(block.map(|stored| {
        (0..stored.receipts.len())
            .map(|index| format::receipt(&stored, index))
            .collect()
    }))
}
