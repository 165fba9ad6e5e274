//! The Ethereum JSON-RPC API, over HTTP and WebSocket on one address, answered from one node's
//! [`Chain`].
//!
//! Served with jsonrpsee (the server reth uses): one port answers HTTP requests and WebSocket
//! connections (as Anvil and Hardhat do), batches and limits come with it, and errors are
//! JSON-RPC error objects with the codes Ethereum tools expect.
//!
//! # Methods
//! - Node and chain: `web3_clientVersion`, `web3_sha3`, `net_version`, `net_listening`,
//!   `net_peerCount`, `eth_chainId`, `eth_syncing`, `eth_blockNumber`, `eth_accounts`,
//!   `eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_feeHistory` ([`info`]).
//! - State: `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`, `eth_getStorageAt`,
//!   `eth_call`, `eth_estimateGas` ([`state`]).
//! - Transactions: `eth_sendRawTransaction`.
//! - Blocks, transactions, receipts ([`blocks`]).
//! - Logs: `eth_getLogs`, polled filters ([`filters`]) and, over WebSocket, `eth_subscribe` to
//!   `newHeads`, `logs` and `newPendingTransactions` ([`pubsub`]).
//! - `trellis_getProof` and `trellis_getHistory`: proven reads ([`proofs`]).
//! - `trellis_keyActivity`: what a key is on chain and what it signed ([`keys`]).
//! - `trellis_alarms`: the alarms the node's risk rules raised, with their evidence
//!   ([`alarms`]).
//! - `trellis_getEvidence`: validators' conflicting signed votes, checkable offline
//!   ([`evidence`]).
//!
//! # Conventions
//! - Quantities are `0x`-prefixed hex without leading zeros; data is `0x`-prefixed hex.
//! - Blocks are final when they appear: `latest`, `safe` and `finalized` are the same block.
//!   `pending` means the latest block, except for nonces, where it counts pooled transactions.
//! - State is answered at any finalized block: the latest directly, older ones through the
//!   state's history index (unproven; `trellis_getHistory` lists a key's writes with proofs).
//!   A block whose history was pruned (a node keeping recent history only) or not committed yet
//!   is refused with a clear error.
//! - Error codes: see [`error::code`]. A rejected transaction gets -32000 and the message
//!   Ethereum clients recognise (`nonce too low`, `insufficient funds for gas * price + value`,
//!   `already known`, ...). A full pool answers -32005 (`txpool is full`) with
//!   `{"retryAfterMs": …}` as data: backpressure, the transaction may be sent again.

pub mod access;
pub mod alarms;
mod batch;
mod blocks;
pub mod certificates;
pub mod error;
pub mod evidence;
mod filters;
mod format;
mod info;
mod keys;
mod log_filter;
mod logs;
mod metrics;
mod params;
mod proofs;
mod pubsub;
mod requests;
mod state;
pub mod tls;
mod transport;

pub use error::code;
pub use metrics::RpcMetrics;

use alloy_primitives::{Address, TxHash, U64, keccak256};
use error::Answer;
use jsonrpsee::{
    RpcModule,
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle},
};
use requests::{
    AlarmsAfter, BlockByHash, BlockByNumber, CountByHash, CountByNumber, FilterId, NoParams,
    RawTransaction, Request, Sha3, TransactionByHash, TransactionByNumber,
};
use std::{net::SocketAddr, sync::Arc};
use trellis_chain::{Chain, Runtime};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot listen for JSON-RPC on {addr}: {source} (is another node using that port?)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the server accepts and answers at most, so one client cannot exhaust the node.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body (HTTP) or message (WebSocket), in bytes.
    pub max_request_bytes: u32,
    /// Largest response, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch: u32,
    /// Most open connections (HTTP and WebSocket together).
    pub max_connections: u32,
    /// Most subscriptions on one WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Most blocks one `eth_getLogs` (or one filter poll) covers.
    pub max_log_blocks: u64,
    /// Most logs one `eth_getLogs` returns.
    pub max_logs: usize,
    /// Most filters installed at once (all clients together).
    pub max_filters: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A batch of transactions of the pool's maximum size.
            max_request_bytes: 16 << 20,
            // A block of full transactions, or the most logs one query returns.
            max_response_bytes: 128 << 20,
            max_batch: 1_000,
            max_connections: 1_000,
            max_subscriptions_per_connection: 128,
            max_log_blocks: 100_000,
            max_logs: 10_000,
            max_filters: 4_096,
        }
    }
}

