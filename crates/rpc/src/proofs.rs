//! Trellis's own proven reads: `trellis_getProof` (QMDB proofs of an account and its slots; see
//! [`trellis_state::StateProof`]) and `trellis_getHistory` (every value an account or slot has
//! had, each proven; see [`trellis_state::History`]).

use crate::{
    error::{Answer, internal},
    params::BlockId,
    requests::{History, Proof},
    state::{header_at, not_finalized},
};
use alloy_primitives::{B256, U64};
use jsonrpsee::types::ErrorObjectOwned;
use std::sync::Arc;
use trellis_chain::Runtime;
use trellis_state::StateProof;
use trellis_types::Height;

/// Refuses a proof at `height` unless it is the latest block, the one proofs are made against.
fn latest_only(height: Height, latest: Height) -> Result<(), ErrorObjectOwned> {
    if height > latest {
        return Err(not_finalized(height, latest));
    }
    if height < latest {
        return Err(crate::error::rejected(format!(
            "proofs are made against the latest block ({}), not block {}: read older values, proven, with trellis_getHistory",
            latest.get(),
            height.get()
        )));
    }
    Ok(())
}

/// `trellis_getProof(address, [slots], block)`: QMDB proofs of an account and its slots in the
/// latest state, with the block whose state root they verify against.
pub async fn get_proof<E: Runtime>(
    rpc: Arc<crate::Rpc<E>>,
    request: Proof,
    scope: crate::access::Scope,
) -> Answer<Anchored<StateProof>> {
    scope.reads_account(&rpc.chain, request.address).await?;
    let Proof {
        address,
        slots,
        block,
    } = request;
    // The proof and its header are read together, then the block is checked against that
    // header: a block finalized in between must not be named as the one proven.
    let (header, hash, proof) = rpc.chain.prove(&address, &slots).await.map_err(internal)?;
    let height = match block {
        BlockId::Tag(tag) => tag.height(header.height),
        BlockId::Hash(named) if named == hash => header.height,
        BlockId::Hash(_) => header_at(&rpc, block).await?.height,
    };
    latest_only(height, header.height)?;
    anchored(proof, &header, &hash)
}

/// `trellis_getHistory(address, slot?, {limit}?)`: every value the account (slot `null` or
/// absent) or the storage slot has had, oldest first, each with its block, transaction and a
/// proof against the latest state root, which is returned with its block.
pub async fn get_history<E: Runtime>(
    rpc: Arc<crate::Rpc<E>>,
    request: History,
    scope: crate::access::Scope,
) -> Answer<Anchored<trellis_state::History>> {
    scope.reads_account(&rpc.chain, request.address).await?;
    let chain = &rpc.chain;
    let History {
        address,
        slot,
        limit,
    } = request;
    let (header, hash, mut history) = chain
        .history(&address, slot, limit)
        .await
        .map_err(internal)?;
    for entry in &mut history.entries {
        let Some(index) = entry.transaction_index else {
            continue;
        };
        let height = Height(entry.block_number.to());
        let (_, receipt) = written_by(chain, height, index.to()).await?;
        entry.transaction_hash = Some(receipt.tx_hash);
    }
    anchored(history, &header, &hash)
}

/// The block at `height` and the receipt of its transaction `index`, which a history entry
/// names as the write's.
pub(crate) async fn written_by<E: Runtime>(
    chain: &trellis_chain::Chain<E>,
    height: Height,
    index: usize,
) -> Result<(trellis_chain::StoredBlock, trellis_chain::ReceiptRecord), ErrorObjectOwned> {
    let mut stored = chain
        .block(height)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal(format!("block {height} of the history is not stored")))?;
    if index >= stored.receipts.len() {
        return Err(internal(format!(
            "block {height} has no transaction {index} that the history names"
        )));
    }
    let receipt = stored.receipts.swap_remove(index);
    Ok((stored, receipt))
}

/// A proven answer with the block it was proven against: its number, hash and state root,
/// which a verifier checks against a header it trusts.
#[derive(Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchored<T> {
    #[serde(flatten)]
    proven: T,
    block_number: U64,
    block_hash: B256,
    state_root: B256,
}

fn anchored<T>(
    proven: T,
    header: &trellis_types::Header,
    hash: &trellis_types::BlockHash,
) -> Answer<Anchored<T>> {
    Ok(Anchored {
        proven,
        block_number: U64::from(header.height.get()),
        block_hash: hash.0,
        state_root: header.state_root.0,
    })
}
