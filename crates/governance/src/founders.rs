//! The organisations and identities a chain starts with, as its genesis lists them.

use crate::{
    IdentityId, OrgId, RegistryError, RegistryWriter, Role, Window,
    contracts::{Records, Thresholds},
};
use alloy_primitives::{Address, Keccak256};
use trellis_state::StateReader;

/// Every founding organisation with its identities. Empty: a chain without registered members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Founders(pub Vec<FoundingOrganisation>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundingOrganisation {
    pub id: OrgId,
    pub name: String,
    pub identities: Vec<FoundingIdentity>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundingIdentity {
    pub id: IdentityId,
    pub roles: Vec<Role>,
    pub accounts: Vec<Address>,
    pub window: Window,
}

impl Founders {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records every organisation, identity, account (valid as long as its identity) and role,
    /// and seats the council: every founding governor with weight 1, the default thresholds.
    pub fn write<R: StateReader + ?Sized>(
        &self,
        writer: &mut RegistryWriter<'_, R>,
    ) -> Result<(), RegistryError> {
        let governors: Vec<IdentityId> = self
            .0
            .iter()
            .flat_map(|org| &org.identities)
            .filter(|identity| identity.roles.contains(&Role::governor()))
            .map(|identity| identity.id)
            .collect();
        if governors.is_empty() {
            return Err(RegistryError::NoGovernor);
        }
        for org in &self.0 {
            writer.add_organisation(org.id, &org.name)?;
            for identity in &org.identities {
                writer.add_identity(identity.id, org.id, identity.window)?;
                for account in &identity.accounts {
                    writer.add_account(*account, identity.id, identity.window)?;
                }
                for role in &identity.roles {
                    writer.grant(identity.id, *role)?;
                }
            }
        }
        let ((address, slot), value) = crate::contracts::holds::genesis_write();
        writer.overlay_mut().set(address, slot, value);
        let mut council = Records::new(writer.overlay_mut());
        council.set_thresholds(Thresholds::DEFAULT);
        for governor in &governors {
            council.set_weight(*governor, 1);
        }
        council.set_total_weight(governors.len() as u64);
        Ok(())
    }

    /// Feeds the founders to a genesis's configuration hash in a canonical order (organisations
    /// and identities by id, roles and accounts sorted), so two genesis files listing the same
    /// members in another order make the same chain.
    pub fn hash_into(&self, hasher: &mut Keccak256) {
        let mut orgs: Vec<&FoundingOrganisation> = self.0.iter().collect();
        orgs.sort_by_key(|org| org.id);
        hasher.update((orgs.len() as u64).to_be_bytes());
        for org in orgs {
            hasher.update(org.id.0.to_be_bytes());
            hasher.update((org.name.len() as u64).to_be_bytes());
            hasher.update(org.name.as_bytes());
            let mut identities: Vec<&FoundingIdentity> = org.identities.iter().collect();
            identities.sort_by_key(|identity| identity.id);
            hasher.update((identities.len() as u64).to_be_bytes());
            for identity in identities {
                hasher.update(identity.id.0.to_be_bytes());
                hasher.update(identity.window.from.get().to_be_bytes());
                hasher.update(identity.window.until.map_or(0, |h| h.get()).to_be_bytes());
                let mut roles = identity.roles.clone();
                roles.sort();
                hasher.update((roles.len() as u64).to_be_bytes());
                for role in roles {
                    hasher.update(role.0);
                }
                let mut accounts = identity.accounts.clone();
                accounts.sort();
                hasher.update((accounts.len() as u64).to_be_bytes());
                for account in accounts {
                    hasher.update(account);
                }
            }
        }
    }
}
