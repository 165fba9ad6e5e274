//! Contracts created by contracts: on a governed chain, a `CREATE` or `CREATE2` reverts unless
//! the transaction's signer may deploy (the same rule a transaction creating a contract meets
//! at admission and before execution), however deep the call that runs it. A factory cannot
//! hand deployment to accounts the consortium has not made deployers.
//!
//! The two opcodes' entries in revm's instruction table are replaced by [`guarded`], which
//! checks the rule, then runs revm's own instruction: no other opcode pays for it.

use crate::{db::DbError, journal::JournalState};
use alloy_sol_types::{Revert, SolError};
use revm::{
    Database,
    bytecode::opcode::{CREATE, CREATE2},
    context::{Block, ContextError, ContextTr, Transaction},
    handler::instructions::EthInstructions,
    interpreter::{
        Host, Instruction, InstructionContext, InstructionResult, InterpreterAction,
        instructions::contract::create, interpreter::EthInterpreter,
        interpreter_types::LoopControl as _,
    },
};
use trellis_types::Height;

/// Puts the guarded creation opcodes into `instructions`, keeping their gas.
pub(crate) fn guard<H>(instructions: &mut EthInstructions<EthInterpreter, H>)
where
    H: Host + ContextTr<Db: Database<Error = DbError>>,
{
    for (opcode, instruction) in [
        (CREATE, Instruction::new(guarded::<false, H>)),
        (CREATE2, Instruction::new(guarded::<true, H>)),
    ] {
        let gas = instructions.gas_table()[opcode as usize];
        instructions.insert_instruction(opcode, instruction, gas);
    }
}

/// `CREATE` (or `CREATE2`), reverting with the reason when the signer may not deploy.
fn guarded<const IS_CREATE2: bool, H>(
    context: InstructionContext<'_, H, EthInterpreter>,
) -> Result<(), InstructionResult>
where
    H: Host + ContextTr<Db: Database<Error = DbError>>,
{
    let origin = context.host.tx().caller();
    let height = Height(context.host.block().number().saturating_to::<u64>());
    let journal = JournalState::new(&mut *context.host);
    let refused = trellis_governance::refusal(&journal, &origin, true, height);
    match refused {
        Ok(None) => create::<IS_CREATE2, EthInterpreter, H>(context),
        Ok(Some(refusal)) => {
            let reason =
                format!("not permitted: a contract may not create a contract here: {refusal}");
            let output = Revert::from(reason).abi_encode();
            let gas = context.interpreter.gas;
            context
                .interpreter
                .bytecode
                .set_action(InterpreterAction::new_return(
                    InstructionResult::Revert,
                    output.into(),
                    gas,
                ));
            Err(InstructionResult::Revert)
        }
        // The rules could not be read: the block cannot be executed (as when the precompile
        // hook fails to read them).
        Err(error) => {
            let message = format!("reading the consortium's rules failed: {error}");
            *context.host.error() = Err(ContextError::Custom(message));
            Err(InstructionResult::FatalExternalError)
        }
    }
}
