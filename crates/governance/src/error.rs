//! Why the registry cannot be read or changed.

use crate::{IdentityId, OrgId};
use alloy_primitives::Address;
use trellis_state::StateError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("reading the registry: {0}")]
    State(#[from] StateError),
    #[error(
        "registry slot {slot} holds {value:#x}, which is no {what} record (the state is corrupt)"
    )]
    Corrupt {
        what: &'static str,
        slot: alloy_primitives::U256,
        value: alloy_primitives::U256,
    },
    #[error("organisation {0} does not exist")]
    NoOrganisation(OrgId),
    #[error("organisation {0} exists already")]
    OrganisationExists(OrgId),
    #[error("identity {0} does not exist")]
    NoIdentity(IdentityId),
    #[error("identity {0} exists already")]
    IdentityExists(IdentityId),
    #[error("account {account} belongs to identity {holder} already")]
    AccountTaken {
        account: Address,
        holder: IdentityId,
    },
    #[error("organisation name {0:?} is longer than 30 bytes")]
    NameTooLong(String),
    #[error("account {0} is not registered to any identity")]
    NoAccount(Address),
    #[error("account {0} is abolished, for good")]
    Abolished(Address),
    #[error("account {account} is {status} already, for good: a retired key never returns")]
    KeyRetired {
        account: Address,
        status: crate::AccountStatus,
    },
    #[error("account {0} is registered already: a successor must be a new key")]
    SuccessorTaken(Address),
    #[error(
        "the rotation to {successor} is not signed by {successor}'s key (it recovers to {signer}): sign the rotation message with the new key"
    )]
    BadRotationProof { successor: Address, signer: Address },
    #[error(
        "the rotation is not signed by {signer} 0x{}: both the current and the new validator key sign it (`trellis keys rotate-validator` does)",
        alloy_primitives::hex::encode(.key.0)
    )]
    BadValidatorRotation {
        key: trellis_types::ValidatorId,
        signer: RotationSigner,
    },
    #[error(
        "validator 0x{} is operated by identity {operator}, and {caller} is not its account: send the rotation from one of the operator's accounts",
        alloy_primitives::hex::encode(.key.0)
    )]
    NotTheOperator {
        key: trellis_types::ValidatorId,
        operator: IdentityId,
        caller: Address,
    },
    #[error("the rotation proof is not a 65-byte signature (r ‖ s ‖ v): {0}")]
    MalformedRotationProof(String),
    #[error(
        "block {since} is after block {now}: a key cannot be suspected of misuse in the future"
    )]
    CompromiseInFuture {
        since: trellis_types::Height,
        now: trellis_types::Height,
    },
    #[error(
        "no founding identity holds the governor role: nobody could ever change the rules (give at least one identity roles = [\"governor\", …])"
    )]
    NoGovernor,
    #[error("at most {0} roles may carry limits: lift one first")]
    TooManyLimitedRoles(usize),
    #[error("0x{} is not an ed25519 public key (not a point of the curve)", alloy_primitives::hex::encode(.0.0))]
    NotAValidatorKey(trellis_types::ValidatorId),
    #[error(
        "validator key {0} is recorded already (a retired key cannot return: register a new one)"
    )]
    ValidatorKnown(Box<crate::ValidatorRecord>),
    #[error("identity {0} does not hold the validator-operator role")]
    NotAnOperator(IdentityId),
    #[error("the chain has recorded {0} validator keys, the most it keeps")]
    ValidatorRecordsFull(u64),
    #[error("an epoch has at most {max} {role}s")]
    TooManyNodes { role: crate::NodeRole, max: usize },
    #[error("0x{} is not a {role} in epoch {}", alloy_primitives::hex::encode(.key.0), .epoch.0)]
    NotANode {
        key: trellis_types::ValidatorId,
        role: crate::NodeRole,
        epoch: trellis_types::Epoch,
    },
    #[error("0x{} was never a validator of this chain", alloy_primitives::hex::encode(.0.0))]
    UnknownValidator(trellis_types::ValidatorId),
    #[error(
        "validator 0x{} is reported compromised already, suspected since block {since}: a report is final",
        alloy_primitives::hex::encode(.key.0)
    )]
    ValidatorCompromisedAlready {
        key: trellis_types::ValidatorId,
        since: trellis_types::Height,
    },
    #[error(
        "validator 0x{} leaves the set before epoch {} already: it has no seat to hand to a successor (report it without one)",
        alloy_primitives::hex::encode(.key.0), .until.0
    )]
    NoSeatToHand {
        key: trellis_types::ValidatorId,
        until: trellis_types::Epoch,
    },
    #[error(
        "validator 0x{} has no operator identity: only the council can report it compromised (`trellis gov propose compromise-validator`)",
        alloy_primitives::hex::encode(.0.0)
    )]
    NoOperator(trellis_types::ValidatorId),
    #[error(
        "taking validator 0x{} out would leave {left} validators, below the {min} that tolerate a faulty one: name a successor key that takes its seat (its signature of the rotation message)",
        alloy_primitives::hex::encode(.key.0)
    )]
    CompromiseNeedsSuccessor {
        key: trellis_types::ValidatorId,
        left: usize,
        min: usize,
    },
    #[error(
        "removing it would leave {left} validators: a set is never empty, and one of {min} or more, which tolerates a faulty validator, never drops below {min}"
    )]
    TooFewValidators { left: usize, min: usize },
    #[error(
        "{0} is out of range: the gas limit must be 21000 to 1000000000, the base fee at most 10^15 wei per gas"
    )]
    BadChainParams(crate::ChainParams),
    #[error("the validity window from block {} until block {:?} is empty", .0.from, .0.until)]
    EmptyWindow(crate::Window),
}

/// Which key of a rotation signed wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationSigner {
    /// The validator's current key.
    Current,
    /// The key taking over.
    New,
}

impl std::fmt::Display for RotationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Current => "the validator's current key",
            Self::New => "the new key",
        })
    }
}
