//! The genesis: what every node of a chain agrees on before the first block.

use alloy_consensus::constants::EMPTY_ROOT_HASH;
use alloy_primitives::{Address, U256};
use std::collections::BTreeMap;
use trellis_execution::ExecutionConfig;
use trellis_governance::{
    ChainParams, EpochLength, Founders, NewValidator, NodeRole, RegistryError, RegistryWriter,
    SYSTEM_ADDRESSES,
};
use trellis_state::{Account, ChangeSet, MemoryStore};
use trellis_types::{
    Block, BlockHash, Bloom, ChainId, Epoch, Header, Height, StateRoot, Timestamp, ValidatorId,
    View, transactions_root,
};

/// A chain's genesis. Two nodes with different genesis blocks are on different chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub chain_id: ChainId,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub block_gas_limit: u64,
    /// The fixed base fee per gas (wei); 0 makes gas free.
    pub gas_price: u64,
    /// The validators' ed25519 public keys.
    pub validators: Vec<ValidatorId>,
    /// The full nodes' ed25519 transport keys: on a governed chain, recorded in the registry
    /// (so governance can rotate or cut them off); otherwise only what p2p admits.
    pub full_nodes: Vec<ValidatorId>,
    /// Initial balances, in wei.
    pub alloc: BTreeMap<Address, U256>,
    /// The founding organisations and identities, written into the registry.
    pub founders: Founders,
    /// Blocks per epoch on a governed chain (one with founders), whose validator set changes
    /// at epoch boundaries; a chain without founders keeps its validators in one epoch.
    pub epoch_length: EpochLength,
}

/// Why a genesis cannot start a chain.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GenesisError {
    #[error("the genesis names no validators")]
    NoValidators,
    #[error("node key {0:?} is listed twice (among the validators and full nodes)")]
    DuplicateValidator(ValidatorId),
    #[error("chain id 0 is not allowed (EIP-155 signatures need a non-zero id)")]
    ZeroChainId,
    #[error("block gas limit {0} is below 21000, the cost of the simplest transaction")]
    GasLimitTooLow(u64),
    #[error("the founding members: {0}")]
    Founders(#[from] RegistryError),
    #[error("address {0} is the registry's system account: it cannot be given a balance")]
    ReservedAddress(Address),
    #[error("epoch_length {0} is too short: an epoch has at least 2 blocks")]
    EpochTooShort(u64),
}

impl Genesis {
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.chain_id == 0 {
            return Err(GenesisError::ZeroChainId);
        }
        if self.block_gas_limit < 21_000 {
            return Err(GenesisError::GasLimitTooLow(self.block_gas_limit));
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in self.validators.iter().chain(&self.full_nodes) {
            if !seen.insert(*v) {
                return Err(GenesisError::DuplicateValidator(*v));
            }
        }
        if let Some(reserved) = SYSTEM_ADDRESSES
            .iter()
            .find(|address| self.alloc.contains_key(*address))
        {
            return Err(GenesisError::ReservedAddress(*reserved));
        }
        if self.epoch_length.0.get() < 2 {
            return Err(GenesisError::EpochTooShort(self.epoch_length.0.get()));
        }
        self.registry_changes(&mut ChangeSet::new())?;
        Ok(())
    }

    /// Writes the founders into the registry of the empty state.
    fn registry_changes(&self, changes: &mut ChangeSet) -> Result<(), RegistryError> {
        if self.founders.is_empty() {
            return Ok(());
        }
        let empty = MemoryStore::new();
        let mut writer = RegistryWriter::new(&empty);
        self.founders.write(&mut writer)?;
        writer.set_epoch_length(self.epoch_length);
        writer.set_chain_params(ChainParams {
            block_gas_limit: self.block_gas_limit,
            base_fee_per_gas: self.gas_price,
        })?;
        let roles = [
            (NodeRole::Validator, &self.validators),
            (NodeRole::FullNode, &self.full_nodes),
        ];
        for (role, keys) in roles {
            for key in keys {
                let node = NewValidator {
                    key: *key,
                    p2p: None,
                    identity: None,
                };
                writer.add_node(role, node, Epoch(0))?;
            }
        }
        writer.finish(changes)
    }

