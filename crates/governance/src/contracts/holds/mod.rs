//! Held transfers: a plain transfer above its sender's hold threshold goes into escrow (the
//! balance of [`HOLDS_ADDRESS`]) instead of to its recipient, until an approver of another
//! identity releases it or returns it, or it expires and anyone returns it.

mod handler;
pub mod layout;
mod records;

pub use layout::{HOLD_BLOCKS, HOLDS_ADDRESS};
pub use records::{Hold, HoldStatus, Holds};

pub(crate) use handler::holds;

use crate::{IdentityId, RegistryError, contracts::abi::ITrellisHolds, contracts::call::Effects};
use alloy_primitives::{Address, U256};
use trellis_state::StateReader;
use trellis_types::Height;

/// The effects of holding `value` sent by `from` (of `identity`) to `to` in block `height`:
/// the hold's records and its `Held` event. The caller moves the value into escrow.
pub fn place_hold<R: StateReader + ?Sized>(
    state: &R,
    from: Address,
    identity: IdentityId,
    to: Address,
    value: U256,
    height: Height,
) -> Result<Effects, RegistryError> {
    let hold = Hold {
        id: Holds::new(state).count()? + 1,
        from,
        from_identity: identity,
        to,
        value,
        created: height,
        expires: Height(height.get() + HOLD_BLOCKS),
        status: HoldStatus::Waiting,
    };
    let mut effects = Effects {
        writes: records::new_hold_writes(&hold),
        ..Effects::default()
    };
    effects.log(
        HOLDS_ADDRESS,
        ITrellisHolds::Held {
            id: hold.id,
            from,
            to,
            value,
            expires: hold.expires.get(),
        },
    );
    Ok(effects)
}

/// The genesis write that creates the holds account.
pub(crate) fn genesis_write() -> ((Address, U256), U256) {
    ((HOLDS_ADDRESS, layout::version()), U256::from(1))
}
