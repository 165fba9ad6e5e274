//! Who deployed each contract of a governed chain: the account that signed the transaction
//! creating it, directly or through a factory (the account the deployer rule held to account,
//! `rules.rs`). Execution writes the record when the creating transaction succeeds; the API lets
//! a member see the transactions to, and the logs of, the contracts it deployed.

use crate::{
    Registry, RegistryError,
    layout::{self, Packer},
};
use alloy_primitives::{Address, U256};
use trellis_state::StateReader;
use trellis_types::Height;

/// A contract's deployment, as the registry records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub contract: Address,
    /// The signer of the transaction that created it.
    pub deployer: Address,
    /// The block that created it.
    pub height: Height,
}

impl Deployment {
    /// The registry slot and value that record it.
    pub fn record(&self) -> (U256, U256) {
        let value = Packer::default()
            .byte(1)
            .slice(self.deployer.as_slice())
            .u64(self.height.0)
            .finish();
        (layout::deployment(&self.contract), value)
    }
}

impl<R: StateReader + ?Sized> Registry<'_, R> {
    /// Who deployed `contract`, if a transaction of this governed chain created it (a contract
    /// from genesis, or created before the chain recorded deployments, has no record).
    pub fn deployment(&self, contract: &Address) -> Result<Option<Deployment>, RegistryError> {
        let slot = layout::deployment(contract);
        let Some(mut fields) = self.record_fields("deployment", slot)? else {
            return Ok(None);
        };
        let deployer = Address::from(fields.bytes::<20>());
        let height = Height(fields.u64());
        Ok(Some(Deployment {
            contract: *contract,
            deployer,
            height,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_state::{Account, ChangeSet, MemoryStore};

    #[test]
    fn a_recorded_deployment_reads_back() {
        let deployment = Deployment {
            contract: Address::repeat_byte(0xc0),
            deployer: Address::repeat_byte(0xd1),
            height: Height(u64::MAX - 1),
        };
        let (slot, value) = deployment.record();
        let mut changes = ChangeSet::new();
        changes.set_account(layout::REGISTRY_ADDRESS, Account::default());
        changes.set_storage(layout::REGISTRY_ADDRESS, slot, value);
        let mut state = MemoryStore::new();
        state.commit(Height(0), &changes).unwrap();
        let registry = Registry::new(&state);
        assert_eq!(
            registry.deployment(&deployment.contract).unwrap(),
            Some(deployment)
        );
        assert_eq!(registry.deployment(&deployment.deployer).unwrap(), None);
    }
}
