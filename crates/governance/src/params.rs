//! The chain's parameters a consortium decides: the block gas limit and the base fee per gas.
//!
//! On a governed chain they are registry slots, written by genesis and changed by proposal;
//! a block runs under the parameters of its parent's state, so a change passed in block `h`
//! holds from block `h + 1`. A chain without a registry keeps its genesis values.

use crate::{
    ChainParams, MAX_BASE_FEE, MAX_BLOCK_GAS_LIMIT, MIN_BLOCK_GAS_LIMIT, Registry, RegistryError,
    RegistryWriter, layout,
};
use alloy_primitives::U256;
use trellis_state::StateReader;

/// Whether a chain can run under `params`.
fn check(params: ChainParams) -> Result<(), RegistryError> {
    let limits = MIN_BLOCK_GAS_LIMIT..=MAX_BLOCK_GAS_LIMIT;
    if !limits.contains(&params.block_gas_limit) || params.base_fee_per_gas > MAX_BASE_FEE {
        return Err(RegistryError::BadChainParams(params));
    }
    Ok(())
}

impl<R: StateReader + ?Sized> Registry<'_, R> {
    /// The parameters blocks on this state run under; `None` without a registry.
    pub fn chain_params(&self) -> Result<Option<ChainParams>, RegistryError> {
        let limit: u64 = self.slot_value(layout::block_gas_limit())?.saturating_to();
        if limit == 0 {
            return Ok(None);
        }
        let fee: u64 = self.slot_value(layout::base_fee())?.saturating_to();
        Ok(Some(ChainParams {
            block_gas_limit: limit,
            base_fee_per_gas: fee,
        }))
    }
}

impl<R: StateReader + ?Sized> RegistryWriter<'_, R> {
    pub fn set_chain_params(&mut self, params: ChainParams) -> Result<(), RegistryError> {
        check(params)?;
        self.write(
            layout::block_gas_limit(),
            U256::from(params.block_gas_limit),
        );
        self.write(layout::base_fee(), U256::from(params.base_fee_per_gas));
        Ok(())
    }
}
