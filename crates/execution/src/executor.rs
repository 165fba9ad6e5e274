//! The block executor: runs a block's transactions on revm, in order, over a parent state.

use crate::{
    config::ExecutionConfig,
    context::BlockContext,
    db::{BlockDb, DbError},
    outcome::{BlockOutcome, SkipReason, SkippedTx, TxReceipt},
    system::SystemContracts,
};
use alloy_consensus::{
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction,
    proofs::calculate_receipt_root,
};
use alloy_evm::FromRecoveredTx;
use alloy_primitives::{Address, Bloom, Bytes, Log, TxKind, U256, keccak256, logs_bloom};
use alloy_sol_types::{Panic, Revert, SolError};
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext,
    context::Evm,
    context::{BlockEnv, CfgEnv, TxEnv, result::InvalidTransaction},
    context_interface::{
        block::BlobExcessGasAndPrice,
        result::{EVMError, ExecutionResult, HaltReason, Output},
    },
    handler::{EthFrame, instructions::EthInstructions},
    interpreter::interpreter::EthInterpreter,
    primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
};
use trellis_governance::{
    ChainParams, Day, Intent, Registry, Request, When, contracts::HOLDS_ADDRESS,
};
use trellis_state::{StateError, StateReader};
use trellis_types::{RecoveredTx, TxError, transaction, transactions_root};

/// Failures that stop a whole block: the block cannot be executed at all, so no outcome exists.
/// (A bad transaction is never one of these: it is skipped with a [`SkipReason`].)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    #[error("reading state failed: {0}")]
    State(#[from] StateError),
    #[error("reading the consortium's rules failed: {0}")]
    Registry(#[from] trellis_governance::RegistryError),
    #[error("the EVM failed: {0}")]
    Evm(EVMError<DbError>),
    /// A read-only call the EVM refuses to start (its sender cannot pay the value, its gas is
    /// below the intrinsic cost), shown in the words Ethereum clients recognise.
    #[error("{}", call_rejection(.0))]
    InvalidCall(InvalidTransaction),
}

/// A read-only message call (`eth_call`): executed on a state, never committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallRequest {
    pub from: Option<Address>,
    /// `None` runs `data` as init code.
    pub to: Option<Address>,
    pub data: Bytes,
    pub value: U256,
    /// Defaults to the block gas limit.
    pub gas: Option<u64>,
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    pub success: bool,
    /// Return data, or revert data exactly as produced.
    pub output: Bytes,
    pub gas_used: u64,
    pub logs: Vec<Log>,
    pub revert_reason: Option<String>,
    pub halt_reason: Option<HaltReason>,
}

/// Executes blocks under one chain's rules. Holds no state between blocks: the same inputs give
/// the same outcome, on any node, any number of times.
#[derive(Clone, Debug)]
pub struct Executor {
    config: ExecutionConfig,
}

type BlockContextOf<'a, R> =
    Context<BlockEnv, TxEnv, CfgEnv, BlockDb<'a, R>, revm::Journal<BlockDb<'a, R>>, ()>;
type BlockEvm<'a, R> = Evm<
    BlockContextOf<'a, R>,
    (),
    EthInstructions<EthInterpreter, BlockContextOf<'a, R>>,
    SystemContracts,
    EthFrame<EthInterpreter>,
>;

/// The least gas any transaction costs (the intrinsic gas of a plain transfer).
const MIN_TX_GAS: u64 = 21_000;

/// Where the transactions given to the executor end up in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// The list is the block: a skipped transaction keeps its place (verifying a block).
    Listed,
    /// The list is candidates: only executed transactions take places (building a block).
    Packed,
}

/// A block packed from candidates: the transactions that got a place, and their outcome.
/// `outcome.skipped` indexes the candidates.
#[derive(Clone, Debug)]
pub struct Packed {
    pub transactions: Vec<RecoveredTx>,
    pub outcome: BlockOutcome,
}

/// Blocks smaller than this recover their senders on the calling thread.
const PARALLEL_RECOVERY_THRESHOLD: usize = 64;

impl Executor {
    /// An executor for `config`.
    ///
    /// # Panics
    /// If the configuration is unusable (see [`ExecutionConfig::assert_valid`]).
    pub fn new(config: ExecutionConfig) -> Self {
        config.assert_valid();
        Self { config }
    }

    pub fn config(&self) -> &ExecutionConfig {
        &self.config
    }