/// How the server runs.
#[derive(Clone, Debug, Default)]
pub struct RpcConfig {
    pub limits: Limits,
    /// The number of other validators this node connects to (`net_peerCount`).
    pub peers: u64,
    /// The node's archived finalization certificates (a validator's consensus); `None`:
    /// `trellis_keyActivity` lists no votes.
    pub certificates: Option<certificates::Certificates>,
    /// Where calls are counted and timed; `None`: nowhere.
    pub metrics: Option<RpcMetrics>,
    /// The alarms the node's risk rules raised; `None`: it runs none.
    pub alarms: Option<alarms::Alarms>,
    /// The evidence of equivocation the node kept; `None`: it keeps none.
    pub evidence: Option<evidence::EvidenceBook>,
    /// Who may call what; `None`: anyone may call anything (dev chains, loopback).
    pub access: Option<access::AccessConfig>,
    /// Serve over TLS (HTTPS, WSS), optionally with client certificates; `None`: plain.
    pub tls: Option<tls::TlsConfig>,
}

/// What every method reads: the chain, the installed filters, the limits.
pub(crate) struct Rpc<E: Runtime> {
    chain: Chain<E>,
    filters: filters::Filters,
    limits: Limits,
    peers: u64,
    certificates: Option<certificates::Certificates>,
    alarms: Option<alarms::Alarms>,
    evidence: Option<evidence::EvidenceBook>,
}

/// A running server; it stops when this is dropped or [`RpcServer::stop`] is called.
pub struct RpcServer {
    handle: ServerHandle,
    addr: SocketAddr,
    tls: bool,
}

