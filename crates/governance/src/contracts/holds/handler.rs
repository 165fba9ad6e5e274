//! The holds contract's functions: an approver of another identity releases or returns a held
//! transfer; after its expiry anyone returns it to its sender.

use super::{
    layout::HOLDS_ADDRESS,
    records::{Hold, HoldStatus, Holds, settled},
};
use crate::{
    Registry, Role,
    contracts::{
        abi::ITrellisHolds::{self, ITrellisHoldsCalls},
        call::{Effects, SystemCall},
        error::{HoldError, SystemError},
    },
};
use alloy_sol_types::SolCall;
use trellis_state::StateReader;

pub(crate) fn holds<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
) -> Result<Effects, SystemError> {
    use ITrellisHoldsCalls as Call;
    let holds = Holds::new(state);
    match call.decode::<ITrellisHoldsCalls>()? {
        Call::approve(c) => {
            call.check_writable()?;
            let hold = open(state, call, c.id)?;
            Ok(settle(call, hold, true))
        }
        Call::reject(c) => {
            call.check_writable()?;
            let hold = open(state, call, c.id)?;
            Ok(settle(call, hold, false))
        }
        Call::reclaim(c) => {
            call.check_writable()?;
            let hold = holds
                .hold(c.id, call.height)?
                .ok_or(HoldError::NoHold(c.id))?;
            match hold.status {
                HoldStatus::Expired => Ok(settle(call, hold, false)),
                HoldStatus::Waiting => Err(HoldError::NotExpired {
                    id: c.id,
                    expires: hold.expires,
                }
                .into()),
                status => Err(HoldError::Settled { id: c.id, status }.into()),
            }
        }
        Call::holdCount(_) => Ok(Effects::view(
            ITrellisHolds::holdCountCall::abi_encode_returns(&holds.count()?),
        )),
        Call::holdOf(c) => {
            let hold = holds
                .hold(c.id, call.height)?
                .ok_or(HoldError::NoHold(c.id))?;
            Ok(Effects::view(
                ITrellisHolds::holdOfCall::abi_encode_returns(&ITrellisHolds::holdOfReturn {
                    from: hold.from,
                    to: hold.to,
                    value: hold.value,
                    created: hold.created.get(),
                    expires: hold.expires.get(),
                    status: hold.status.code(),
                }),
            ))
        }
    }
}

/// Hold `id`, waiting, if the caller may decide it: an approver now, of another identity.
fn open<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    id: u64,
) -> Result<Hold, SystemError> {
    let hold = Holds::new(state)
        .hold(id, call.height)?
        .ok_or(HoldError::NoHold(id))?;
    match hold.status {
        HoldStatus::Waiting => {}
        HoldStatus::Expired => {
            return Err(HoldError::Expired {
                id,
                expires: hold.expires,
            }
            .into());
        }
        status => return Err(HoldError::Settled { id, status }.into()),
    }
    let registry = Registry::new(state);
    if !registry.may(&call.caller, &Role::approver(), call.height)? {
        return Err(HoldError::NotApprover {
            account: call.caller,
            height: call.height,
        }
        .into());
    }
    let approver = registry
        .account(&call.caller)?
        .expect("an account that may act is registered");
    if approver.identity == hold.from_identity {
        return Err(HoldError::OwnTransfer {
            id,
            identity: approver.identity,
        }
        .into());
    }
    Ok(hold)
}

/// Releases the value to the recipient, or returns it to the sender.
fn settle(call: &SystemCall<'_>, hold: Hold, release: bool) -> Effects {
    let mut effects = Effects::default();
    let (to, status) = if release {
        (hold.to, HoldStatus::Released)
    } else {
        (hold.from, HoldStatus::Returned)
    };
    effects.transfers.push((HOLDS_ADDRESS, to, hold.value));
    let (key, value) = settled(&hold, status);
    effects.writes.insert(key, value);
    if release {
        effects.log(
            HOLDS_ADDRESS,
            ITrellisHolds::Released {
                id: hold.id,
                approver: call.caller,
            },
        );
    } else {
        effects.log(
            HOLDS_ADDRESS,
            ITrellisHolds::Returned {
                id: hold.id,
                by: call.caller,
            },
        );
    }
    effects
}
