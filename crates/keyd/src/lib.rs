//! `trellis-keyd`: a key-manager process for nodes without an HSM. It holds one
//! key-encryption key per node it serves, in its own directory (on its own host, ideally), and
//! wraps or opens that node's data keys when the node asks over an authenticated, encrypted
//! channel (`channel.rs`), so the node never holds its key-encryption key: its transport key
//! (which authenticates it to the key manager) and that key are never both in its hands.

mod channel;
pub mod cli;
pub mod client;
pub mod protocol;
pub mod server;

pub use client::{KeydClientError, KeydKek};
pub use server::{KeydDir, KeydError};
