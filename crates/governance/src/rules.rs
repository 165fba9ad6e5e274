//! The check every transaction passes, at admission and in execution alike, so a transaction
//! one node refuses is refused by every node.

use crate::{
    AccountStatus, IdentityId, Registry, RegistryError, Role, Window, layout::REGISTRY_ADDRESS,
};
use crate::{Breach, Day, LimitHolder, check_spending};
use alloy_primitives::{Address, Selector, U256};
use trellis_state::StateReader;
use trellis_types::Height;

/// Why the consortium's rules refuse a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("account {0} is not registered to any identity of the consortium")]
    Unregistered(Address),
    #[error("account {account} is {status} since block {since} {}{}", crate::status_setter(*.by), suspected(.compromised_since))]
    Stopped {
        account: Address,
        status: AccountStatus,
        since: Height,
        by: u64,
        compromised_since: Option<Height>,
    },
    #[error("account {account} is valid from block {} {}, not at block {height}", .window.from, until(.window))]
    AccountNotValid {
        account: Address,
        window: Window,
        height: Height,
    },
    #[error("identity {identity} of account {account} is valid from block {} {}, not at block {height}", .window.from, until(.window))]
    IdentityNotValid {
        account: Address,
        identity: IdentityId,
        window: Window,
        height: Height,
    },
    #[error("account {account} (identity {identity}) does not hold the {role} role")]
    MissingRole {
        account: Address,
        identity: IdentityId,
        role: Role,
    },
    #[error(
        "account {} may send at most {} wei in one transaction (the limit of {}), not {}",
        .0.account, .0.limit, .0.by, .0.value
    )]
    ValueAboveLimit(Box<OverLimit>),
    #[error(
        "account {} would send {} wei more today, after {} already, above the daily limit of {} wei of {}",
        .0.account, .0.value, .0.spent, .0.limit, .0.by
    )]
    DailyLimitReached(Box<OverLimit>),
    #[error(
        "account {} sends {} wei, above the hold threshold of {} wei of {}: a held transfer must be a plain transfer to an account without code (send the value alone)",
        .0.account, .0.value, .0.limit, .0.by
    )]
    NotHoldable(Box<OverLimit>),
    #[error(
        "account {account} may not call function {selector} of {contract}: it needs the {role} role"
    )]
    MethodNotPermitted {
        account: Address,
        contract: Address,
        selector: Selector,
        role: Role,
    },
}

/// A transfer over a value limit (boxed in [`Refusal`]: it is the largest refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub account: Address,
    pub value: U256,
    pub limit: U256,
    /// Whose limit it is.
    pub by: LimitHolder,
    /// What the identity sent already that day (zero for a per-transaction limit).
    pub spent: U256,
}

fn suspected(since: &Option<Height>) -> String {
    since.map_or_else(String::new, |since| {
        format!(" (suspected of misuse from block {since})")
    })
}

fn until(window: &Window) -> String {
    window
        .until
        .map_or_else(|| "on".to_owned(), |until| format!("until block {until}"))
}

/// Whether the chain has a registry at all (its genesis listed founders): without one, nothing
/// is checked.
pub fn governed<R: StateReader + ?Sized>(state: &R) -> Result<bool, RegistryError> {
    Ok(state.account(&REGISTRY_ADDRESS)?.is_some())
}

/// Why `sender` may not send a transaction in block `height` (one creating a contract if
/// `creates`), read from the registry in `state`; `None` if it may. Every sender needs the
/// transactor role, a contract creation the deployer role too. Call it only on a
/// [`governed`] chain.
pub fn refusal<R: StateReader + ?Sized>(
    state: &R,
    sender: &Address,
    creates: bool,
    height: Height,
) -> Result<Option<Refusal>, RegistryError> {
    let registry = Registry::new(state);
    let Some(account) = registry.account(sender)? else {
        return Ok(Some(Refusal::Unregistered(*sender)));
    };
    if account.status != AccountStatus::Normal {
        return Ok(Some(Refusal::Stopped {
            account: *sender,
            status: account.status,
            since: account.status_since,
            by: account.status_by,
            compromised_since: account.compromised_since,
        }));
    }
    if !account.window.contains(height) {
        return Ok(Some(Refusal::AccountNotValid {
            account: *sender,
            window: account.window,
            height,
        }));
    }
    let identity = registry
        .identity(account.identity)?
        .ok_or(RegistryError::NoIdentity(account.identity))?;
    if !identity.window.contains(height) {
        return Ok(Some(Refusal::IdentityNotValid {
            account: *sender,
            identity: identity.id,
            window: identity.window,
            height,
        }));
    }
    let needed = [Some(Role::transactor()), creates.then(Role::deployer)];
    for role in needed.into_iter().flatten() {
        if !registry.holds(identity.id, &role)? {
            return Ok(Some(Refusal::MissingRole {
                account: *sender,
                identity: identity.id,
                role,
            }));
        }
    }
    Ok(None)
}

/// What a transaction does, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    Create,
    /// A call of `contract`'s function `selector` (`None`: no function named, a transfer).
    Call {
        contract: Address,
        selector: Option<Selector>,
    },
}

impl Intent {
    /// The intent of a transaction to `to` (`None`: a creation) with `input`.
    pub fn of(to: Option<Address>, input: &[u8]) -> Self {
        match to {
            None => Self::Create,
            Some(contract) => Self::Call {
                contract,
                selector: input.get(..4).map(Selector::from_slice),
            },
        }
    }
}

