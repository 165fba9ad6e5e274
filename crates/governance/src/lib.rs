//! The consortium's rules, kept in chain state where every node reads the same ones at the same
//! height: organisations, identities (an organisation's member, holding roles, with account
//! addresses and validity windows), and each account's status.
//!
//! Everything lives in the storage of one system account, the *registry*
//! ([`REGISTRY_ADDRESS`]), at slots derived as [`layout`] documents, so it is covered by the
//! state root, proven like any other slot, and has a history at every height. Nothing here
//! reads local configuration: a check made for block N reads the state block N executes on.
//!
//! [`Registry`] reads the rules from any [`StateReader`](trellis_state::StateReader);
//! [`RegistryWriter`] records changes into a block's [`ChangeSet`](trellis_state::ChangeSet)
//! (genesis writes the founding members with it; passed proposals do).
//!
//! [`contracts`] are the system contracts the EVM calls: the registry's views and the council
//! of governors, which changes the rules by weighted vote.

pub mod contracts;
mod deployments;
mod error;
mod founders;
mod keys;
pub mod layout;
mod limits;
mod params;
mod reader;
mod role;
mod rules;
mod types;
mod validator_compromise;
mod validator_rotation;
mod validators;
mod writer;

pub use contracts::{
    Effects, SYSTEM_ADDRESSES, SystemCall, SystemError, changes_rules, system_call,
};
pub use deployments::Deployment;
pub use error::{RegistryError, RotationSigner};
pub use founders::{Founders, FoundingIdentity, FoundingOrganisation};
pub use keys::{check_rotation_proof, rotation_digest};
pub use layout::REGISTRY_ADDRESS;
pub use limits::{
    Applicable, Breach, Day, LimitHolder, Limits, MAX_LIMITED_ROLES, check_spending, spent_slot,
};
pub use reader::Registry;
pub use role::Role;
pub use rules::{
    Intent, OverLimit, Refusal, Request, When, governed, held, method_refusal, refusal,
    spending_record, tx_refusal,
};
pub use trellis_types::EpochLength;
pub use types::{
    AccountRecord, AccountStatus, BY_ITS_KEY, ChainParams, GENESIS, IdentityId, IdentityRecord,
    MAX_BASE_FEE, MAX_BLOCK_GAS_LIMIT, MIN_BLOCK_GAS_LIMIT, NodeRole, OrgId, Term, ValidatorRecord,
    Window, status_setter,
};
pub use validator_compromise::{
    BY_ITS_OPERATOR, CompromiseRecord, SeatSuccessor, ValidatorCompromise, ValidatorLifecycle,
    reporter,
};
pub use validator_rotation::{
    VALIDATOR_ROTATION_NAMESPACE, ValidatorRotation, validator_rotation_message,
};
pub use validators::{
    MAX_FULL_NODES, MAX_VALIDATOR_RECORDS, MAX_VALIDATORS, MIN_FAULT_TOLERANT, NewValidator,
    max_nodes,
};
pub use writer::{RegistryWriter, SYSTEM_CODE};
