//! What a node and its key manager say to each other: one request, one answer, as JSON in one
//! message of the authenticated channel. Keys and wrapped keys travel hex-encoded inside it.

use serde::{Deserialize, Serialize};

/// The channel's domain: a handshake for anything else fails.
pub const NAMESPACE: &[u8] = b"trellis-keyd-v1";
/// The largest message either side sends.
pub const MAX_MESSAGE: u32 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// The id of the caller's key-encryption key.
    Id,
    /// A data key (hex) to wrap, bound to `context` (hex).
    Wrap { context: String, key: String },
    /// A wrapped data key (hex) to open, bound to `context` (hex).
    Unwrap { context: String, wrapped: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Id {
        id: String,
    },
    Wrapped {
        wrapped: String,
    },
    Key {
        key: String,
    },
    /// The wrapped key does not open under the caller's key-encryption key.
    NotItsKey,
    /// The request could not be served, and why.
    Refused {
        reason: String,
    },
}