/// A transaction as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub sender: Address,
    pub intent: Intent,
    /// The value it sends.
    pub value: U256,
}

/// When a transaction runs: its block's height, and the UTC day of its block's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When {
    pub height: Height,
    pub day: Day,
}

/// Why `request` may not run `when`: [`refusal`], then the function it calls, if the consortium
/// restricted it ([`method_refusal`]), then its value against the sender's limits. The one
/// check admission and execution both make. Call it only on a [`governed`] chain.
pub fn tx_refusal<R: StateReader + ?Sized>(
    state: &R,
    request: &Request,
    when: When,
) -> Result<Option<Refusal>, RegistryError> {
    let sender = &request.sender;
    let creates = request.intent == Intent::Create;
    if let Some(refused) = refusal(state, sender, creates, when.height)? {
        return Ok(Some(refused));
    }
    if let Intent::Call {
        contract,
        selector: Some(selector),
    } = request.intent
        && let Some(refused) = method_refusal(state, sender, &contract, &selector, when.height)?
    {
        return Ok(Some(refused));
    }
    if request.value.is_zero() {
        return Ok(None);
    }
    let identity = Registry::new(state)
        .account(sender)?
        .ok_or(RegistryError::NoAccount(*sender))?
        .identity;
    let over = |limit, by, spent| {
        Box::new(OverLimit {
            account: *sender,
            value: request.value,
            limit,
            by,
            spent,
        })
    };
    let breach = check_spending(state, identity, request.value, when.day)?;
    if breach.is_ok()
        && let Some((limit, by)) = hold_threshold(state, identity, request.value)?
        && !holdable(state, request)?
    {
        return Ok(Some(Refusal::NotHoldable(over(limit, by, U256::ZERO))));
    }
    Ok(match breach {
        Ok(_) => None,
        Err(Breach::PerTransaction { limit, by }) => {
            Some(Refusal::ValueAboveLimit(over(limit, by, U256::ZERO)))
        }
        Err(Breach::PerDay { limit, spent, by }) => {
            Some(Refusal::DailyLimitReached(over(limit, by, spent)))
        }
    })
}

/// The slot write that records a transaction's value against its sender's daily limit once it
/// ran: `None` if nothing is counted (no value, or no daily limit applies).
pub fn spending_record<R: StateReader + ?Sized>(
    state: &R,
    sender: &Address,
    value: U256,
    day: Day,
) -> Result<Option<(U256, U256)>, RegistryError> {
    if value.is_zero() {
        return Ok(None);
    }
    let Some(account) = Registry::new(state).account(sender)? else {
        return Ok(None);
    };
    let applicable = Registry::new(state).applicable(account.identity)?;
    if applicable.per_day.is_none() {
        return Ok(None);
    }
    let slot = crate::spent_slot(account.identity, day);
    let spent = Registry::new(state).spent(account.identity, day)?;
    Ok(Some((slot, spent.saturating_add(value))))
}

/// Why the account that signed a transaction may not call `selector` of `contract` at `height`
/// (the consortium restricted it to a role the account does not hold); `None` if it may.
/// Checked for the transaction's own call and for every call it makes on, so a contract cannot
/// be used to reach a function its caller may not call.
pub fn method_refusal<R: StateReader + ?Sized>(
    state: &R,
    origin: &Address,
    contract: &Address,
    selector: &Selector,
    height: Height,
) -> Result<Option<Refusal>, RegistryError> {
    let registry = Registry::new(state);
    let Some(role) = registry.method_role(contract, selector)? else {
        return Ok(None);
    };
    if registry.may(origin, &role, height)? {
        return Ok(None);
    }
    Ok(Some(Refusal::MethodNotPermitted {
        account: *origin,
        contract: *contract,
        selector: *selector,
        role,
    }))
}

/// The hold threshold `value` exceeds for `identity`, if any.
fn hold_threshold<R: StateReader + ?Sized>(
    state: &R,
    identity: IdentityId,
    value: U256,
) -> Result<Option<(U256, LimitHolder)>, RegistryError> {
    let applicable = Registry::new(state).applicable(identity)?;
    Ok(applicable.hold_above.filter(|(limit, _)| value > *limit))
}

/// Whether `request` can wait in escrow: a plain transfer (no function named) to an account
/// without code, whose value can later be released without running anything.
fn holdable<R: StateReader + ?Sized>(state: &R, request: &Request) -> Result<bool, RegistryError> {
    let Intent::Call {
        contract: to,
        selector: None,
    } = request.intent
    else {
        return Ok(false);
    };
    let code_hash = state.account(&to)?.map(|account| account.code_hash);
    Ok(code_hash.is_none_or(|hash| hash == trellis_state::EMPTY_CODE_HASH))
}

/// The sender's identity if `request`, which the rules let through, is to be held rather than
/// delivered (its value is above the sender's hold threshold).
pub fn held<R: StateReader + ?Sized>(
    state: &R,
    request: &Request,
) -> Result<Option<IdentityId>, RegistryError> {
    if request.value.is_zero() {
        return Ok(None);
    }
    let Some(account) = Registry::new(state).account(&request.sender)? else {
        return Ok(None);
    };
    let threshold = hold_threshold(state, account.identity, request.value)?;
    Ok(threshold.map(|_| account.identity))
}
