//! JSON-RPC error objects with the codes and messages Ethereum clients expect.

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;
use trellis_chain::AdmissionError;

/// Error codes. -32700 (parse error), -32600 (invalid request) and -32601 (method not found)
/// come from the server itself, before a method runs.
pub mod code {
    /// The request's parameters could not be understood.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The node failed internally (storage).
    pub const INTERNAL: i32 = -32603;
    /// The request was understood but refused (a transaction the pool rejects, a state that is
    /// not available, a call that halted).
    pub const REJECTED: i32 = -32000;
    /// A query asked for more than the node answers at once, or the node is overloaded and
    /// asks the client to retry later (EIP-1474's "limit exceeded").
    pub const LIMIT_EXCEEDED: i32 = -32005;
    /// EIP-1474's "transaction rejected": the consortium's rules forbid it.
    pub const NOT_PERMITTED: i32 = -32003;
    /// EIP-1193's "unauthorized": the caller's token is refused, or its standing lacks the
    /// permission the method needs (the message names it).
    pub const UNAUTHORIZED: i32 = 4100;
    /// A call or gas estimate reverted; the error's data is the revert data (as geth answers).
    pub const EXECUTION_REVERTED: i32 = 3;
}

/// A method's answer: a typed reply (serialized as the specification shapes it) or an error.
pub type Answer<T> = Result<T, ErrorObjectOwned>;

pub fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::INVALID_PARAMS, message, None::<()>)
}

pub fn rejected(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::REJECTED, message, None::<()>)
}

pub fn limit(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::LIMIT_EXCEEDED, message, None::<()>)
}

/// The node is overloaded (its transaction pool is full): the client should send the same
/// request again after `retry_after_ms`, which the error's data carries.
pub fn overloaded(message: impl Into<String>, retry_after_ms: u64) -> ErrorObjectOwned {
    let data = serde_json::json!({ "retryAfterMs": retry_after_ms });
    ErrorObjectOwned::owned(code::LIMIT_EXCEEDED, message, Some(data))
}

pub fn internal(error: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::INTERNAL, error.to_string(), None::<()>)
}

/// "execution reverted", with the decoded reason when the data is `Error(string)` or
/// `Panic(uint256)`, and the raw revert data for the client's ABI to decode (custom errors).
pub fn reverted(data: &Bytes, reason: Option<&str>) -> ErrorObjectOwned {
    let message = match reason {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(code::EXECUTION_REVERTED, message, Some(data.to_string()))
}

/// When to retry a transaction the full pool refused: about one block interval under load,
/// when a block takes transactions out of the pool.
const POOL_FULL_RETRY_MS: u64 = 200;

/// A transaction the pool did not admit: overload (retry later) or a rejection.
pub fn admission_error(error: AdmissionError) -> ErrorObjectOwned {
    match error {
        AdmissionError::PoolFull { .. } | AdmissionError::Busy { .. } => {
            overloaded(error.to_string(), POOL_FULL_RETRY_MS)
        }
        AdmissionError::Throttled { retry_after_ms, .. } => {
            overloaded(error.to_string(), retry_after_ms)
        }
        AdmissionError::NotPermitted(_) => {
            ErrorObjectOwned::owned(code::NOT_PERMITTED, error.to_string(), None::<()>)
        }
        error => rejected(error.to_string()),
    }
}
