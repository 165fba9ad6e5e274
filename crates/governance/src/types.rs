//! The records the registry keeps.

use std::{fmt, net::SocketAddr};
use trellis_types::{Address, Epoch, Height, ValidatorId};

/// An organisation of the consortium (a bank, an insurer…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgId(pub u64);

/// A member's identity: one person or system of an organisation, holding roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdentityId(pub u64);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The heights at which something is valid: from `from` on, and before `until` if set. Heights,
/// not times, so every node decides the same at every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Height,
    pub until: Option<Height>,
}

impl Window {
    /// Valid from genesis on, for ever.
    pub const ALWAYS: Self = Self {
        from: Height(0),
        until: None,
    };

    pub fn contains(&self, height: Height) -> bool {
        height >= self.from && self.until.is_none_or(|until| height < until)
    }
}

/// Whether an account (its key) may act. Anything but `Normal` is refused everywhere; only a
/// frozen account returns to normal, the others are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Normal,
    /// Stopped until unfrozen.
    Frozen,
    /// Stopped for good.
    Abolished,
    /// Replaced by a successor key of the same identity (its record names it).
    Rotated,
    /// Withdrawn by its holder or by vote, not known to be leaked.
    Revoked,
    /// Reported leaked; its record says from which block it is suspected.
    Compromised,
}

impl AccountStatus {
    pub fn code(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Frozen => 1,
            Self::Abolished => 2,
            Self::Rotated => 3,
            Self::Revoked => 4,
            Self::Compromised => 5,
        }
    }

    /// Whether the status can never change again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Normal | Self::Frozen)
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Normal),
            1 => Some(Self::Frozen),
            2 => Some(Self::Abolished),
            3 => Some(Self::Rotated),
            4 => Some(Self::Revoked),
            5 => Some(Self::Compromised),
            _ => None,
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal",
            Self::Frozen => "frozen",
            Self::Abolished => "abolished",
            Self::Rotated => "rotated to a successor key",
            Self::Revoked => "revoked",
            Self::Compromised => "reported compromised",
        })
    }
}

/// An account address registered to an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub address: Address,
    pub identity: IdentityId,
    pub window: Window,
    pub status: AccountStatus,
    /// The block from which `status` holds.
    pub status_since: Height,
    /// Who set it: a governance proposal's id, [`GENESIS`] or [`BY_ITS_KEY`].
    pub status_by: u64,
    /// For a compromised key: the first block it is suspected to have been misused in.
    pub compromised_since: Option<Height>,
    /// For a rotated key: the account that took over from it.
    pub successor: Option<Address>,
}

/// `status_by` of a status set at genesis.
pub const GENESIS: u64 = 0;
/// `status_by` of a status the key set itself (a rotation, a revocation by its holder).
pub const BY_ITS_KEY: u64 = u64::MAX;

/// Who set a status, for messages.
pub fn status_setter(by: u64) -> String {
    match by {
        GENESIS => "at genesis".into(),
        BY_ITS_KEY => "by its own key".into(),
        proposal => format!("by proposal {proposal}"),
    }
}

/// An identity and the organisation it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    pub id: IdentityId,
    pub organisation: OrgId,
    pub window: Window,
}

/// Epochs in which a key validates: from `from` on, and before `until` if retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub from: Epoch,
    pub until: Option<Epoch>,
}

impl Term {
    pub fn contains(&self, epoch: Epoch) -> bool {
        epoch >= self.from && self.until.is_none_or(|until| epoch < until)
    }
}

/// What a node key (ed25519, the node's p2p identity) does in its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRole {
    /// Votes in consensus; its links are the epoch's primary peers.
    Validator,
    /// Follows the chain over the same authenticated links, never votes (a transport key only).
    FullNode,
}

impl NodeRole {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Validator => 0,
            Self::FullNode => 1,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Validator),
            1 => Some(Self::FullNode),
            _ => None,
        }
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Validator => "validator",
            Self::FullNode => "full node",
        })
    }
}

/// A node key — a validator's or a full node's — and where it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorRecord {
    pub key: ValidatorId,
    pub role: NodeRole,
    /// Its p2p address; `None` for a genesis node, reached where the genesis file says.
    pub p2p: Option<SocketAddr>,
    /// The identity operating it (`None`: a genesis node).
    pub identity: Option<IdentityId>,
    pub term: Term,
}

impl fmt::Display for ValidatorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 0x{}",
            self.role,
            alloy_primitives::hex::encode(self.key.0)
        )?;
        if let Some(p2p) = self.p2p {
            write!(f, " at {p2p}")?;
        }
        Ok(())
    }
}

/// The least gas limit a block may have: one plain transfer.
pub const MIN_BLOCK_GAS_LIMIT: u64 = 21_000;

/// The largest gas limit a block may have (blocks are also bounded in bytes and transactions).
pub const MAX_BLOCK_GAS_LIMIT: u64 = 1_000_000_000;

/// The highest base fee a consortium may set, in wei per gas (a million gwei).
pub const MAX_BASE_FEE: u64 = 1_000_000_000_000_000;

/// What every block of a chain runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainParams {
    pub block_gas_limit: u64,
    /// Wei per gas every transaction pays (burnt); 0 makes gas free.
    pub base_fee_per_gas: u64,
}

impl fmt::Display for ChainParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a block gas limit of {} and a base fee of {} wei per gas",
            self.block_gas_limit, self.base_fee_per_gas
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_includes_its_start_and_excludes_its_end() {
        let window = Window {
            from: Height(10),
            until: Some(Height(20)),
        };
        assert!(!window.contains(Height(9)));
        assert!(window.contains(Height(10)));
        assert!(window.contains(Height(19)));
        assert!(!window.contains(Height(20)));
        assert!(Window::ALWAYS.contains(Height(u64::MAX)));
    }
}
