//! A call to a system contract as the EVM hands it over, and what it does.

use super::error::SystemError;
use alloy_primitives::{Address, Bytes, Log, LogData, U256};
use alloy_sol_types::{SolEvent, SolInterface};
use std::collections::BTreeMap;
use trellis_state::StateReader;
use trellis_types::Height;

/// A call to a system contract.
#[derive(Clone, Debug)]
pub struct SystemCall<'a> {
    /// The account calling: a transaction's sender, or a contract calling on.
    pub caller: Address,
    /// The block the call runs in.
    pub height: Height,
    pub input: &'a [u8],
    /// Inside a `STATICCALL`: nothing may change.
    pub is_static: bool,
    pub value: U256,
}

impl SystemCall<'_> {
    pub(crate) fn decode<I: SolInterface>(&self) -> Result<I, SystemError> {
        let selector: [u8; 4] = match self.input.get(..4) {
            Some(selector) => selector.try_into().expect("four bytes"),
            None => return Err(SystemError::NoSelector(self.input.len())),
        };
        if !I::valid_selector(selector) {
            return Err(SystemError::UnknownFunction(selector.into()));
        }
        I::abi_decode_validate(self.input)
            .map_err(|error| SystemError::MalformedCall(error.to_string()))
    }

    pub(crate) fn check_writable(&self) -> Result<(), SystemError> {
        if self.is_static {
            return Err(SystemError::StaticCall);
        }
        Ok(())
    }
}

/// What a call does: the EVM writes the slots and emits the logs, in that order, and returns
/// the output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub output: Bytes,
    /// Slots by (address, slot), in a canonical order.
    pub writes: BTreeMap<(Address, U256), U256>,
    pub logs: Vec<Log>,
    /// Value moved (from, to, wei), applied before the writes: only out of the holds' escrow.
    pub transfers: Vec<(Address, Address, U256)>,
}

impl Effects {
    pub(crate) fn view(output: Vec<u8>) -> Self {
        Self {
            output: output.into(),
            ..Self::default()
        }
    }

    pub(crate) fn log<E: SolEvent>(&mut self, address: Address, event: E) {
        let data: LogData = event.encode_log_data();
        self.logs.push(Log { address, data });
    }

    pub(crate) fn take_writes<R: StateReader + ?Sized>(
        &mut self,
        writer: crate::RegistryWriter<'_, R>,
    ) {
        self.writes.extend(writer.into_writes());
    }
}
