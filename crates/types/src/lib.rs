//! Domain types of the Trellis ledger and their canonical encoding.
//!
//! Everything here is pure data: no I/O, no clock, no randomness. What is hashed or agreed on
//! (headers, blocks) has exactly one encoding, produced with `commonware-codec`, so every node
//! derives the same [`BlockHash`] from the same block.
//!
//! # Header layout (canonical encoding, all integers big-endian, fixed width)
//!
//! ```text
//! +--------+--------+-----------+----------+-------+------+-------------+---------+--------------+-----------+------------+------------+----------+-----------+
//! | parent | height | timestamp | proposer | epoch | view | parent view | tx root | senders root | rcpt root | state root | logs bloom | gas used | gas limit |
//! | 32 B   | u64    | u64 (ms)  | 32 B     | u64   | u64  | u64         | 32 B    | 32 B         | 32 B      | 32 B       | 256 B      | u64      | u64       |
//! +--------+--------+-----------+----------+-------+------+-------------+---------+--------------+-----------+------------+------------+----------+-----------+
//! ```
//!
//! 504 bytes. The senders root is keccak-256 of the transactions' senders (20 bytes each, in
//! order), so the certificate of a block also certifies who signed each of its transactions. The proposer is the leader's ed25519 public key; with the epoch, the view and the
//! parent's view it is the consensus context the block was proposed in, which consensus checks
//! against the certificate that finalizes it.
//!
//! [`BlockHash`] is keccak-256 of that encoding. A [`Block`] is the header followed by the
//! transactions as a length-prefixed list of EIP-2718 envelopes; the header's transactions root is
//! the Ethereum ordered-trie root of those envelopes, and decoding rejects a block whose list does
//! not match it.
//!
//! # Transactions
//!
//! [`transaction::decode`] turns EIP-2718 bytes into a [`RecoveredTx`]: legacy (EIP-155),
//! EIP-2930 and EIP-1559 transactions are accepted; blob (EIP-4844) and set-code (EIP-7702)
//! transactions are refused. Sender recovery uses libsecp256k1.
//!
//! # Stability
//! Pre-release: the layout above may still change before the protocol is published.

mod block;
mod hash;
mod header;
mod height;
mod senders;
pub mod transaction;

pub use alloy_primitives::{Address, B256, Bloom, Bytes, TxHash, U256};
pub use block::{Block, BlockError, BlockLimits, transactions_root};
pub use hash::{BlockHash, StateRoot};
pub use header::{Header, HeaderError, Timestamp, ValidatorId};
pub use height::{Epoch, EpochLength, Height, View};
pub use senders::{ClaimedSenders, senders_root};
pub use transaction::{RecoveredTx, TxError};

/// The chain id of an EVM network, as in EIP-155.
pub type ChainId = u64;
