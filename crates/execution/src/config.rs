//! The chain rules execution applies.

use revm::primitives::hardfork::SpecId;
use trellis_types::ChainId;

/// The rules of one chain, identical on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// EIP-155 chain id every transaction must be signed for.
    pub chain_id: ChainId,
    /// Most gas all transactions of one block may use together.
    pub block_gas_limit: u64,
    /// Fixed base fee per gas, in wei. Zero (the default) makes gas free, as consortium chains
    /// commonly run; a non-zero value is burned like Ethereum's, but does not float.
    pub base_fee_per_gas: u64,
}

impl ExecutionConfig {
    /// The EVM hardfork Trellis runs. The Solidity fixtures are compiled for the same one.
    pub const SPEC: SpecId = SpecId::PRAGUE;

    /// A configuration with free gas and a 60M gas block limit.
    pub fn new(chain_id: ChainId) -> Self {
        Self {
            chain_id,
            block_gas_limit: 60_000_000,
            base_fee_per_gas: 0,
        }
    }

    /// Checks what a configuration must satisfy before any block runs under it.
    ///
    /// # Panics
    /// On a configuration no chain can run with: better to stop at startup than to diverge.
    pub fn assert_valid(&self) {
        assert!(self.chain_id != 0, "chain id 0 gives no replay protection");
        assert!(
            self.block_gas_limit >= 21_000,
            "block gas limit {} cannot fit a single transfer (21000 gas)",
            self.block_gas_limit
        );
    }
}
