//! The Ethereum JSON-RPC API, over HTTP, answered from one node's [`Chain`].
//!
//! Served with jsonrpsee (the server reth uses): one port answers HTTP now and can answer
//! WebSocket subscriptions later, batches and limits come with it, and errors are JSON-RPC
//! error objects with the codes Ethereum tools expect.
//!
//! # Methods
//! `eth_chainId`, `net_version`, `eth_blockNumber`, `eth_getBalance`,
//! `eth_getTransactionCount` (`pending` counts the pool), `eth_gasPrice`,
//! `eth_sendRawTransaction`, `eth_getTransactionReceipt`, `eth_getBlockByNumber`, and
//! `trellis_getProof` (QMDB proofs of an account and its slots; see [`trellis_state::StateProof`])
//! and `trellis_getHistory` (every value an account or slot has had, each proven; see
//! [`trellis_state::History`]).
//!
//! # Conventions
//! - Quantities are `0x`-prefixed hex without leading zeros; data is `0x`-prefixed hex.
//! - Blocks are final when they appear: `latest`, `safe` and `finalized` are the same block.
//!   `pending` means the latest block, except for nonces, where it counts pooled transactions.
//! - State is kept for the latest block only (until durable state with history lands): a
//!   balance or nonce asked at an older block is refused with a clear error.
//! - A rejected transaction gets code -32000 and the message Ethereum clients recognise
//!   (`nonce too low`, `insufficient funds for gas * price + value`, ...); unparsable
//!   parameters get -32602.

mod format;

use alloy_primitives::{Address, B256, Bytes};
use jsonrpsee::{
    RpcModule,
    server::{Server, ServerConfig, ServerHandle},
    types::{ErrorObjectOwned, Params},
};
use serde_json::Value;
use std::{net::SocketAddr, sync::Arc};
use trellis_chain::Chain;
use trellis_chain::Runtime;
use trellis_types::Height;

/// Error codes.
pub mod code {
    /// The request's parameters could not be understood.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The node failed internally (storage).
    pub const INTERNAL: i32 = -32603;
    /// The request was understood but refused (a transaction the pool rejects, a state that is
    /// not available).
    pub const REJECTED: i32 = -32000;
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot listen for JSON-RPC on {addr}: {source} (is another node using that port?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running server; it stops when this is dropped or [`RpcServer::stop`] is called.
pub struct RpcServer {
    handle: ServerHandle,
    addr: SocketAddr,
}

impl RpcServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(&self) {
        let _ = self.handle.stop();
    }

    /// Resolves when the server has stopped.
    pub async fn stopped(self) {
        self.handle.stopped().await
    }
}

/// Largest request body: a batch of transactions of the pool's maximum size.
const MAX_REQUEST_BYTES: u32 = 16 << 20;

/// Serves `chain` on `addr`. Must run inside a tokio runtime.
pub async fn serve<E>(addr: SocketAddr, chain: Chain<E>) -> Result<RpcServer, RpcError>
where
    E: Runtime,
{
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .build();
    let server = Server::builder()
        .set_config(config)
        .build(addr)
        .await
        .map_err(|source| RpcError::Bind { addr, source })?;
    let bound = server
        .local_addr()
        .map_err(|source| RpcError::Bind { addr, source })?;
    let handle = server.start(methods(chain));
    tracing::info!(addr = %bound, "JSON-RPC listening");
    Ok(RpcServer {
        handle,
        addr: bound,
    })
}

type Reply = Result<Value, ErrorObjectOwned>;

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::INVALID_PARAMS, message, None::<()>)
}

fn rejected(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::REJECTED, message, None::<()>)
}

fn internal(error: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::INTERNAL, error.to_string(), None::<()>)
}

/// A block parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockTag {
    Latest,
    Pending,
    Earliest,
    Number(Height),
}

fn parse_tag(tag: Option<&str>) -> Result<BlockTag, ErrorObjectOwned> {
    match tag {
        None | Some("latest" | "safe" | "finalized") => Ok(BlockTag::Latest),
        Some("pending") => Ok(BlockTag::Pending),
        Some("earliest") => Ok(BlockTag::Earliest),
        Some(text) => text
            .strip_prefix("0x")
            .and_then(|digits| u64::from_str_radix(digits, 16).ok())
            .map(|n| BlockTag::Number(Height(n)))
            .ok_or_else(|| {
                invalid(format!(
                    "invalid block tag {text:?}: use latest, pending, safe, finalized, earliest or a 0x-prefixed hex number"
                ))
            }),
    }
}

/// Reads `(value, optional block tag)` parameters.
fn value_and_tag<T: serde::de::DeserializeOwned>(
    params: &Params<'_>,
    what: &str,
) -> Result<(T, BlockTag), ErrorObjectOwned> {
    let mut seq = params.sequence();
    let value: T = seq
        .next()
        .map_err(|e| invalid(format!("expected {what} as the first parameter: {e}")))?;
    let tag: Option<String> = seq
        .optional_next()
        .map_err(|e| invalid(format!("expected a block tag as the second parameter: {e}")))?;
    Ok((value, parse_tag(tag.as_deref())?))
}

