//! Why a system contract refuses a call: each error reverts the call with its message as the
//! reason, except a state that cannot be read, which stops the block.

use super::proposal::{ProposalId, ProposalStatus, Thresholds};
use crate::{AccountStatus, IdentityId, RegistryError, Role};
use alloy_primitives::Address;
use trellis_state::StateError;
use trellis_types::Height;

/// The longest a proposal stays open, in blocks.
pub const MAX_VOTING_BLOCKS: u64 = 1_000_000;

/// The largest weight a governor can have (so sums of weights never overflow).
pub const MAX_WEIGHT: u64 = 1_000_000;

/// Why a system contract refuses a call. All but [`SystemError::State`] revert the call with
/// the message as its reason, changing nothing; a state that cannot be read stops the block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    #[error("reading state failed: {0}")]
    State(StateError),
    #[error(transparent)]
    Registry(RegistryError),
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    #[error(transparent)]
    Holds(#[from] HoldError),
    #[error(
        "this chain has no registry: its genesis lists no [[organisations]], so nothing is governed"
    )]
    NotGoverned,
    #[error("a call of {0} bytes names no function (4-byte selector)")]
    NoSelector(usize),
    #[error("this system contract has no function with selector {0}")]
    UnknownFunction(alloy_primitives::FixedBytes<4>),
    #[error("the call's arguments do not decode: {0}")]
    MalformedCall(String),
    #[error("a static call cannot change governance")]
    StaticCall,
    #[error("system contracts take no value: send none")]
    ValueSent,
}

impl SystemError {
    /// Whether the block cannot go on (the state could not be read).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::State(_))
    }
}

impl From<RegistryError> for SystemError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::State(state) => Self::State(state),
            other => Self::Registry(other),
        }
    }
}

impl From<StateError> for SystemError {
    fn from(error: StateError) -> Self {
        Self::State(error)
    }
}

/// Why the governance contract refuses a call (it reverts with this reason, changing nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    #[error(
        "account {account} may not propose or vote: it is no governor's account valid at block {height}"
    )]
    NotGovernor { account: Address, height: Height },
    #[error("there is no proposal {0}")]
    NoProposal(ProposalId),
    #[error("identity {identity} has voted on proposal {id} already")]
    AlreadyVoted {
        id: ProposalId,
        identity: IdentityId,
    },
    #[error("proposal {id} expired at block {expires}: votes no longer count")]
    Expired { id: ProposalId, expires: Height },
    #[error("proposal {id} is {status}: it takes no more votes")]
    Closed {
        id: ProposalId,
        status: ProposalStatus,
    },
    #[error("a proposal stays open 1 to {MAX_VOTING_BLOCKS} blocks, not {0}")]
    VotingBlocks(u64),
    #[error("proposal refused: {0}")]
    Action(#[from] ActionError),
}

/// Why an action cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the action is no ITrellisActions call: {0}")]
    Malformed(String),
    #[error("the action is {length} bytes long, more than the {max} a proposal holds")]
    TooLong { length: usize, max: usize },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("account status {0} is none of 0 (normal), 1 (frozen), 2 (abolished)")]
    UnknownStatus(u8),
    #[error(
        "a key is made {0} by its own action (rotateAccount, retireAccount), which records its successor or the block it is suspected from"
    )]
    RetirementNeedsItsAction(crate::AccountStatus),
    #[error("account {account} is {status} already")]
    SameStatus {
        account: Address,
        status: AccountStatus,
    },
    #[error("identity {identity} holds the {role} role already")]
    RoleHeld { identity: IdentityId, role: Role },
    #[error("identity {identity} does not hold the {role} role")]
    RoleNotHeld { identity: IdentityId, role: Role },
    #[error(
        "identity {0} is the last governor with weight: the consortium could never decide again"
    )]
    LastGovernor(IdentityId),
    #[error(
        "a governor's weight must be 1 to {MAX_WEIGHT}, not {0} (revoke the governor role to remove one)"
    )]
    BadWeight(u64),
    #[error("function {selector} of {contract} is restricted that way already")]
    SameMethodRole {
        contract: Address,
        selector: alloy_primitives::Selector,
    },
    #[error(
        "thresholds {0} are out of range: participation 0.01–100 %, approval above 50 % up to 100 %"
    )]
    BadThresholds(Thresholds),
    #[error(
        "validator address {0:?} is not an ip:port address (a host name is not allowed: every node must resolve it alike)"
    )]
    BadAddress(String),
    #[error(
        "this chain has no epochs (its genesis predates governance), so its validators cannot change"
    )]
    NoEpochs,
    #[error(
        "a key's term can end from epoch {next} on at the earliest (the running epoch's set never changes), not at epoch {until}"
    )]
    ExpiryNotAhead { until: u64, next: u64 },
}

/// Why the holds contract refuses a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("there is no held transfer {0}")]
    NoHold(u64),
    #[error(
        "account {account} may not decide held transfers: it holds no approver role valid at block {height}"
    )]
    NotApprover { account: Address, height: Height },
    #[error(
        "held transfer {id} was sent by identity {identity}: another identity's approver must decide it"
    )]
    OwnTransfer { id: u64, identity: IdentityId },
    #[error(
        "held transfer {id} expired at block {expires}: it can only be returned to its sender (reclaim)"
    )]
    Expired { id: u64, expires: Height },
    #[error(
        "held transfer {id} waits for an approver until block {expires}: it cannot be reclaimed before"
    )]
    NotExpired { id: u64, expires: Height },
    #[error("held transfer {id} is {status} already")]
    Settled {
        id: u64,
        status: super::holds::HoldStatus,
    },
}
