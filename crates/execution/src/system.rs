//! The system contracts inside the EVM: calls to their addresses (from a transaction or from a
//! contract) are answered by `trellis-governance` instead of by code, reading and writing
//! through revm's journal so they see, and revert with, everything around them.

use crate::db::DbError;
use crate::journal::JournalState;
use alloy_primitives::Selector;
use alloy_sol_types::{Revert, SolError};
use revm::{
    Database,
    context::{Block, Cfg, ContextTr, JournalTr, Transaction},
    handler::{EthPrecompiles, PrecompileProvider},
    interpreter::{CallInputs, CallScheme, Gas, InstructionResult, InterpreterResult},
    primitives::{AddressSet, Bytes},
};
use trellis_governance::{Effects, SYSTEM_ADDRESSES, SystemCall, system_call};
use trellis_types::Height;

/// What a system call costs: a base, and storage and log gas as the EVM prices them, so a
/// governance call costs what the same work in Solidity would.
pub(crate) mod cost {
    pub const BASE: u64 = 700;
    pub const READ: u64 = 2_100;
    pub const WRITE: u64 = 20_000;
    pub const LOG: u64 = 375;
    pub const LOG_TOPIC: u64 = 375;
    pub const LOG_BYTE: u64 = 8;
    pub const TRANSFER: u64 = 9_000;
}

/// Ethereum's precompiles plus the system contracts, and on a governed chain the check of
/// every call against the functions the consortium restricted.
#[derive(Debug, Clone)]
pub(crate) struct SystemContracts {
    eth: EthPrecompiles,
    addresses: AddressSet,
    /// The chain has a registry (read once per block: it exists from genesis or never).
    governed: bool,
}

impl SystemContracts {
    pub(crate) fn new(eth: EthPrecompiles, governed: bool) -> Self {
        let mut addresses = eth.warm_addresses().clone();
        addresses.extend(SYSTEM_ADDRESSES);
        Self {
            eth,
            addresses,
            governed,
        }
    }
}

impl<CTX> PrecompileProvider<CTX> for SystemContracts
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec);
        if changed {
            *self = Self::new(self.eth.clone(), self.governed);
        }
        changed
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        if SYSTEM_ADDRESSES.contains(&inputs.bytecode_address) {
            return run_system(context, inputs).map(Some);
        }
        if self.governed
            && let Some(refused) = check_method(context, inputs)?
        {
            return Ok(Some(refused));
        }
        self.eth.run(context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.addresses
    }
}

/// A revert if the transaction's signer may not call the function `inputs` names (the
/// consortium restricted it to a role the signer lacks), however deep the call. Code run for
/// another account (`DELEGATECALL`, `CALLCODE`) is that account's call, checked where it was
/// made. An allowed call costs nothing extra.
fn check_method<CTX>(
    context: &mut CTX,
    inputs: &CallInputs,
) -> Result<Option<InterpreterResult>, String>
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    if !matches!(inputs.scheme, CallScheme::Call | CallScheme::StaticCall) {
        return Ok(None);
    }
    let selector = {
        let input = inputs.input.as_bytes(context);
        match input.get(..4) {
            Some(bytes) => Selector::from_slice(bytes),
            None => return Ok(None),
        }
    };
    let origin = context.tx().caller();
    let height = Height(context.block().number().saturating_to::<u64>());
    let journal = JournalState::new(context);
    let refused = trellis_governance::method_refusal(
        &journal,
        &origin,
        &inputs.target_address,
        &selector,
        height,
    );
    let reads = journal.reads.get();
    match refused {
        Ok(None) => Ok(None),
        Ok(Some(refusal)) => {
            let gas = Gas::new_with_regular_gas_and_reservoir(inputs.gas_limit, inputs.reservoir);
            let reason = format!("not permitted: {refusal}");
            Ok(Some(revert(gas, cost::BASE + reads * cost::READ, &reason)))
        }
        Err(error) => Err(format!("reading the consortium's rules failed: {error}")),
    }
}

fn run_system<CTX>(context: &mut CTX, inputs: &CallInputs) -> Result<InterpreterResult, String>
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    let gas = Gas::new_with_regular_gas_and_reservoir(inputs.gas_limit, inputs.reservoir);
    // Run with another account's storage and caller, a system contract would act for someone
    // it is not: only plain calls and static calls reach it.
    if !matches!(inputs.scheme, CallScheme::Call | CallScheme::StaticCall) {
        return Ok(revert(
            gas,
            cost::BASE,
            "system contracts are called, never delegate-called",
        ));
    }
    let input: Bytes = Bytes::copy_from_slice(&inputs.input.as_bytes(context));
    let height = Height(context.block().number().saturating_to::<u64>());
    let call = SystemCall {
        caller: inputs.caller,
        height,
        input: &input,
        is_static: inputs.is_static,
        value: inputs.value.get(),
    };
    let journal = JournalState::new(context);
    let outcome = system_call(&journal, &inputs.bytecode_address, &call)
        .expect("only system addresses get here");
    let reads = journal.reads.get();
    match outcome {
        Ok(effects) => Ok(apply(journal.into_context(), effects, gas, reads)?),
        Err(error) if error.is_fatal() => Err(error.to_string()),
        Err(error) => Ok(revert(
            gas,
            cost::BASE + reads * cost::READ,
            &error.to_string(),
        )),
    }
}

/// Charges for and applies a call's effects, or halts out of gas with none applied.
fn apply<CTX>(
    context: &mut CTX,
    effects: Effects,
    mut gas: Gas,
    reads: u64,
) -> Result<InterpreterResult, String>
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    let log_gas: u64 = effects
        .logs
        .iter()
        .map(|log| {
            cost::LOG
                + cost::LOG_TOPIC * log.topics().len() as u64
                + cost::LOG_BYTE * log.data.data.len() as u64
        })
        .sum();
    let price = cost::BASE
        + reads * cost::READ
        + effects.writes.len() as u64 * cost::WRITE
        + effects.transfers.len() as u64 * cost::TRANSFER
        + log_gas;
    if !gas.record_regular_cost(price) {
        gas.spend_all();
        return Ok(InterpreterResult::new(
            InstructionResult::PrecompileOOG,
            Bytes::new(),
            gas,
        ));
    }
    let journal = context.journal_mut();
    for (from, to, value) in effects.transfers {
        let refused = journal
            .transfer(from, to, value)
            .map_err(|DbError(error)| error.to_string())?;
        if let Some(error) = refused {
            return Err(format!("moving {value} wei from {from} to {to}: {error:?}"));
        }
    }
    for ((address, slot), value) in effects.writes {
        journal
            .load_account(address)
            .map_err(|DbError(error)| error.to_string())?;
        journal
            .sstore(address, slot, value)
            .map_err(|DbError(error)| error.to_string())?;
    }
    for log in effects.logs {
        journal.log(log);
    }
    Ok(InterpreterResult::new(
        InstructionResult::Return,
        effects.output,
        gas,
    ))
}

/// Reverts with `Error(reason)`, as Solidity's `require` does, so every client shows it.
fn revert(mut gas: Gas, price: u64, reason: &str) -> InterpreterResult {
    if !gas.record_regular_cost(price) {
        gas.spend_all();
        return InterpreterResult::new(InstructionResult::PrecompileOOG, Bytes::new(), gas);
    }
    let output = Revert::from(reason).abi_encode();
    InterpreterResult::new(InstructionResult::Revert, output.into(), gas)
}
