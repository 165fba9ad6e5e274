//! Recording changes to the registry into a block's change set.

use crate::{
    AccountStatus, IdentityId, OrgId, Registry, RegistryError, Role, Window,
    layout::{self, Packer, REGISTRY_ADDRESS},
};
use alloy_primitives::{Address, B256, Bytes, U256};
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
            overlay: Overlay {
                base: state,
                slots: BTreeMap::new(),
            },
        }
    }

    fn registry(&self) -> Registry<'_, Overlay<'a, R>> {
        Registry::new(&self.overlay)
    }

    fn write(&mut self, slot: U256, value: U256) {
        self.overlay.slots.insert(slot, value);
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

    /// Sets an account's status from block `since` on, by proposal `by` (0: genesis).
    pub fn set_status(
        &mut self,
        address: Address,
        status: AccountStatus,
        since: Height,
        by: u64,
    ) -> Result<(), RegistryError> {
        let Some(account) = self.registry().account(&address)? else {
            return Err(RegistryError::NoAccount(address));
        };
        if account.status == AccountStatus::Abolished {
            return Err(RegistryError::Abolished(address));
        }
        let value = Packer::default()
            .byte(status.code())
            .u64(since.get())
            .u64(by)
            .finish();
        self.write(layout::account_status(&address), value);
        Ok(())
    }

    /// Writes the changes into `changes` (creating the registry's account if it is new).
    pub fn finish(self, changes: &mut ChangeSet) -> Result<(), RegistryError> {
        let account = self
            .overlay
            .base
            .account(&REGISTRY_ADDRESS)?
            .unwrap_or(Account {
                // Not empty (EIP-161), so no transaction's touch can remove it.
                nonce: 1,
                ..Account::default()
            });
        changes.set_account(REGISTRY_ADDRESS, account);
        for (slot, value) in self.overlay.slots {
            changes.set_storage(REGISTRY_ADDRESS, slot, value);
        }
        Ok(())
    }
}

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

/// The base state with the registry slots written so far on top.
struct Overlay<'a, R: ?Sized> {
    base: &'a R,
    slots: BTreeMap<U256, U256>,
}

impl<R: StateReader + ?Sized> StateReader for Overlay<'_, R> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.base.account(address)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        match self.slots.get(slot) {
            Some(value) if *address == REGISTRY_ADDRESS => Ok(*value),
            _ => self.base.storage(address, slot),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.base.code(code_hash)
    }
}
