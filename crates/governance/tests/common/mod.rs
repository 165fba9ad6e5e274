//! A chain of one bank's governors without the EVM: each call runs on a state and gives its
//! effects, which the next block commits. Shared by the council's and the validators' tests.
#![allow(dead_code)]

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolEvent};
use std::num::NonZeroU64;
use trellis_governance::{
    AccountStatus, Effects, EpochLength, Founders, FoundingIdentity, FoundingOrganisation,
    IdentityId, NewValidator, OrgId, REGISTRY_ADDRESS, RegistryWriter, Role, SystemCall,
    SystemError, Window,
    contracts::{
        Action, GOVERNANCE_ADDRESS, GovernanceError,
        abi::{ITrellisGovernance as Gov, ITrellisRegistry},
    },
    system_call,
};
use trellis_state::{ChangeSet, MemoryStore, StateReader};
use trellis_types::{Epoch, Height, ValidatorId};

pub fn account(n: u8) -> Address {
    Address::repeat_byte(n)
}

/// Epochs of ten blocks.
pub const EPOCH_LENGTH: EpochLength = EpochLength(NonZeroU64::new(10).unwrap());

/// Genesis validator `seed` (0–3), or a newcomer's key.
pub fn validator_key(seed: u8) -> ValidatorId {
    trellis_crypto::ValidatorKey::from_bytes(&[seed; 32]).validator_id()
}

/// Governors 1, 2, 3 (accounts 0x01…, 0x02…, 0x03…) and a teller, 4 (0x04…), in one bank.
pub struct Chain {
    pub state: MemoryStore,
}

impl Chain {
    pub fn new(governors: u8) -> Self {
        let mut identities: Vec<FoundingIdentity> = (1..=governors)
            .map(|n| FoundingIdentity {
                id: IdentityId(u64::from(n)),
                roles: vec![Role::governor(), Role::transactor()],
                accounts: vec![account(n)],
                window: Window::ALWAYS,
            })
            .collect();
        identities.push(FoundingIdentity {
            id: IdentityId(4),
            roles: vec![Role::transactor()],
            accounts: vec![account(4)],
            window: Window::ALWAYS,
        });
        let founders = Founders(vec![FoundingOrganisation {
            id: OrgId(1),
            name: "Bank".into(),
            identities,
        }]);
        let mut state = MemoryStore::new();
        let mut writer = RegistryWriter::new(&state);
        founders.write(&mut writer).unwrap();
        writer.set_epoch_length(EPOCH_LENGTH);
        for seed in 0..4 {
            let validator = NewValidator {
                key: validator_key(seed),
                p2p: None,
                identity: None,
            };
            writer.add_validator(validator, Epoch(0)).unwrap();
        }
        let mut changes = ChangeSet::new();
        writer.finish(&mut changes).unwrap();
        state.commit(Height(0), &changes).unwrap();
        Self { state }
    }

    pub fn height(&self) -> Height {
        self.state.next_height()
    }

    pub fn call(&self, from: u8, to: Address, input: Vec<u8>) -> Result<Effects, SystemError> {
        let call = SystemCall {
            caller: account(from),
            height: self.height(),
            input: &input,
            is_static: false,
            value: U256::ZERO,
        };
        system_call(&self.state, &to, &call).expect("a system address")
    }

    /// Runs a call in a block of its own and commits what it wrote.
    pub fn send(&mut self, from: u8, input: Vec<u8>) -> Result<Effects, SystemError> {
        let effects = self.call(from, GOVERNANCE_ADDRESS, input)?;
        self.commit(&effects);
        Ok(effects)
    }

    pub fn commit(&mut self, effects: &Effects) {
        let mut changes = ChangeSet::new();
        for ((address, slot), value) in &effects.writes {
            if changes.account(address).is_none() {
                let account = self.state.account(address).unwrap();
                changes.set_account(*address, account.expect("system accounts exist"));
            }
            changes.set_storage(*address, *slot, *value);
        }
        let height = self.height();
        self.state.commit(height, &changes).unwrap();
    }

    pub fn skip(&mut self, blocks: u64) {
        for _ in 0..blocks {
            self.commit(&Effects::default());
        }
    }

    pub fn propose(
        &mut self,
        from: u8,
        action: &Action,
        blocks: u64,
    ) -> Result<Effects, SystemError> {
        self.send(from, propose_call(action.encode(), blocks))
    }

    pub fn vote(&mut self, from: u8, id: u64, approve: bool) -> Result<Effects, SystemError> {
        self.send(from, Gov::voteCall { id, approve }.abi_encode())
    }

    pub fn proposal(&self, id: u64) -> Gov::proposalReturn {
        let effects = self
            .call(1, GOVERNANCE_ADDRESS, Gov::proposalCall { id }.abi_encode())
            .unwrap();
        Gov::proposalCall::abi_decode_returns(&effects.output).unwrap()
    }

    pub fn proposal_count(&self) -> u64 {
        let input = Gov::proposalCountCall {}.abi_encode();
        let effects = self.call(1, GOVERNANCE_ADDRESS, input).unwrap();
        Gov::proposalCountCall::abi_decode_returns(&effects.output).unwrap()
    }

    pub fn status_of(&self, who: u8) -> AccountStatus {
        let input = ITrellisRegistry::accountOfCall {
            account: account(who),
        }
        .abi_encode();
        let effects = self.call(9, REGISTRY_ADDRESS, input).unwrap();
        let record = ITrellisRegistry::accountOfCall::abi_decode_returns(&effects.output).unwrap();
        assert!(record.registered);
        AccountStatus::from_code(record.status).unwrap()
    }
}

pub fn propose_call(action: Bytes, voting_blocks: u64) -> Vec<u8> {
    Gov::proposeCall {
        action,
        votingBlocks: voting_blocks,
    }
    .abi_encode()
}

pub fn freeze(who: u8) -> Action {
    Action::SetAccountStatus {
        account: account(who),
        status: AccountStatus::Frozen,
    }
}

pub fn refused(result: Result<Effects, SystemError>) -> GovernanceError {
    match result {
        Err(SystemError::Governance(error)) => error,
        other => panic!("expected a governance refusal, got {other:?}"),
    }
}

/// The registry's refusal in `result`.
pub fn registry_error(result: Result<Effects, SystemError>) -> trellis_governance::RegistryError {
    match result {
        Err(SystemError::Registry(error)) => error,
        other => panic!("expected a registry refusal, got {other:?}"),
    }
}

pub fn events<E: SolEvent>(effects: &Effects) -> Vec<E> {
    effects
        .logs
        .iter()
        .filter(|log| log.address == GOVERNANCE_ADDRESS)
        .filter_map(|log| E::decode_log_data(&log.data).ok())
        .collect()
}

/// Proposes `action` as governor 1 and approves it as governor 2; returns why it was refused
/// (a proposal is tried on the state when it is made) or failed, if it did.
pub fn pass(chain: &mut Chain, action: &Action) -> Option<String> {
    let id = chain.proposal_count() + 1;
    if let Err(refusal) = chain.propose(1, action, 100) {
        return Some(refusal.to_string());
    }
    let effects = chain.vote(2, id, true).unwrap();
    let failed = events::<Gov::Failed>(&effects);
    assert_eq!(
        failed.len() + events::<Gov::Executed>(&effects).len(),
        1,
        "the second approval decides"
    );
    failed.into_iter().next().map(|failed| failed.reason)
}
