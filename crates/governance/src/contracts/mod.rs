//! The system contracts: accounts at fixed addresses whose calls, from transactions or from
//! contracts, `trellis-governance` answers instead of EVM code (the executor hands them over).
//!
//! - [`REGISTRY_ADDRESS`] (`0x…1000`): the registry's records, read-only ([`abi::ITrellisRegistry`]).
//! - [`GOVERNANCE_ADDRESS`] (`0x…1001`): the council of governors deciding, by weighted vote on
//!   proposals, every change to the rules ([`abi::ITrellisGovernance`], whose proposals carry
//!   [`abi::ITrellisActions`] calls).

pub mod abi;
mod call;
mod council;
mod error;
pub mod holds;
mod proposal;
mod registry;

pub use call::{Effects, SystemCall};
pub use council::{Action, Ballot, Council, GOVERNANCE_ADDRESS, MAX_ACTION, layout};
pub use error::{
    ActionError, GovernanceError, HoldError, MAX_VOTING_BLOCKS, MAX_WEIGHT, SystemError,
};
pub use holds::{HOLDS_ADDRESS, place_hold};
pub use proposal::{Proposal, ProposalId, ProposalStatus, Tally, Thresholds};

pub(crate) use council::Records;

use crate::{REGISTRY_ADDRESS, governed};
use alloy_primitives::Address;
use trellis_state::StateReader;

/// Whether `log` says the rules changed (a proposal passed, a key rotated or retired itself),
/// so pools re-check their senders.
pub fn changes_rules(log: &alloy_primitives::Log) -> bool {
    use alloy_sol_types::SolEvent;
    let topic = log.topics().first();
    (log.address == GOVERNANCE_ADDRESS
        && topic == Some(&abi::ITrellisGovernance::Executed::SIGNATURE_HASH))
        || (log.address == REGISTRY_ADDRESS
            && (topic == Some(&abi::ITrellisRegistry::KeyRotated::SIGNATURE_HASH)
                || topic == Some(&abi::ITrellisRegistry::KeyRetired::SIGNATURE_HASH)))
}

/// The addresses whose calls the system contracts answer.
pub const SYSTEM_ADDRESSES: [Address; 3] = [REGISTRY_ADDRESS, GOVERNANCE_ADDRESS, HOLDS_ADDRESS];

/// Runs `call` if `address` is a system contract's (`None` otherwise), on `state`: the state
/// the call sees, with everything earlier in its block and its transaction applied.
pub fn system_call<R: StateReader + ?Sized>(
    state: &R,
    address: &Address,
    call: &SystemCall<'_>,
) -> Option<Result<Effects, SystemError>> {
    if !SYSTEM_ADDRESSES.contains(address) {
        return None;
    }
    Some(run(state, address, call))
}

fn run<R: StateReader + ?Sized>(
    state: &R,
    address: &Address,
    call: &SystemCall<'_>,
) -> Result<Effects, SystemError> {
    if !governed(state)? {
        return Err(SystemError::NotGoverned);
    }
    if !call.value.is_zero() {
        return Err(SystemError::ValueSent);
    }
    match *address {
        GOVERNANCE_ADDRESS => council::governance(state, call),
        HOLDS_ADDRESS => holds::holds(state, call),
        _ => registry::registry(state, call),
    }
}