    /// The epoch length of a chain whose validators may change (a governed one); `None`: the
    /// genesis validators run the chain in one epoch.
    pub fn epochs(&self) -> Option<EpochLength> {
        (!self.founders.is_empty()).then_some(self.epoch_length)
    }

    pub fn execution_config(&self) -> ExecutionConfig {
        ExecutionConfig {
            chain_id: self.chain_id,
            block_gas_limit: self.block_gas_limit,
            base_fee_per_gas: self.gas_price,
        }
    }

    /// The state the chain starts from.
    pub fn changes(&self) -> ChangeSet {
        let mut changes = ChangeSet::new();
        for (address, balance) in &self.alloc {
            changes.set_account(*address, Account::with_balance(*balance));
        }
        self.registry_changes(&mut changes)
            .unwrap_or_else(|e| panic!("a validated genesis writes its founders: {e}"));
        changes
    }

    /// Block 0 of this genesis, its state root computed in memory from the allocations (a node
    /// computes the same root in its data directory).
    ///
    /// Runs a runtime of its own: not for use inside one.
    pub fn initial_block(&self) -> Block {
        let root = trellis_state::genesis_root(&self.changes())
            .unwrap_or_else(|e| panic!("the genesis state cannot be built in memory: {e}"));
        self.block(root)
    }

    /// keccak-256 of every genesis setting in a fixed order: chain id, timestamp, gas limit,
    /// gas price, the validators (sorted), the allocations (by address) and the founders (if
    /// any, see [`Founders::hash_into`], then the epoch length). It stands in block
    /// 0's parent field, so the genesis block hash identifies the whole configuration, not only
    /// the state: two chains that differ in chain id or validators differ from block 0 on.
    pub fn config_hash(&self) -> BlockHash {
        let mut hasher = alloy_primitives::Keccak256::new();
        hasher.update(b"trellis.genesis.v1");
        hasher.update(self.chain_id.to_be_bytes());
        hasher.update(self.timestamp.to_be_bytes());
        hasher.update(self.block_gas_limit.to_be_bytes());
        hasher.update(self.gas_price.to_be_bytes());
        let mut validators = self.validators.clone();
        validators.sort();
        hasher.update((validators.len() as u64).to_be_bytes());
        for v in &validators {
            hasher.update(v.0);
        }
        hasher.update((self.alloc.len() as u64).to_be_bytes());
        for (address, balance) in &self.alloc {
            hasher.update(address);
            hasher.update(balance.to_be_bytes::<32>());
        }
        // Absent from chains without founders, so their genesis hash is what it was before
        // founders existed.
        if !self.founders.is_empty() {
            self.founders.hash_into(&mut hasher);
            hasher.update(self.epoch_length.0.get().to_be_bytes());
            // A governed chain records its full nodes in the registry, so they are its genesis.
            let mut full_nodes = self.full_nodes.clone();
            full_nodes.sort();
            hasher.update((full_nodes.len() as u64).to_be_bytes());
            for key in &full_nodes {
                hasher.update(key.0);
            }
        }
        BlockHash(hasher.finalize())
    }

