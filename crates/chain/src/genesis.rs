//! The genesis: what every node of a chain agrees on before the first block.

use alloy_consensus::constants::EMPTY_ROOT_HASH;
use alloy_primitives::{Address, U256};
use std::collections::BTreeMap;
use trellis_execution::ExecutionConfig;
use trellis_state::{Account, ChangeSet};
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
    /// Initial balances, in wei.
    pub alloc: BTreeMap<Address, U256>,
}

/// Why a genesis cannot start a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("the genesis names no validators")]
    NoValidators,
    #[error("validator {0:?} is listed twice")]
    DuplicateValidator(ValidatorId),
    #[error("chain id 0 is not allowed (EIP-155 signatures need a non-zero id)")]
    ZeroChainId,
    #[error("block gas limit {0} is below 21000, the cost of the simplest transaction")]
    GasLimitTooLow(u64),
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
        for v in &self.validators {
            if !seen.insert(*v) {
                return Err(GenesisError::DuplicateValidator(*v));
            }
        }
        Ok(())
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
    /// gas price, the validators (sorted) and the allocations (by address). It stands in block
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