/// Refuses a state query at a block other than the latest.
fn latest_state_only<E: Runtime>(chain: &Chain<E>, tag: BlockTag) -> Result<(), ErrorObjectOwned> {
    require_latest(tag, chain.latest().0.height)
}

/// Refuses `tag` unless it names `latest`, the height of the latest finalized state.
fn require_latest(tag: BlockTag, latest: Height) -> Result<(), ErrorObjectOwned> {
    match tag {
        BlockTag::Latest | BlockTag::Pending => Ok(()),
        BlockTag::Number(h) if h == latest => Ok(()),
        BlockTag::Number(h) if h > latest => Err(rejected(format!(
            "block {} is not finalized yet (latest is {})",
            h.get(),
            latest.get()
        ))),
        _ => Err(rejected(format!(
            "state at older blocks is not available: this node keeps the latest state (block {}) only",
            latest.get()
        ))),
    }
}

/// Most storage slots one `trellis_getProof` call proves.
const MAX_PROOF_SLOTS: usize = 1_024;

/// `trellis_getProof(address, [slots], block)`: QMDB proofs of an account and its slots in the
/// latest state, with the block whose state root they verify against.
fn get_proof<E: Runtime>(params: &Params<'_>, chain: &Chain<E>) -> Reply {
    let mut seq = params.sequence();
    let address: Address = seq
        .next()
        .map_err(|e| invalid(format!("expected an address as the first parameter: {e}")))?;
    let slots: Vec<trellis_types::U256> = seq.next().map_err(|e| {
        invalid(format!(
            "expected an array of storage slots (hex) as the second parameter: {e}"
        ))
    })?;
    let tag: Option<String> = seq
        .optional_next()
        .map_err(|e| invalid(format!("expected a block tag as the third parameter: {e}")))?;
    let tag = parse_tag(tag.as_deref())?;
    if slots.len() > MAX_PROOF_SLOTS {
        return Err(invalid(format!(
            "{} storage slots asked: at most {MAX_PROOF_SLOTS} per call",
            slots.len()
        )));
    }
    // The proof and its header are read together, then the tag is checked against that header.
    let (header, hash, proof) = chain.prove(&address, &slots).map_err(internal)?;
    require_latest(tag, header.height)?;
    anchored(&proof, &header, &hash)
}

/// Most writes one `trellis_getHistory` call returns (the newest; `truncated` says if older
/// ones exist), and the default.
const MAX_HISTORY_ENTRIES: usize = 1_000;
const DEFAULT_HISTORY_ENTRIES: usize = 100;

/// The options of `trellis_getHistory`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryOptions {
    limit: Option<usize>,
}

/// `trellis_getHistory(address, slot?, {limit}?)`: every value the account (slot `null` or
/// absent) or the storage slot has had, oldest first, each with its block, transaction and a
/// proof against the latest state root, which is returned with its block.
async fn get_history<E: Runtime>(params: Params<'static>, chain: Arc<Chain<E>>) -> Reply {
    let mut seq = params.sequence();
    let address: Address = seq
        .next()
        .map_err(|e| invalid(format!("expected an address as the first parameter: {e}")))?;
    let slot: Option<trellis_types::U256> = seq.optional_next().map_err(|e| {
        invalid(format!(
            "expected a storage slot (hex) or null as the second parameter: {e}"
        ))
    })?;
    let options: Option<HistoryOptions> = seq.optional_next().map_err(|e| {
        invalid(format!(
            "expected {{\"limit\": N}} as the third parameter: {e}"
        ))
    })?;
    let limit = options
        .and_then(|o| o.limit)
        .unwrap_or(DEFAULT_HISTORY_ENTRIES);
    if limit == 0 || limit > MAX_HISTORY_ENTRIES {
        return Err(invalid(format!(
            "limit {limit} is out of range: ask for 1 to {MAX_HISTORY_ENTRIES} entries"
        )));
    }
    let (header, hash, mut history) = chain.history(&address, slot, limit).map_err(internal)?;
    for entry in &mut history.entries {
        let Some(index) = entry.transaction_index else {
            continue;
        };
        let height = Height(entry.block_number.to());
        let stored = chain
            .store()
            .block(height)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal(format!("block {height} of the history is not stored")))?;
        let receipt = stored.receipts.get(index.to::<usize>()).ok_or_else(|| {
            internal(format!(
                "block {height} has no transaction {index} that the history names"
            ))
        })?;
        entry.transaction_hash = Some(receipt.tx_hash);
    }
    anchored(&history, &header, &hash)
}

