//! Admission reads the consortium's rules for every transaction, mostly the same registry
//! slots; the owner keeps what it read from the finalized state until that state moves.

use alloy_primitives::{Address, B256, Bytes, U256};
use std::{cell::RefCell, collections::HashMap};
use trellis_governance::SYSTEM_ADDRESSES;
use trellis_state::{Account, StateError, StateReader};
use trellis_types::Height;

/// The system accounts' slots read from the finalized state at `height`.
#[derive(Default)]
pub(super) struct SystemSlots {
    height: Height,
    slots: HashMap<(Address, U256), U256>,
}

impl SystemSlots {
    /// A reader of `state` (finalized at `height`) that serves system slots from memory,
    /// forgetting them first if the state moved since.
    pub fn over<'a, R: StateReader + ?Sized>(
        &'a mut self,
        state: &'a R,
        height: Height,
    ) -> Cached<'a, R> {
        if self.height != height {
            self.slots.clear();
            self.height = height;
        }
        Cached {
            state,
            slots: RefCell::new(&mut self.slots),
        }
    }
}

pub(super) struct Cached<'a, R: ?Sized> {
    state: &'a R,
    slots: RefCell<&'a mut HashMap<(Address, U256), U256>>,
}

impl<R: StateReader + ?Sized> StateReader for Cached<'_, R> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.state.account(address)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        if !SYSTEM_ADDRESSES.contains(address) {
            return self.state.storage(address, slot);
        }
        if let Some(value) = self.slots.borrow().get(&(*address, *slot)) {
            return Ok(*value);
        }
        let value = self.state.storage(address, slot)?;
        self.slots.borrow_mut().insert((*address, *slot), value);
        Ok(value)
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.state.code(code_hash)
    }
}
