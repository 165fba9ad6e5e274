//! Recording changes to the registry into a block's change set.

use crate::{
    AccountStatus, IdentityId, LimitHolder, Limits, OrgId, Registry, RegistryError, Role, Window,
    layout::{self, Packer, REGISTRY_ADDRESS},
    limits::MAX_LIMITED_ROLES,
};
use alloy_primitives::{Address, B256, Bytes, Selector, U256};
use std::collections::BTreeMap;
use trellis_state::{Account, ChangeSet, StateError, StateReader};
use trellis_types::Height;

/// Changes to the registry on top of a state, checked as they are made (later changes see
/// earlier ones), then written into a [`ChangeSet`] by [`finish`](Self::finish).
pub struct RegistryWriter<'a, R: ?Sized> {
    overlay: Overlay<'a, R>,
}

impl<'a, R: StateReader + ?Sized> RegistryWriter<'a, R> {
    pub fn new(state: &'a R) -> Self {
        Self {
            overlay: Overlay::new(state),
        }
    }

    pub(crate) fn registry(&self) -> Registry<'_, Overlay<'a, R>> {
        Registry::new(&self.overlay)
    }

    pub(crate) fn write(&mut self, slot: U256, value: U256) {
        self.overlay.set(REGISTRY_ADDRESS, slot, value);
    }

    /// The state with every change so far on top, for other system contracts' records.
    pub(crate) fn overlay(&self) -> &Overlay<'a, R> {
        &self.overlay
    }

    pub(crate) fn overlay_mut(&mut self) -> &mut Overlay<'a, R> {
        &mut self.overlay
    }

    /// Every slot written, by address and slot, for whoever applies them.
    pub fn into_writes(self) -> BTreeMap<(Address, U256), U256> {
        self.overlay.slots
    }

    pub fn add_organisation(&mut self, id: OrgId, name: &str) -> Result<(), RegistryError> {
        if name.len() > layout::MAX_NAME {
            return Err(RegistryError::NameTooLong(name.to_owned()));
        }
        if self.registry().organisation(id)?.is_some() {
            return Err(RegistryError::OrganisationExists(id));
        }
        let len = u8::try_from(name.len()).expect("at most 30 bytes");
        let value = Packer::default()
            .byte(1)
            .byte(len)
            .slice(name.as_bytes())
            .finish();
        self.write(layout::org(id.0), value);
        Ok(())
    }

    pub fn add_identity(
        &mut self,
        id: IdentityId,
        organisation: OrgId,
        window: Window,
    ) -> Result<(), RegistryError> {
        check_window(window)?;
        if self.registry().organisation(organisation)?.is_none() {
            return Err(RegistryError::NoOrganisation(organisation));
        }
        if self.registry().identity(id)?.is_some() {
            return Err(RegistryError::IdentityExists(id));
        }
        self.write(layout::identity(id.0), keyed(organisation.0, window));
        Ok(())
    }

    /// Registers `address` as an account of `identity`, with a normal status.
    pub fn add_account(
        &mut self,
        address: Address,
        identity: IdentityId,
        window: Window,
    ) -> Result<(), RegistryError> {
        check_window(window)?;
        if self.registry().identity(identity)?.is_none() {
            return Err(RegistryError::NoIdentity(identity));
        }
        if let Some(held) = self.registry().account(&address)? {
            return Err(RegistryError::AccountTaken {
                account: address,
                holder: held.identity,
            });
        }
        self.write(layout::account(&address), keyed(identity.0, window));
        Ok(())
    }

    /// Changes when identity `id` is valid. Ending its window removes the member from that
    /// block on; its records stay, for the history.
    pub fn set_identity_window(
        &mut self,
        id: IdentityId,
        window: Window,
    ) -> Result<(), RegistryError> {
        check_window(window)?;
        let Some(identity) = self.registry().identity(id)? else {
            return Err(RegistryError::NoIdentity(id));
        };
        self.write(
            layout::identity(id.0),
            keyed(identity.organisation.0, window),
        );
        Ok(())
    }

    /// Changes when account `address` is valid, keeping its identity and status.
    pub fn set_account_window(
        &mut self,
        address: Address,
        window: Window,
    ) -> Result<(), RegistryError> {
        check_window(window)?;
        let Some(account) = self.registry().account(&address)? else {
            return Err(RegistryError::NoAccount(address));
        };
        self.write(layout::account(&address), keyed(account.identity.0, window));
        Ok(())
    }

    pub fn grant(&mut self, identity: IdentityId, role: Role) -> Result<(), RegistryError> {
        if self.registry().identity(identity)?.is_none() {
            return Err(RegistryError::NoIdentity(identity));
        }
        self.write(layout::role(&role, identity.0), U256::from(1));
        Ok(())
    }

    pub fn revoke(&mut self, identity: IdentityId, role: Role) {
        self.write(layout::role(&role, identity.0), U256::ZERO);
    }

    /// Restricts `selector` of `contract` to callers holding `role` (`None`: lifts it).
    pub fn restrict_method(&mut self, contract: Address, selector: Selector, role: Option<Role>) {
        let value = role.map_or(U256::ZERO, |role| U256::from_be_bytes(role.0.0));
        self.write(layout::method(&contract, &selector), value);
    }

    /// Sets `holder`'s limits (all `None`: lifts them), keeping the list of limited roles.
    pub fn set_limits(&mut self, holder: LimitHolder, limits: Limits) -> Result<(), RegistryError> {
        if let LimitHolder::Role(role) = holder {
            let mut roles = self.registry().limited_roles()?;
            let listed = roles.contains(&role);
            if limits.is_none() && listed {
                roles.retain(|r| *r != role);
            } else if !limits.is_none() && !listed {
                if roles.len() == MAX_LIMITED_ROLES {
                    return Err(RegistryError::TooManyLimitedRoles(MAX_LIMITED_ROLES));
                }
                roles.push(role);
            }
            self.write(layout::limited_roles(), U256::from(roles.len()));
            for (i, role) in roles.iter().enumerate() {
                self.write(
                    layout::limited_role(i as u64),
                    U256::from_be_bytes(role.0.0),
                );
            }
            // A slot past the end of a shrunk list is cleared (the list shrinks by one at most).
            self.write(layout::limited_role(roles.len() as u64), U256::ZERO);
        }
        let value = |limit: Option<U256>| limit.unwrap_or(U256::ZERO);
        self.write(holder.per_transaction_slot(), value(limits.per_transaction));
        self.write(holder.per_day_slot(), value(limits.per_day));
        self.write(holder.hold_slot(), value(limits.hold_above));
        Ok(())
    }

    /// Sets an account's status from block `since` on, by proposal `by` (0: genesis).
    pub fn set_status(
        &mut self,
        address: Address,
        status: AccountStatus,
        since: Height,
        by: u64,
    ) -> Result<(), RegistryError> {
        self.write_status(address, status, since, by, None)
    }

    /// Writes an account's status record, refusing to change a final one (abolished, rotated,
    /// revoked, compromised: a retired key never returns).
    pub(crate) fn write_status(
        &mut self,
        address: Address,
        status: AccountStatus,
        since: Height,
        by: u64,
        compromised_since: Option<Height>,
    ) -> Result<(), RegistryError> {
        let Some(account) = self.registry().account(&address)? else {
            return Err(RegistryError::NoAccount(address));
        };
        if account.status == AccountStatus::Abolished {
            return Err(RegistryError::Abolished(address));
        }
        if account.status.is_final() {
            return Err(RegistryError::KeyRetired {
                account: address,
                status: account.status,
            });
        }
        let value = Packer::default()
            .byte(status.code())
            .u64(since.get())
            .u64(by)
            .byte(u8::from(compromised_since.is_some()))
            .u64(compromised_since.map_or(0, Height::get))
            .finish();
        self.write(layout::account_status(&address), value);
        Ok(())
    }

    /// Writes the changes into `changes`, creating the system accounts written to that are new.
    pub fn finish(self, changes: &mut ChangeSet) -> Result<(), RegistryError> {
        let base = self.overlay.base;
        let mut written = std::collections::BTreeSet::new();
        for ((address, slot), value) in self.overlay.slots {
            if written.insert(address) {
                let account = match base.account(&address)? {
                    Some(account) => account,
                    None => system_account(&address, changes),
                };
                changes.set_account(address, account);
            }
            changes.set_storage(address, slot, value);
        }
        Ok(())
    }
}