    /// Block 0, committing to the genesis state `state_root` and (through its parent field) to
    /// [`Genesis::config_hash`]. Attributed to the lowest validator key, the first in
    /// consensus's ordering.
    pub fn block(&self, state_root: StateRoot) -> Block {
        let proposer = *self.validators.iter().min().expect("validated: not empty");
        let header = Header {
            parent: self.config_hash(),
            height: Height::GENESIS,
            timestamp: Timestamp(self.timestamp),
            proposer,
            epoch: Epoch(0),
            view: View(0),
            parent_view: View(0),
            transactions_root: transactions_root(&[]),
            senders_root: trellis_types::senders_root([]),
            receipts_root: EMPTY_ROOT_HASH,
            state_root,
            logs_bloom: Bloom::ZERO,
            gas_used: 0,
            gas_limit: self.block_gas_limit,
        };
        Block::new(header, Vec::new()).expect("an empty block matches the empty root")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_governance::{
        FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Registry, Role, Window,
    };

    fn genesis(founders: Founders) -> Genesis {
        Genesis {
            chain_id: 7,
            timestamp: 0,
            block_gas_limit: 30_000_000,
            gas_price: 0,
            validators: vec![ValidatorId([1; 32])],
            full_nodes: vec![],
            alloc: BTreeMap::from([(Address::repeat_byte(0xa1), U256::from(5))]),
            founders,
            epoch_length: EpochLength::DEFAULT,
        }
    }

    fn identity(id: u64, roles: Vec<Role>, accounts: Vec<Address>) -> FoundingIdentity {
        FoundingIdentity {
            id: IdentityId(id),
            roles,
            accounts,
            window: Window::ALWAYS,
        }
    }

    fn two_members() -> Founders {
        Founders(vec![FoundingOrganisation {
            id: OrgId(1),
            name: "Bank".into(),
            identities: vec![
                identity(
                    10,
                    vec![Role::governor(), Role::transactor()],
                    vec![Address::repeat_byte(0xa1)],
                ),
                identity(11, vec![Role::auditor()], vec![Address::repeat_byte(0xb2)]),
            ],
        }])
    }

    #[test]
    fn founders_are_in_the_genesis_state_and_its_hash() {
        let with = genesis(two_members());
        with.validate().unwrap();
        let mut state = trellis_state::MemoryStore::new();
        state.commit(Height(0), &with.changes()).unwrap();
        let registry = Registry::new(&state);
        assert!(
            registry
                .may(&Address::repeat_byte(0xa1), &Role::governor(), Height(1))
                .unwrap()
        );
        assert_eq!(
            registry.organisation(OrgId(1)).unwrap().as_deref(),
            Some("Bank")
        );

        let without = genesis(Founders::default());
        assert_ne!(with.config_hash(), without.config_hash());
        // The same members listed in another order make the same chain.
        let mut reordered = two_members();
        reordered.0[0].identities.reverse();
        reordered.0[0].identities[1].roles.reverse();
        assert_eq!(genesis(reordered).config_hash(), with.config_hash());
    }

    #[test]
    fn a_governed_genesis_records_its_full_nodes_apart_from_its_validators() {
        let follower = trellis_crypto::ValidatorKey::from_bytes(&[2; 32]).validator_id();
        let mut with = genesis(two_members());
        with.full_nodes = vec![follower];
        with.validate().unwrap();
        let mut state = trellis_state::MemoryStore::new();
        state.commit(Height(0), &with.changes()).unwrap();
        let registry = Registry::new(&state);
        let keys = |records: Vec<trellis_governance::ValidatorRecord>| {
            records.iter().map(|r| r.key).collect::<Vec<_>>()
        };
        assert_eq!(keys(registry.full_nodes(Epoch(0)).unwrap()), vec![follower]);
        assert_eq!(
            keys(registry.validators(Epoch(0)).unwrap()),
            vec![ValidatorId([1; 32])]
        );
        assert_ne!(with.config_hash(), genesis(two_members()).config_hash());

        with.full_nodes = vec![ValidatorId([1; 32])];
        assert!(matches!(
            with.validate(),
            Err(GenesisError::DuplicateValidator(_))
        ));
    }

    #[test]
    fn bad_founders_and_the_system_addresses_are_refused() {
        let mut twice = two_members();
        twice.0[0].identities[1].accounts = vec![Address::repeat_byte(0xa1)];
        let error = genesis(twice).validate().unwrap_err().to_string();
        assert!(error.contains("belongs to identity #10 already"), "{error}");

        for address in SYSTEM_ADDRESSES {
            let mut reserved = genesis(Founders::default());
            reserved.alloc.insert(address, U256::from(1));
            assert!(matches!(
                reserved.validate(),
                Err(GenesisError::ReservedAddress(a)) if a == address
            ));
        }
    }
}