    /// Executes `transactions` (EIP-2718 envelopes, in block order) on `parent`.
    ///
    /// Every transaction is either executed, giving a receipt (a reverted one too), or skipped
    /// with a reason and no effect at all. Only a failure to read state aborts the block.
    pub fn execute<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        parent: &R,
        transactions: &[Bytes],
    ) -> Result<BlockOutcome, ExecutionError> {
        let decoded = recover_senders(transactions);
        self.execute_decoded(context, parent, transactions, decoded, Placement::Listed)
    }

    /// [`Executor::execute`] for transactions whose senders are already recovered (by the
    /// mempool at admission, say): recovery is the dominant cost per transaction.
    pub fn execute_recovered<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        parent: &R,
        transactions: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecutionError> {
        self.execute_known(context, parent, transactions, Placement::Listed)
    }

    /// Executes transactions whose senders are known, placed as `placement` says.
    fn execute_known<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        parent: &R,
        transactions: &[RecoveredTx],
        placement: Placement,
    ) -> Result<BlockOutcome, ExecutionError> {
        let raw: Vec<Bytes> = transactions.iter().map(|tx| tx.raw().clone()).collect();
        let decoded = transactions.iter().cloned().map(Ok).collect();
        self.execute_decoded(context, parent, &raw, decoded, placement)
    }

    /// Packs a block from `candidates` (in the order a proposer would include them): a
    /// candidate that cannot run is left out and gives up its place, and packing stops once the
    /// block has too little gas left for any transaction. The outcome is exactly what
    /// [`Executor::execute_recovered`] gives for the packed transactions, so a proposer executes
    /// its block once, however many candidates did not fit.
    pub fn pack<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        parent: &R,
        candidates: &[RecoveredTx],
    ) -> Result<Packed, ExecutionError> {
        let outcome = self.execute_known(context, parent, candidates, Placement::Packed)?;
        let mut left_out = outcome.skipped.iter().map(|s| s.index).peekable();
        let considered = outcome.receipts.len() + outcome.skipped.len();
        let transactions = candidates
            .iter()
            .take(considered)
            .enumerate()
            .filter(|(index, _)| left_out.next_if_eq(index).is_none())
            .map(|(_, tx)| tx.clone())
            .collect::<Vec<_>>();
        assert_eq!(
            transactions.len(),
            outcome.receipts.len(),
            "one receipt per packed transaction"
        );
        Ok(Packed {
            transactions,
            outcome,
        })
    }

    fn execute_decoded<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        parent: &R,
        transactions: &[Bytes],
        recovered: Vec<Result<RecoveredTx, TxError>>,
        placement: Placement,
    ) -> Result<BlockOutcome, ExecutionError> {
        assert_eq!(
            transactions.len(),
            recovered.len(),
            "one decoding per transaction"
        );
        // The registry exists from genesis or never, so once per block is enough.
        let governed = trellis_governance::governed(parent)?;
        let params = self.params_of(parent, governed)?;
        let mut evm = self.evm(context, parent, params, false, governed);
        let when = When {
            height: context.height,
            day: Day::of(context.timestamp),
        };
        let mut receipts: Vec<TxReceipt> = Vec::new();
        let mut skipped = Vec::new();
        let mut gas_used = 0u64;
        let mut block_bloom = Bloom::ZERO;
        // Packed: the envelopes that got a place, for the transactions root.
        let mut packed = Vec::new();

        for (index, (raw, decoded)) in transactions.iter().zip(recovered).enumerate() {
            if placement == Placement::Packed && params.block_gas_limit - gas_used < MIN_TX_GAS {
                break; // No transaction fits in what is left.
            }
            // Where this transaction's receipt, logs and state changes are placed in the block.
            let place = match placement {
                Placement::Listed => index,
                Placement::Packed => receipts.len(),
            };
            let tx = match decoded {
                Ok(tx) => tx,
                Err(error) => {
                    skipped.push(SkippedTx {
                        index,
                        tx_hash: keccak256(raw),
                        sender: None,
                        reason: skip_reason_for_decode(error),
                    });
                    continue;
                }
            };
            let skip = |reason| SkippedTx {
                index,
                tx_hash: tx.hash(),
                sender: Some(tx.sender()),
                reason,
            };
            if let Err(reason) = self.check_inclusion(&tx, gas_used, params.block_gas_limit) {
                skipped.push(skip(reason));
                continue;
            }
            let request = Request {
                sender: tx.sender(),
                intent: Intent::of(tx.envelope().to(), tx.envelope().input()),
                value: tx.envelope().value(),
            };
            if governed {
                let state = &evm.ctx.journaled_state.database;
                let refused = trellis_governance::tx_refusal(state, &request, when)?;
                if let Some(refusal) = refused {
                    skipped.push(skip(refusal.into()));
                    continue;
                }
            }
            let tx_env = TxEnv::from_recovered_tx(tx.envelope(), tx.sender());
            let result = match evm.transact(tx_env) {
                Ok(outcome) => {
                    let db = &mut evm.ctx.journaled_state.database;
                    db.tx_index =
                        u32::try_from(place).expect("a block holds fewer than 2^32 transactions");
                    let mut result = outcome.result;
                    let created = if governed {
                        created_contracts(&outcome.state)
                    } else {
                        Vec::new()
                    };
                    evm.commit(outcome.state);
                    if governed && result.is_success() {
                        let db = &mut evm.ctx.journaled_state.database;
                        record_spending(db, &request, when)?;
                        hold_if_due(db, &request, context.height, &mut result)?;
                        record_deployments(db, request.sender, &created, context.height)?;
                    }
                    result
                }
                Err(EVMError::Transaction(invalid)) => {
                    skipped.push(skip(
                        self.skip_reason_for_invalid(invalid, params.base_fee_per_gas),
                    ));
                    continue;
                }
                Err(EVMError::Database(DbError(error))) => return Err(error.into()),
                Err(other) => return Err(ExecutionError::Evm(other)),
            };
            gas_used += result.tx_gas_used();
            assert!(
                gas_used <= params.block_gas_limit,
                "block gas {gas_used} above the limit after an admitted transaction"
            );
            let receipt = receipt(&tx, place, gas_used, result, params.base_fee_per_gas);
            block_bloom |= *receipt.logs_bloom();
            receipts.push(receipt);
            if placement == Placement::Packed {
                packed.push(raw.clone());
            }
        }

        let envelopes: Vec<&ReceiptEnvelope> = receipts.iter().map(|r| &r.envelope).collect();
        let included = match placement {
            Placement::Listed => transactions,
            Placement::Packed => &packed,
        };
        Ok(BlockOutcome {
            receipts_root: calculate_receipt_root(&envelopes),
            transactions_root: transactions_root(included),
            changes: evm.ctx.journaled_state.database.into_changes(),
            receipts,
            skipped,
            gas_used,
            gas_limit: params.block_gas_limit,
            logs_bloom: block_bloom,
        })
    }

    /// The parameters a block on `parent` runs under: the registry's on a governed chain (set
    /// by genesis, changed by proposal), this executor's configuration otherwise.
    pub fn params<R: StateReader + ?Sized>(
        &self,
        parent: &R,
    ) -> Result<ChainParams, ExecutionError> {
        let governed = trellis_governance::governed(parent)?;
        self.params_of(parent, governed)
    }

    /// [`Executor::params`] when whether the chain is governed is known already.
    fn params_of<R: StateReader + ?Sized>(
        &self,
        parent: &R,
        governed: bool,
    ) -> Result<ChainParams, ExecutionError> {
        if governed && let Some(params) = Registry::new(parent).chain_params()? {
            return Ok(params);
        }
        Ok(ChainParams {
            block_gas_limit: self.config.block_gas_limit,
            base_fee_per_gas: self.config.base_fee_per_gas,
        })
    }

    /// Runs a message call on `state` as if in the block `context`, without committing anything.
    /// Nonces are not checked and gas is free, as `eth_call` does.
    pub fn call<R: StateReader + ?Sized>(
        &self,
        context: &BlockContext,
        state: &R,
        request: &CallRequest,
    ) -> Result<CallOutcome, ExecutionError> {
        let governed = trellis_governance::governed(state)?;
        let params = ChainParams {
            // Gas is free in a call.
            base_fee_per_gas: 0,
            ..self.params_of(state, governed)?
        };
        let mut evm = self.evm(context, state, params, true, governed);
        let tx_env = TxEnv {
            caller: request.from.unwrap_or_default(),
            kind: request.to.map_or(TxKind::Create, TxKind::Call),
            data: request.data.clone(),
            value: request.value,
            gas_limit: request.gas.unwrap_or(params.block_gas_limit),
            gas_price: 0,
            chain_id: Some(self.config.chain_id),
            ..TxEnv::default()
        };
        let result = match evm.transact(tx_env) {
            Ok(outcome) => outcome.result,
            Err(EVMError::Database(DbError(error))) => return Err(error.into()),
            Err(EVMError::Transaction(invalid)) => {
                return Err(ExecutionError::InvalidCall(invalid));
            }
            Err(other) => return Err(ExecutionError::Evm(other)),
        };
        let gas_used = result.tx_gas_used();
        let (success, output, logs, revert_reason, halt_reason) = split_result(result);
        Ok(CallOutcome {
            success,
            output,
            gas_used,
            logs,
            revert_reason,
            halt_reason,
        })
    }

    fn evm<'a, R: StateReader + ?Sized>(
        &self,
        context: &'a BlockContext,
        parent: &'a R,
        params: ChainParams,
        is_call: bool,
        governed: bool,
    ) -> BlockEvm<'a, R> {
        let mut cfg = CfgEnv::new()
            .with_chain_id(self.config.chain_id)
            .with_spec_and_mainnet_gas_params(ExecutionConfig::SPEC);
        cfg.disable_nonce_check = is_call;
        let block = BlockEnv {
            number: U256::from(context.height.get()),
            beneficiary: context.coinbase(),
            timestamp: U256::from(context.timestamp.seconds()),
            gas_limit: params.block_gas_limit,
            basefee: params.base_fee_per_gas,
            difficulty: U256::ZERO,
            prevrandao: Some(context.prevrandao()),
            // Blob transactions are refused; the blob fee market is inert.
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
                0,
                BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
            )),
            slot_num: 0,
        };
        let evm = Context::mainnet()
            .with_db(BlockDb::new(parent, context))
            .with_cfg(cfg)
            .with_block(block)
            .build_mainnet();
        let system = SystemContracts::new(evm.precompiles.clone(), governed);
        let mut evm = evm.with_precompiles(system);
        if governed {
            crate::deploy::guard(&mut evm.instruction);
        }
        evm
    }

    /// The rules checked before the EVM sees a transaction.
    fn check_inclusion(
        &self,
        tx: &RecoveredTx,
        gas_used: u64,
        block_gas_limit: u64,
    ) -> Result<(), SkipReason> {
        let expected = self.config.chain_id;
        if tx.chain_id() != Some(expected) {
            return Err(SkipReason::WrongChainId {
                expected,
                got: tx.chain_id(),
            });
        }
        let gas_limit = tx.envelope().gas_limit();
        if gas_limit > block_gas_limit {
            return Err(SkipReason::GasLimitAboveBlockLimit {
                gas_limit,
                block_gas_limit,
            });
        }
        let remaining = block_gas_limit - gas_used;
        if gas_limit > remaining {
            return Err(SkipReason::BlockGasExhausted {
                gas_limit,
                remaining,
            });
        }
        Ok(())
    }

    fn skip_reason_for_invalid(&self, invalid: InvalidTransaction, base_fee: u64) -> SkipReason {
        match invalid {
            InvalidTransaction::NonceTooLow { tx, state } => SkipReason::NonceTooLow {
                expected: state,
                got: tx,
            },
            InvalidTransaction::NonceTooHigh { tx, state } => SkipReason::NonceTooHigh {
                expected: state,
                got: tx,
            },
            InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
                SkipReason::InsufficientFunds {
                    needed: *fee,
                    balance: *balance,
                }
            }
            InvalidTransaction::GasPriceLessThanBasefee => SkipReason::FeeBelowBaseFee { base_fee },
            other => SkipReason::Rejected(other.to_string()),
        }
    }
}