impl RpcServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves over TLS (`https://`, `wss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    pub fn stop(&self) {
        let _ = self.handle.stop();
    }

    /// Resolves when the server has stopped.
    pub async fn stopped(self) {
        self.handle.stopped().await
    }
}

/// Serves `chain` on `addr`, HTTP and WebSocket. Must run inside a tokio runtime.
pub async fn serve<E>(
    addr: SocketAddr,
    chain: Chain<E>,
    config: RpcConfig,
) -> Result<RpcServer, RpcError>
where
    E: Runtime,
{
    let limits = &config.limits;
    let max_connections = limits.max_connections;
    let server_config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .set_id_provider(pubsub::HexIds)
        .build();
    let max_response_bytes = limits.max_response_bytes as usize;
    let batches_of = chain.clone();
    let module = methods(Rpc {
        chain,
        filters: filters::Filters::default(),
        limits: config.limits,
        peers: config.peers,
        certificates: config.certificates,
        alarms: config.alarms,
        evidence: config.evidence,
    });
    let known = metrics::Known(Arc::new(module.method_names().collect()));
    for method in known.0.iter() {
        // A method without a class would need `read:audit`: closed by mistake, not by choice.
        debug_assert!(
            trellis_access::Permission::classed(method, None).is_some(),
            "{method} has no permission class in trellis_access::permission"
        );
    }
    let guarding = access::Guarding::new(
        &batches_of,
        config.access,
        known.clone(),
        config.metrics.clone(),
    );
    let measured = config.metrics.map(|metrics| (metrics, known));
    let batch_metrics = measured.clone();
    let middleware = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .layer_fn(move |service| guarding.wrap(service))
        .layer_fn(move |service| batch::TransactionBatches {
            service,
            chain: batches_of.clone(),
            max_response_bytes,
            metrics: batch_metrics.clone().map(|(metrics, _)| metrics),
        })
        .layer_fn(transport::SubscriptionsNeedWebSocket)
        .layer_fn(move |service| metrics::Measured {
            service,
            metrics: measured.clone(),
        });
    let builder = Server::builder()
        .set_config(server_config)
        .set_rpc_middleware(middleware)
        .set_http_middleware(tower::ServiceBuilder::new().layer(access::BearerLayer));
    let bind = |source| RpcError::Bind { addr, source };
    let Some(tls) = config.tls else {
        let server = builder.build(addr).await.map_err(bind)?;
        let bound = server.local_addr().map_err(bind)?;
        let handle = server.start(module);
        tracing::info!(addr = %bound, "JSON-RPC listening (HTTP and WebSocket)");
        return Ok(RpcServer {
            handle,
            addr: bound,
            tls: false,
        });
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let services = builder.to_service_builder();
    let methods: jsonrpsee::Methods = module.into();
    let shutdown = stop.clone();
    let serve = move |stream: tls::TlsStream, certified: Option<tls::CertifiedAccount>| {
        let (services, methods, stop) = (services.clone(), methods.clone(), shutdown.clone());
        let service =
            tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                if let Some(certified) = certified {
                    request.extensions_mut().insert(certified);
                }
                let mut service = services.clone().build(methods.clone(), stop.clone());
                async move { tower::Service::call(&mut service, request).await }
            });
        let stopped = shutdown.clone().shutdown();
        // Boxed with its bounds spelled out: rustc cannot prove the inferred future Send (the
        // "implementation of From is not general enough" of BoxError in async blocks).
        let connection: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), jsonrpsee::core::BoxError>> + Send>,
        > = Box::pin(jsonrpsee::server::serve_with_graceful_shutdown(
            stream, service, stopped,
        ));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "an API connection over TLS ended");
            }
        })
    };
    tokio::spawn(tls::accept(listener, tls, stop, max_connections, serve));
    tracing::info!(addr = %bound, "JSON-RPC listening over TLS (HTTPS and WSS)");
    Ok(RpcServer {
        handle,
        addr: bound,
        tls: true,
    })
}

async fn send_raw_transaction<E: Runtime>(
    rpc: Arc<Rpc<E>>,
    RawTransaction(raw): RawTransaction,
) -> Answer<TxHash> {
    rpc.chain.submit(raw).await.map_err(error::admission_error)
}

/// Registers an async method: its parameters read as the handler's request type, then
/// `$handler(rpc, request)`.
macro_rules! async_method {
    ($module:expr, $name:literal, $handler:expr) => {
        $module
            .register_async_method($name, move |params, rpc, _| async move {
                let request = Request::parse(&params)?;
                $handler(rpc, request).await
            })
            .expect("method names are unique");
    };
}

/// Registers an async method whose answer the caller's [`access::Scope`] narrows:
/// `$handler(rpc, request, scope)`.
macro_rules! scoped_method {
    ($module:expr, $name:literal, $handler:expr) => {
        $module
            .register_async_method($name, move |params, rpc, extensions| async move {
                let request = Request::parse(&params)?;
                $handler(rpc, request, access::Scope::of(&extensions)).await
            })
            .expect("method names are unique");
    };
}

/// Registers a method answered at once, `$body` computing the reply from `rpc` and the
/// request (of the type `$request`).
macro_rules! method {
    ($module:expr, $name:literal, |$request:ident: $type:ty, $rpc:ident| $body:expr) => {
        $module
            .register_method($name, |params, $rpc, _| {
                let $request = <$type as Request>::parse(&params)?;
                $body
            })
            .expect("method names are unique");
    };
}

fn methods<E: Runtime>(rpc: Rpc<E>) -> RpcModule<Rpc<E>> {
    let mut module = RpcModule::new(rpc);
    register_info(&mut module);
    register_state(&mut module);
    register_blocks(&mut module);
    register_logs(&mut module);
    module
}

fn register_info<E: Runtime>(module: &mut RpcModule<Rpc<E>>) {
    method!(module, "web3_clientVersion", |_r: NoParams, _rpc| {
        Answer::Ok(info::client_version())
    });
    method!(module, "web3_sha3", |request: Sha3, _rpc| Answer::Ok(
        keccak256(&request.0)
    ));
    method!(module, "net_version", |_r: NoParams, rpc| {
        Answer::Ok(rpc.chain.genesis().chain_id.to_string())
    });
    method!(module, "net_listening", |_r: NoParams, _rpc| Answer::Ok(
        true
    ));
    method!(module, "net_peerCount", |_r: NoParams, rpc| Answer::Ok(
        U64::from(rpc.peers)
    ));
    method!(module, "eth_chainId", |_r: NoParams, rpc| {
        Answer::Ok(U64::from(rpc.chain.genesis().chain_id))
    });
    method!(module, "eth_syncing", |_r: NoParams, _rpc| Answer::Ok(
        false
    ));
    method!(module, "eth_blockNumber", |_r: NoParams, rpc| {
        Answer::Ok(U64::from(rpc.chain.latest().0.height.get()))
    });
    // The node holds no client keys: clients sign their own transactions.
    method!(module, "eth_accounts", |_r: NoParams, _rpc| Answer::Ok(
        Vec::<Address>::new()
    ));
    async_method!(module, "eth_gasPrice", info::gas_price);
    method!(module, "eth_maxPriorityFeePerGas", |_r: NoParams, _rpc| {
        Answer::Ok(U64::ZERO)
    });
    async_method!(module, "eth_feeHistory", info::fee_history);
}

fn register_state<E: Runtime>(module: &mut RpcModule<Rpc<E>>) {
    scoped_method!(module, "eth_getBalance", state::balance);
    scoped_method!(module, "eth_getTransactionCount", state::transaction_count);
    async_method!(module, "eth_getCode", state::code);
    async_method!(module, "eth_getStorageAt", state::storage_at);
    async_method!(module, "eth_call", state::call);
    async_method!(module, "eth_estimateGas", state::estimate_gas);
    scoped_method!(module, "trellis_getProof", proofs::get_proof);
    scoped_method!(module, "trellis_getHistory", proofs::get_history);
    async_method!(module, "trellis_keyActivity", keys::key_activity);
    async_method!(
        module,
        "trellis_alarms",
        |rpc: Arc<Rpc<E>>, request: AlarmsAfter| async move {
            alarms::alarms(rpc.alarms.as_ref(), request.after, request.limit).await
        }
    );
    async_method!(
        module,
        "trellis_getEvidence",
        |rpc: Arc<Rpc<E>>, _: NoParams| async move { evidence::evidence(rpc.evidence.as_ref()).await }
    );
    async_method!(module, "eth_sendRawTransaction", send_raw_transaction);
}

fn register_blocks<E: Runtime>(module: &mut RpcModule<Rpc<E>>) {
    async_method!(
        module,
        "eth_getBlockByNumber",
        |rpc, BlockByNumber(request)| blocks::block(rpc, request)
    );
    async_method!(module, "eth_getBlockByHash", |rpc, BlockByHash(request)| {
        blocks::block(rpc, request)
    });
    async_method!(
        module,
        "eth_getBlockTransactionCountByNumber",
        |rpc, CountByNumber(block)| blocks::transaction_count(rpc, block)
    );
    async_method!(
        module,
        "eth_getBlockTransactionCountByHash",
        |rpc, CountByHash(block)| blocks::transaction_count(rpc, block)
    );
    scoped_method!(
        module,
        "eth_getTransactionByBlockNumberAndIndex",
        |rpc, TransactionByNumber(at), scope| blocks::transaction_by_index(rpc, at, scope)
    );
    scoped_method!(
        module,
        "eth_getTransactionByBlockHashAndIndex",
        |rpc, TransactionByHash(at), scope| blocks::transaction_by_index(rpc, at, scope)
    );
    scoped_method!(
        module,
        "eth_getTransactionByHash",
        blocks::transaction_by_hash
    );
    scoped_method!(module, "eth_getTransactionReceipt", blocks::receipt);
    async_method!(module, "eth_getBlockReceipts", blocks::block_receipts);
}

fn register_logs<E: Runtime>(module: &mut RpcModule<Rpc<E>>) {
    scoped_method!(module, "eth_getLogs", logs::get_logs);
    scoped_method!(module, "eth_newFilter", filters::new_filter);
    method!(module, "eth_newBlockFilter", |_r: NoParams, rpc| {
        filters::new_block_filter(rpc)
    });
    method!(
        module,
        "eth_newPendingTransactionFilter",
        |_r: NoParams, rpc| filters::new_pending_filter(rpc)
    );
    method!(module, "eth_uninstallFilter", |request: FilterId, rpc| {
        filters::uninstall(rpc, request)
    });
    async_method!(module, "eth_getFilterChanges", filters::changes);
    async_method!(module, "eth_getFilterLogs", filters::filter_logs);
    module
        .register_subscription(
            "eth_subscribe",
            "eth_subscription",
            "eth_unsubscribe",
            |params, pending, rpc, extensions| {
                pubsub::subscribe(rpc, params, pending, access::Scope::of(&extensions))
            },
        )
        .expect("method names are unique");
}
