//! Reading the rules from a state.

use crate::{
    AccountRecord, AccountStatus, IdentityId, IdentityRecord, OrgId, RegistryError, Role, Window,
    layout::{self, REGISTRY_ADDRESS, Unpacker},
};
use alloy_primitives::{Address, Selector, U256};
use trellis_state::StateReader;
use trellis_types::Height;

/// The registry as a state holds it.
pub struct Registry<'a, R: ?Sized> {
    state: &'a R,
}

impl<'a, R: StateReader + ?Sized> Registry<'a, R> {
    pub fn new(state: &'a R) -> Self {
        Self { state }
    }

    fn slot(&self, slot: U256) -> Result<U256, RegistryError> {
        Ok(self.state.storage(&REGISTRY_ADDRESS, &slot)?)
    }

    pub(crate) fn slot_value(&self, slot: U256) -> Result<U256, RegistryError> {
        self.slot(slot)
    }

    /// An organisation's name, if it exists.
    pub fn organisation(&self, id: OrgId) -> Result<Option<String>, RegistryError> {
        let slot = layout::org(id.0);
        let value = self.slot(slot)?;
        if value.is_zero() {
            return Ok(None);
        }
        let corrupt = || RegistryError::Corrupt {
            what: "organisation",
            slot,
            value,
        };
        let mut fields = Unpacker::new(value);
        let (marker, len) = (fields.byte(), usize::from(fields.byte()));
        if marker != 1 || len > layout::MAX_NAME {
            return Err(corrupt());
        }
        let name = std::str::from_utf8(&fields.rest()[..len]).map_err(|_| corrupt())?;
        Ok(Some(name.to_owned()))
    }

    pub fn identity(&self, id: IdentityId) -> Result<Option<IdentityRecord>, RegistryError> {
        let slot = layout::identity(id.0);
        let Some((organisation, window)) = self.keyed_record("identity", slot)? else {
            return Ok(None);
        };
        Ok(Some(IdentityRecord {
            id,
            organisation: OrgId(organisation),
            window,
        }))
    }

    /// The identity an account is registered to, with its status.
    pub fn account(&self, address: &Address) -> Result<Option<AccountRecord>, RegistryError> {
        let Some((identity, window)) = self.keyed_record("account", layout::account(address))?
        else {
            return Ok(None);
        };
        let slot = layout::account_status(address);
        let value = self.slot(slot)?;
        let mut fields = Unpacker::new(value);
        let status = AccountStatus::from_code(fields.byte()).ok_or(RegistryError::Corrupt {
            what: "account status",
            slot,
            value,
        })?;
        let status_since = Height(fields.u64());
        let status_by = fields.u64();
        let compromised = fields.byte() == 1;
        let compromised_since = compromised.then(|| Height(fields.u64()));
        let successor = self.slot(layout::account_successor(address))?;
        Ok(Some(AccountRecord {
            address: *address,
            identity: IdentityId(identity),
            window,
            status,
            status_since,
            status_by,
            compromised_since,
            successor: (!successor.is_zero())
                .then(|| Address::from_word(successor.to_be_bytes::<32>().into())),
        }))
    }

    pub fn holds(&self, identity: IdentityId, role: &Role) -> Result<bool, RegistryError> {
        Ok(!self.slot(layout::role(role, identity.0))?.is_zero())
    }

    /// The role a caller needs to call `selector` of `contract`, if the consortium restricted it.
    pub fn method_role(
        &self,
        contract: &Address,
        selector: &Selector,
    ) -> Result<Option<Role>, RegistryError> {
        let value = self.slot(layout::method(contract, selector))?;
        Ok((!value.is_zero()).then(|| Role(value.to_be_bytes().into())))
    }

    /// Whether `address` may act with `role` at `height`: it is registered, valid then and not
    /// frozen or abolished, and its identity is valid then and holds the role.
    pub fn may(
        &self,
        address: &Address,
        role: &Role,
        height: Height,
    ) -> Result<bool, RegistryError> {
        let Some(account) = self.account(address)? else {
            return Ok(false);
        };
        if account.status != AccountStatus::Normal || !account.window.contains(height) {
            return Ok(false);
        }
        let Some(identity) = self.identity(account.identity)? else {
            return Ok(false);
        };
        Ok(identity.window.contains(height) && self.holds(account.identity, role)?)
    }

    /// The fields of a record slot, past its `01` marker; `None`: an empty slot.
    pub(crate) fn record_fields(
        &self,
        what: &'static str,
        slot: U256,
    ) -> Result<Option<Unpacker>, RegistryError> {
        let value = self.slot(slot)?;
        if value.is_zero() {
            return Ok(None);
        }
        let mut fields = Unpacker::new(value);
        if fields.byte() != 1 {
            return Err(RegistryError::Corrupt { what, slot, value });
        }
        Ok(Some(fields))
    }

    /// `01` ‖ a u64 key ‖ a window: identities and accounts.
    fn keyed_record(
        &self,
        what: &'static str,
        slot: U256,
    ) -> Result<Option<(u64, Window)>, RegistryError> {
        let Some(mut fields) = self.record_fields(what, slot)? else {
            return Ok(None);
        };
        let key = fields.u64();
        let from = Height(fields.u64());
        let until = Some(fields.u64()).filter(|u| *u != 0).map(Height);
        Ok(Some((key, Window { from, until })))
    }
}