fn receipt(
    tx: &RecoveredTx,
    index: usize,
    cumulative_gas_used: u64,
    result: ExecutionResult,
    base_fee: u64,
) -> TxReceipt {
    let gas_used = result.tx_gas_used();
    let contract_address = result.created_address();
    let (success, output, logs, revert_reason, halt_reason) = split_result(result);
    let logs_bloom = logs_bloom(logs.iter());
    let receipt = Receipt {
        status: Eip658Value::Eip658(success),
        cumulative_gas_used,
        logs,
    };
    TxReceipt {
        tx_hash: tx.hash(),
        index,
        from: tx.sender(),
        to: tx.envelope().to(),
        contract_address,
        gas_used,
        effective_gas_price: tx.envelope().effective_gas_price(Some(base_fee)),
        envelope: ReceiptEnvelope::from_typed(
            tx.envelope().tx_type(),
            ReceiptWithBloom::new(receipt, logs_bloom),
        ),
        output,
        revert_reason,
        halt_reason,
    }
}

/// Counts a transaction's value against its sender's daily limit, if one applies.
fn record_spending<R: StateReader + ?Sized>(
    db: &mut BlockDb<'_, R>,
    request: &Request,
    when: When,
) -> Result<(), ExecutionError> {
    let record =
        trellis_governance::spending_record(&*db, &request.sender, request.value, when.day)?;
    if let Some((slot, total)) = record {
        db.write_system_slot(trellis_governance::REGISTRY_ADDRESS, slot, total)?;
    }
    Ok(())
}

