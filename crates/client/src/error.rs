//! Why a request to a node did not give what was asked.

use alloy_primitives::{Address, TxHash};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url} is not a usable JSON-RPC address: {source}")]
    BadUrl {
        url: String,
        source: jsonrpsee_core::ClientError,
    },
    #[error(
        "the API token holds characters an HTTP header cannot carry: give it as `trellis api token` printed it"
    )]
    BadToken,
    #[error("TLS with {path}: {why}")]
    Tls { path: String, why: String },
    #[error("the node at {url} did not answer {method}: {source}")]
    Rpc {
        url: String,
        method: &'static str,
        source: jsonrpsee_core::ClientError,
    },
    #[error("the node refuses it: {0}")]
    Refused(String),
    #[error("transaction {tx} was not in a block after {waited:?}; it may still be pending")]
    NotIncluded { tx: TxHash, waited: Duration },
    #[error(
        "transaction {tx} failed in block {block} (it ran out of gas or the state changed since it was estimated)"
    )]
    Failed { tx: TxHash, block: u64 },
    #[error("the node's answer to {method} does not decode: {detail}")]
    BadAnswer {
        method: &'static str,
        detail: String,
    },
    #[error("reading key file {path}: {problem}")]
    KeyFile { path: String, problem: String },
    #[error("the account's key did not sign: {0}")]
    Signing(trellis_crypto::DeviceFailure),
    #[error(transparent)]
    Hsm(#[from] trellis_hsm::HsmError),
    #[error("{key} is the key of {holds}, not of {asked}")]
    NotThisKey {
        key: String,
        holds: Address,
        asked: Address,
    },
    #[error("key file {path} holds no key of account {address}")]
    NoSuchAccount { path: String, address: Address },
    #[error("key file {path} holds {count} accounts: say which with --from ADDRESS")]
    WhichAccount { path: String, count: usize },
    #[error("transaction {tx} is not in a block on this chain (check the hash and the node)")]
    UnknownTransaction { tx: TxHash },
    #[error(
        "transaction {tx} does not record commitment {commitment}: the opening is of another value, salt or label, or the field is in another transaction"
    )]
    NotDisclosed { commitment: String, tx: TxHash },
}
