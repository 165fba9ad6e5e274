//! The state as the EVM sees it in the middle of a transaction, for the rules the system
//! contracts and the creation check read there.

use crate::db::DbError;
use alloy_primitives::U256;
use revm::{
    Database,
    context::{ContextTr, JournalTr},
    primitives::{Address, B256, Bytes},
};
use std::cell::{Cell, RefCell};
use trellis_state::{Account, StateError, StateReader};

/// The state as the EVM sees it mid-transaction (revm's journal over the block's changes),
/// counting the slots read so they can be charged for.
pub(crate) struct JournalState<'c, CTX> {
    context: RefCell<&'c mut CTX>,
    pub reads: Cell<u64>,
}

impl<'c, CTX> JournalState<'c, CTX>
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    pub fn new(context: &'c mut CTX) -> Self {
        Self {
            context: RefCell::new(context),
            reads: Cell::new(0),
        }
    }

    pub fn into_context(self) -> &'c mut CTX {
        self.context.into_inner()
    }

    fn count(&self) {
        self.reads.set(self.reads.get() + 1);
    }
}

impl<CTX> StateReader for JournalState<'_, CTX>
where
    CTX: ContextTr<Db: Database<Error = DbError>>,
{
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.count();
        let mut context = self.context.borrow_mut();
        let load = context
            .journal_mut()
            .load_account(*address)
            .map_err(|DbError(error)| error)?;
        let info = &load.data.info;
        Ok((!info.is_empty()).then_some(Account {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        }))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.count();
        let mut context = self.context.borrow_mut();
        let journal = context.journal_mut();
        // revm's journal reads slots only of accounts it has loaded.
        journal
            .load_account(*address)
            .map_err(|DbError(error)| error)?;
        let load = journal
            .sload(*address, *slot)
            .map_err(|DbError(error)| error)?;
        Ok(load.data)
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        let mut context = self.context.borrow_mut();
        let code = context
            .db_mut()
            .code_by_hash(*code_hash)
            .map_err(|DbError(error)| error)?;
        Ok((!code.is_empty()).then(|| code.original_bytes()))
    }
}