/// The contracts a transaction created and left standing, in address order (the state is a
/// hash map: its order must not reach the registry's writes).
fn created_contracts(state: &revm::state::EvmState) -> Vec<Address> {
    let mut created: Vec<Address> = state
        .iter()
        .filter(|(_, account)| account.is_created() && !account.is_selfdestructed())
        .map(|(address, _)| *address)
        .collect();
    created.sort_unstable();
    created
}

/// Records `deployer` as the deployer of each of `contracts` (`trellis_governance::Deployment`).
fn record_deployments<R: StateReader + ?Sized>(
    db: &mut BlockDb<'_, R>,
    deployer: Address,
    contracts: &[Address],
    height: trellis_types::Height,
) -> Result<(), ExecutionError> {
    for &contract in contracts {
        let deployment = trellis_governance::Deployment {
            contract,
            deployer,
            height,
        };
        let (slot, value) = deployment.record();
        db.write_system_slot(trellis_governance::REGISTRY_ADDRESS, slot, value)?;
    }
    Ok(())
}

/// Puts a transfer above its sender's hold threshold in escrow: its value moves from the
/// recipient (an account without code, which just received it) to the holds contract, which
/// records it; the receipt gets the `Held` event.
fn hold_if_due<R: StateReader + ?Sized>(
    db: &mut BlockDb<'_, R>,
    request: &Request,
    height: trellis_types::Height,
    result: &mut ExecutionResult,
) -> Result<(), ExecutionError> {
    let Some(identity) = trellis_governance::held(&*db, request)? else {
        return Ok(());
    };
    let Intent::Call { contract: to, .. } = request.intent else {
        unreachable!("only plain transfers pass the rules above a hold threshold")
    };
    let effects = trellis_governance::contracts::place_hold(
        &*db,
        request.sender,
        identity,
        to,
        request.value,
        height,
    )?;
    db.move_value(to, HOLDS_ADDRESS, request.value)?;
    for ((address, slot), value) in effects.writes {
        db.write_system_slot(address, slot, value)?;
    }
    if let ExecutionResult::Success { logs, .. } = result {
        logs.extend(effects.logs);
    }
    Ok(())
}