/// `value` (a JSON object) with the block it was proven against: its number, hash and state
/// root, which a verifier checks against a header it trusts.
fn anchored(
    value: &impl serde::Serialize,
    header: &trellis_types::Header,
    hash: &trellis_types::BlockHash,
) -> Reply {
    let mut result = serde_json::to_value(value).map_err(internal)?;
    let fields = result
        .as_object_mut()
        .ok_or_else(|| internal("a proven answer is not a JSON object"))?;
    fields.insert(
        "blockNumber".into(),
        format::quantity(header.height.get()).into(),
    );
    fields.insert(
        "blockHash".into(),
        serde_json::to_value(hash.0).map_err(internal)?,
    );
    fields.insert(
        "stateRoot".into(),
        serde_json::to_value(header.state_root.0).map_err(internal)?,
    );
    Ok(result)
}

fn methods<E: Runtime>(chain: Chain<E>) -> RpcModule<Chain<E>> {
    let mut module = RpcModule::new(chain);
    let register = "method names are unique";
    module
        .register_method("trellis_getProof", |params, chain, _| {
            get_proof(&params, chain)
        })
        .expect(register);
    module
        .register_async_method("trellis_getHistory", |params, chain, _| {
            get_history(params, chain)
        })
        .expect(register);
    module
        .register_method("eth_chainId", |_, chain, _| -> Reply {
            Ok(format::quantity(chain.genesis().chain_id).into())
        })
        .expect(register);
    module
        .register_method("net_version", |_, chain, _| -> Reply {
            Ok(chain.genesis().chain_id.to_string().into())
        })
        .expect(register);
    module
        .register_method("eth_blockNumber", |_, chain, _| -> Reply {
            Ok(format::quantity(chain.latest().0.height.get()).into())
        })
        .expect(register);
    module
        .register_method("eth_gasPrice", |_, chain, _| -> Reply {
            Ok(format::quantity(chain.genesis().gas_price).into())
        })
        .expect(register);
    module
        .register_method("eth_getBalance", |params, chain, _| -> Reply {
            let (address, tag) = value_and_tag::<Address>(&params, "an address")?;
            latest_state_only(chain, tag)?;
            let account = chain.account(&address).map_err(internal)?;
            Ok(format::u256(account.map(|a| a.balance).unwrap_or_default()).into())
        })
        .expect(register);
    module
        .register_method("eth_getTransactionCount", |params, chain, _| -> Reply {
            let (address, tag) = value_and_tag::<Address>(&params, "an address")?;
            latest_state_only(chain, tag)?;
            let nonce = chain
                .account(&address)
                .map_err(internal)?
                .map_or(0, |a| a.nonce);
            let nonce = match tag {
                BlockTag::Pending => chain.mempool().pending_nonce(&address, nonce),
                _ => nonce,
            };
            Ok(format::quantity(nonce).into())
        })
        .expect(register);
    module
        .register_blocking_method("eth_sendRawTransaction", |params, chain, _| -> Reply {
            let raw: Bytes = params.one().map_err(|e| {
                invalid(format!(
                    "expected the signed transaction as one 0x-prefixed hex string: {e}"
                ))
            })?;
            let hash = chain
                .submit(raw)
                .map_err(|error| rejected(error.to_string()))?;
            Ok(format!("{hash:#x}").into())
        })
        .expect(register);
    module
        .register_async_method("eth_getTransactionReceipt", |params, chain, _| async move {
            let hash: B256 = params
                .one()
                .map_err(|e| invalid(format!("expected a transaction hash: {e}")))?;
            receipt(&chain, hash).await
        })
        .expect(register);
    module
        .register_async_method("eth_getBlockByNumber", |params, chain, _| async move {
            let mut seq = params.sequence();
            let tag: String = seq
                .next()
                .map_err(|e| invalid(format!("expected a block number or tag: {e}")))?;
            let full: Option<bool> = seq.optional_next().map_err(|e| {
                invalid(format!(
                    "expected true (full transactions) or false (hashes): {e}"
                ))
            })?;
            block_by_number(&chain, parse_tag(Some(&tag))?, full.unwrap_or(false)).await
        })
        .expect(register);
    module
}

async fn receipt<E: Runtime>(chain: &Arc<Chain<E>>, hash: B256) -> Reply {
    let store = chain.store();
    let Some(location) = store.transaction(&hash).await.map_err(internal)? else {
        return Ok(Value::Null);
    };
    let stored = store
        .block(location.height)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal(format!("indexed block {} is missing", location.height)))?;
    Ok(format::receipt(&stored, location.index as usize))
}

async fn block_by_number<E: Runtime>(chain: &Arc<Chain<E>>, tag: BlockTag, full: bool) -> Reply {
    let height = match tag {
        BlockTag::Latest | BlockTag::Pending => chain.latest().0.height,
        BlockTag::Earliest => Height::GENESIS,
        BlockTag::Number(h) => h,
    };
    let stored = chain.store().block(height).await.map_err(internal)?;
    Ok(stored.map_or(Value::Null, |stored| {
        format::block(&stored, chain.genesis().gas_price, full)
    }))
}
