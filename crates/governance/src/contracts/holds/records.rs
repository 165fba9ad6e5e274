//! Held transfers as the holds contract records them.

use super::layout::{self, HOLDS_ADDRESS};
use crate::{
    IdentityId, RegistryError,
    layout::{Packer, Unpacker},
};
use alloy_primitives::{Address, U256};
use std::collections::BTreeMap;
use trellis_state::StateReader;
use trellis_types::Height;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldStatus {
    /// Waiting for an approver, until its expiry height.
    Waiting,
    /// Approved: the recipient has the value.
    Released,
    /// Rejected by an approver, or reclaimed after expiry: the sender has the value back.
    Returned,
    /// Waiting past its expiry height: anyone may return it to its sender.
    Expired,
}

impl HoldStatus {
    pub fn code(self) -> u8 {
        match self {
            Self::Waiting => 0,
            Self::Released => 1,
            Self::Returned => 2,
            Self::Expired => 3,
        }
    }

    /// A status as recorded (`Expired` is never recorded: it is read from the height) or, with
    /// `Expired`, as the `holdOf` view reports it.
    pub fn from_code(code: u8) -> Option<Self> {
        [Self::Waiting, Self::Released, Self::Returned, Self::Expired]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

impl std::fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Waiting => "waiting",
            Self::Released => "released",
            Self::Returned => "returned",
            Self::Expired => "expired",
        })
    }
}

/// A held transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub id: u64,
    pub from: Address,
    /// The sender's identity, which may not approve its own transfer.
    pub from_identity: IdentityId,
    pub to: Address,
    pub value: U256,
    pub created: Height,
    /// The last height at which it can be approved.
    pub expires: Height,
    pub status: HoldStatus,
}

fn address_word(address: Address) -> U256 {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(address.as_slice());
    U256::from_be_bytes(word)
}

fn word_address(value: U256) -> Address {
    Address::from_slice(&value.to_be_bytes::<32>()[12..])
}

/// Reads holds from a state.
pub struct Holds<'a, R: ?Sized> {
    state: &'a R,
}

impl<'a, R: StateReader + ?Sized> Holds<'a, R> {
    pub fn new(state: &'a R) -> Self {
        Self { state }
    }

    fn slot(&self, slot: U256) -> Result<U256, RegistryError> {
        Ok(self.state.storage(&HOLDS_ADDRESS, &slot)?)
    }

    pub fn count(&self) -> Result<u64, RegistryError> {
        let slot = layout::count();
        let value = self.slot(slot)?;
        u64::try_from(value).map_err(|_| RegistryError::Corrupt {
            what: "hold count",
            slot,
            value,
        })
    }

    /// Hold `id` with its status as of `height`.
    pub fn hold(&self, id: u64, height: Height) -> Result<Option<Hold>, RegistryError> {
        let slot = layout::hold(id);
        let value = self.slot(slot)?;
        if value.is_zero() {
            return Ok(None);
        }
        let corrupt = RegistryError::Corrupt {
            what: "hold",
            slot,
            value,
        };
        let mut fields = Unpacker::new(value);
        if fields.byte() != 1 {
            return Err(corrupt);
        }
        let status = HoldStatus::from_code(fields.byte())
            .filter(|s| *s != HoldStatus::Expired)
            .ok_or(corrupt)?;
        let (created, expires) = (Height(fields.u64()), Height(fields.u64()));
        let from_identity = IdentityId(fields.u64());
        let status = match status {
            HoldStatus::Waiting if height > expires => HoldStatus::Expired,
            other => other,
        };
        Ok(Some(Hold {
            id,
            from: word_address(self.slot(layout::from(id))?),
            from_identity,
            to: word_address(self.slot(layout::to(id))?),
            value: self.slot(layout::value(id))?,
            created,
            expires,
            status,
        }))
    }
}

fn record(hold: &Hold, status: HoldStatus) -> U256 {
    Packer::default()
        .byte(1)
        .byte(status.code())
        .u64(hold.created.get())
        .u64(hold.expires.get())
        .u64(hold.from_identity.0)
        .finish()
}

/// The slots recording a new hold (and the count).
pub(crate) fn new_hold_writes(hold: &Hold) -> BTreeMap<(Address, U256), U256> {
    let id = hold.id;
    [
        (layout::count(), U256::from(id)),
        (layout::hold(id), record(hold, HoldStatus::Waiting)),
        (layout::from(id), address_word(hold.from)),
        (layout::to(id), address_word(hold.to)),
        (layout::value(id), hold.value),
    ]
    .into_iter()
    .map(|(slot, value)| ((HOLDS_ADDRESS, slot), value))
    .collect()
}

/// The slot write that settles a hold.
pub(crate) fn settled(hold: &Hold, status: HoldStatus) -> ((Address, U256), U256) {
    ((HOLDS_ADDRESS, layout::hold(hold.id)), record(hold, status))
}