type SplitResult = (bool, Bytes, Vec<Log>, Option<String>, Option<HaltReason>);

fn split_result(result: ExecutionResult) -> SplitResult {
    match result {
        ExecutionResult::Success { logs, output, .. } => {
            let data = match output {
                Output::Call(data) => data,
                // The receipt carries the address; the runtime code is in state.
                Output::Create(_, _) => Bytes::new(),
            };
            (true, data, logs, None, None)
        }
        ExecutionResult::Revert { logs, output, .. } => {
            let reason = decode_revert_reason(&output);
            (false, output, logs, reason, None)
        }
        ExecutionResult::Halt { reason, logs, .. } => {
            (false, Bytes::new(), logs, None, Some(reason))
        }
    }
}

/// Why a read-only call cannot start, in geth's words (which ethers and web3.py map to their
/// error kinds).
fn call_rejection(invalid: &InvalidTransaction) -> String {
    match invalid {
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            format!("insufficient funds for gas * price + value: balance {balance}, cost {fee}")
        }
        InvalidTransaction::CallGasCostMoreThanGasLimit {
            initial_gas,
            gas_limit,
        } => {
            format!("intrinsic gas too low: gas {gas_limit}, the call needs at least {initial_gas}")
        }
        other => other.to_string(),
    }
}

/// The human-readable reason of `Error(string)` or `Panic(uint256)` revert data; `None` for
/// custom errors, whose raw data the receipt keeps for the caller's ABI to decode.
fn decode_revert_reason(output: &[u8]) -> Option<String> {
    if let Ok(revert) = Revert::abi_decode(output) {
        return Some(revert.reason);
    }
    Panic::abi_decode(output)
        .ok()
        .map(|panic| panic.to_string())
}

fn skip_reason_for_decode(error: TxError) -> SkipReason {
    match error {
        TxError::Malformed(detail) => SkipReason::Malformed(detail),
        TxError::UnsupportedType(ty) => SkipReason::UnsupportedType(ty),
        TxError::InvalidSignature => SkipReason::InvalidSignature,
    }
}

/// Decodes and recovers every transaction, on all cores for large batches. The result is in
/// input order whatever the thread count, so it never affects what is agreed on.
pub fn recover_senders(transactions: &[Bytes]) -> Vec<Result<RecoveredTx, TxError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || transactions.len() < PARALLEL_RECOVERY_THRESHOLD {
        return transactions
            .iter()
            .cloned()
            .map(transaction::decode)
            .collect();
    }
    let chunk = transactions.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = transactions
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .cloned()
                        .map(transaction::decode)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("sender recovery thread panicked"))
            .collect()
    })
}
