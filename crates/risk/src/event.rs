//! What the node tells the engine: transactions offered to the pool, failed authentications,
//! peers it does not know, conflicting votes, the host's load, and API callers' reads.

use alloy_primitives::{Address, TxHash, U256};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who an alarm is about: the source an operator traces it to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// An account sending transactions.
    Account(Address),
    /// An API caller: its identity once it authenticated, its address otherwise.
    Caller(String),
    /// A peer on the p2p network, by public key or address.
    Peer(String),
    /// A validator, by consensus key.
    Validator(String),
    /// The node's own host (CPU, memory, disk).
    Host,
    /// The network as a whole (a measure that is not per party).
    Network,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(address) => write!(f, "account {address}"),
            Self::Caller(caller) => write!(f, "caller {caller}"),
            Self::Peer(peer) => write!(f, "peer {peer}"),
            Self::Validator(key) => write!(f, "validator {key}"),
            Self::Host => f.write_str("this host"),
            Self::Network => f.write_str("the network"),
        }
    }
}

/// One transaction offered to the pool whose sender was recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub sender: Address,
    pub hash: TxHash,
    pub value: U256,
    /// Why admission refused it (a stable reason, as the metrics label it), if it did.
    pub refused: Option<&'static str>,
}

/// The reason admission gives a sender it refuses because a rule throttles it; such refusals
/// are not counted as refused transactions again (a throttled flood would feed itself).
pub const THROTTLED: &str = "throttled";

/// Something the engine weighs against the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A batch of transactions offered to the pool (by a client or gossiped by a peer).
    Offered(Vec<Offer>),
    /// An API caller failed to authenticate.
    FailedAuthentication { caller: String },
    /// A peer outside the network's set tried to connect.
    UnknownPeer { peer: String },
    /// A validator signed two conflicting votes.
    ConsensusFault { validator: String, kind: String },
    /// A sample of the host's load, in percent (what could not be read is `None`).
    Host(HostLoad),
    /// An API caller read `records` records (blocks, transactions, logs, state).
    Reads { caller: String, records: u64 },
}

/// The host's load at one moment, in percent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostLoad {
    pub cpu: Option<u8>,
    pub memory: Option<u8>,
    pub disk: Option<u8>,
}
