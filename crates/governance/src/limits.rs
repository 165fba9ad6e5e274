//! Transaction rules against fraud: how much value an identity may send in one transaction
//! and in one day, set for the identity itself or for a role it holds (the strictest applies).
//!
//! A day is a UTC day of the block's timestamp, which every node agrees on, so every node
//! counts the same spending. Only identities with a daily limit have their spending counted.

use crate::{IdentityId, Registry, RegistryError, Role, layout};
use alloy_primitives::U256;
use std::fmt;
use trellis_state::StateReader;
use trellis_types::Timestamp;

/// At most this many roles carry limits (each is read for every value transfer).
pub const MAX_LIMITED_ROLES: usize = 16;

/// Whose limits: an identity's own, or every holder's of a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHolder {
    Identity(IdentityId),
    Role(Role),
}

impl LimitHolder {
    /// The key of its limits' slots.
    fn key(&self) -> Vec<u8> {
        match self {
            Self::Identity(identity) => [b"i".as_slice(), &identity.0.to_be_bytes()].concat(),
            Self::Role(role) => [b"r".as_slice(), role.0.as_slice()].concat(),
        }
    }

    pub(crate) fn per_transaction_slot(&self) -> U256 {
        layout::limit_per_transaction(&self.key())
    }

    pub(crate) fn per_day_slot(&self) -> U256 {
        layout::limit_per_day(&self.key())
    }

    pub(crate) fn hold_slot(&self) -> U256 {
        layout::limit_hold(&self.key())
    }
}

impl fmt::Display for LimitHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Identity(identity) => write!(f, "identity {identity}"),
            Self::Role(role) => write!(f, "the {role} role"),
        }
    }
}

/// Value limits in wei; `None`: unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_transaction: Option<U256>,
    pub per_day: Option<U256>,
    /// A transfer of more is held until an approver of another identity co-signs it.
    pub hold_above: Option<U256>,
}

impl Limits {
    pub fn is_none(&self) -> bool {
        self.per_transaction.is_none() && self.per_day.is_none() && self.hold_above.is_none()
    }
}

/// A UTC day: days since the Unix epoch of a block's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub u64);

impl Day {
    pub fn of(timestamp: Timestamp) -> Self {
        Self(timestamp.seconds() / 86_400)
    }
}

/// The strictest limit of each kind that applies to an identity, with where it comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applicable {
    pub per_transaction: Option<(U256, LimitHolder)>,
    pub per_day: Option<(U256, LimitHolder)>,
    pub hold_above: Option<(U256, LimitHolder)>,
}

fn stricter(
    current: Option<(U256, LimitHolder)>,
    candidate: Option<U256>,
    holder: LimitHolder,
) -> Option<(U256, LimitHolder)> {
    match (current, candidate) {
        (Some((held, _)), Some(value)) if value < held => Some((value, holder)),
        (None, Some(value)) => Some((value, holder)),
        (current, _) => current,
    }
}

impl<R: StateReader + ?Sized> Registry<'_, R> {
    pub fn limits(&self, holder: LimitHolder) -> Result<Limits, RegistryError> {
        let read = |slot| -> Result<Option<U256>, RegistryError> {
            let value = self.slot_value(slot)?;
            Ok((!value.is_zero()).then_some(value))
        };
        Ok(Limits {
            per_transaction: read(holder.per_transaction_slot())?,
            per_day: read(holder.per_day_slot())?,
            hold_above: read(holder.hold_slot())?,
        })
    }

    /// The roles that carry limits, in the order they were given them.
    pub fn limited_roles(&self) -> Result<Vec<Role>, RegistryError> {
        let count = self.slot_value(layout::limited_roles())?;
        let count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= MAX_LIMITED_ROLES)
            .ok_or(RegistryError::Corrupt {
                what: "limited role count",
                slot: layout::limited_roles(),
                value: count,
            })?;
        (0..count)
            .map(|i| {
                let value = self.slot_value(layout::limited_role(i as u64))?;
                Ok(Role(value.to_be_bytes().into()))
            })
            .collect()
    }

    /// The limits that apply to `identity`: its own and those of every limited role it holds,
    /// the strictest of each kind.
    pub fn applicable(&self, identity: IdentityId) -> Result<Applicable, RegistryError> {
        let own = self.limits(LimitHolder::Identity(identity))?;
        let holder = LimitHolder::Identity(identity);
        let mut applicable = Applicable {
            per_transaction: own.per_transaction.map(|v| (v, holder)),
            per_day: own.per_day.map(|v| (v, holder)),
            hold_above: own.hold_above.map(|v| (v, holder)),
        };
        for role in self.limited_roles()? {
            if !self.holds(identity, &role)? {
                continue;
            }
            let holder = LimitHolder::Role(role);
            let limits = self.limits(holder)?;
            applicable.per_transaction =
                stricter(applicable.per_transaction, limits.per_transaction, holder);
            applicable.per_day = stricter(applicable.per_day, limits.per_day, holder);
            applicable.hold_above = stricter(applicable.hold_above, limits.hold_above, holder);
        }
        Ok(applicable)
    }

    /// What `identity` sent on `day` (counted only while it has a daily limit).
    pub fn spent(&self, identity: IdentityId, day: Day) -> Result<U256, RegistryError> {
        self.slot_value(layout::spent(identity.0, day.0))
    }
}

/// A limit `sender` would break by sending `value` on `day`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    PerTransaction {
        limit: U256,
        by: LimitHolder,
    },
    PerDay {
        limit: U256,
        spent: U256,
        by: LimitHolder,
    },
}

/// Whether sending `value` on `day` breaks a limit of `identity`, and if it is within them, the
/// day's new total to record (`None` when it has no daily limit: nothing is counted).
pub fn check_spending<R: StateReader + ?Sized>(
    state: &R,
    identity: IdentityId,
    value: U256,
    day: Day,
) -> Result<Result<Option<U256>, Breach>, RegistryError> {
    let registry = Registry::new(state);
    let applicable = registry.applicable(identity)?;
    if let Some((limit, by)) = applicable.per_transaction
        && value > limit
    {
        return Ok(Err(Breach::PerTransaction { limit, by }));
    }
    let Some((limit, by)) = applicable.per_day else {
        return Ok(Ok(None));
    };
    let spent = registry.spent(identity, day)?;
    let total = spent.saturating_add(value);
    if total > limit {
        return Ok(Err(Breach::PerDay { limit, spent, by }));
    }
    Ok(Ok(Some(total)))
}

/// The slot holding what `identity` sent on `day`, for whoever records a new total.
pub fn spent_slot(identity: IdentityId, day: Day) -> U256 {
    layout::spent(identity.0, day.0)
}