/// A system account as genesis creates it: never empty (EIP-161), so no transaction's touch can
/// remove it, and with code where Solidity calls it (compilers refuse to call an address without
/// code). The code is never run: the EVM hands calls to the system contracts' handlers.
fn system_account(address: &Address, changes: &mut ChangeSet) -> Account {
    let mut account = Account {
        nonce: 1,
        ..Account::default()
    };
    if *address != REGISTRY_ADDRESS {
        account.code_hash = changes.insert_code(Bytes::from_static(&SYSTEM_CODE));
    }
    account
}

/// The code of a callable system account: `INVALID`, should anything ever run it.
pub const SYSTEM_CODE: [u8; 1] = [0xfe];

fn keyed(key: u64, window: Window) -> U256 {
    Packer::default()
        .byte(1)
        .u64(key)
        .u64(window.from.get())
        .u64(window.until.map_or(0, Height::get))
        .finish()
}

fn check_window(window: Window) -> Result<(), RegistryError> {
    match window.until {
        Some(until) if until <= window.from => Err(RegistryError::EmptyWindow(window)),
        _ => Ok(()),
    }
}

/// A state with some system accounts' slots written on top, checked writes reading earlier ones.
pub(crate) struct Overlay<'a, R: ?Sized> {
    base: &'a R,
    slots: BTreeMap<(Address, U256), U256>,
}

impl<'a, R: StateReader + ?Sized> Overlay<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Self {
            base,
            slots: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, address: Address, slot: U256, value: U256) {
        self.slots.insert((address, slot), value);
    }

    /// Takes `other`'s writes (made over this overlay) as its own.
    pub fn absorb(&mut self, writes: BTreeMap<(Address, U256), U256>) {
        self.slots.extend(writes);
    }
}

impl<R: StateReader + ?Sized> StateReader for Overlay<'_, R> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.base.account(address)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        match self.slots.get(&(*address, *slot)) {
            Some(value) => Ok(*value),
            None => self.base.storage(address, slot),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.base.code(code_hash)
    }
}
