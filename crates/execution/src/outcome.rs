//! What executing a block produces: receipts, skipped transactions, state changes, and the
//! header fields that commit to them.

use alloy_consensus::{ReceiptEnvelope, TxType};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, TxHash, U256};
use trellis_state::ChangeSet;
use trellis_types::{Header, StateRoot, senders_root};

use crate::context::BlockContext;
use revm::context::result::HaltReason;

/// The receipt of a transaction that executed (successfully or not) in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReceipt {
    pub tx_hash: TxHash,
    /// Position in the block's transaction list (skipped transactions keep their places).
    pub index: usize,
    pub from: Address,
    /// `None` for a contract creation.
    pub to: Option<Address>,
    /// The created contract's address, for a successful creation.
    pub contract_address: Option<Address>,
    pub gas_used: u64,
    pub effective_gas_price: u128,
    /// The Ethereum receipt (type, EIP-658 status, cumulative gas, logs, bloom), exactly as it
    /// is hashed into the receipts root.
    pub envelope: ReceiptEnvelope,
    /// Return data on success; on revert, the revert data exactly as the contract produced it
    /// (`Error(string)`, `Panic(uint256)` or a custom error, ABI-encoded).
    pub output: Bytes,
    /// Decoded `Error(string)` reason or panic description, when the revert data is one.
    pub revert_reason: Option<String>,
    /// Why execution halted (out of gas, invalid opcode…), for failures that are not reverts.
    pub halt_reason: Option<HaltReason>,
}

impl TxReceipt {
    /// EIP-658 status: true when execution succeeded.
    pub fn success(&self) -> bool {
        self.envelope.status()
    }

    pub fn tx_type(&self) -> TxType {
        self.envelope.tx_type()
    }

    /// Gas used by this and every earlier executed transaction of the block.
    pub fn cumulative_gas_used(&self) -> u64 {
        self.envelope.cumulative_gas_used()
    }

    pub fn logs(&self) -> &[Log] {
        self.envelope.logs()
    }

    pub fn logs_bloom(&self) -> &Bloom {
        self.envelope.logs_bloom()
    }
}

/// Why a transaction in a block was not executed. A skipped transaction changes nothing: not
/// the sender's nonce, not its balance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("malformed transaction: {0}")]
    Malformed(String),
    #[error("unsupported transaction type {0}")]
    UnsupportedType(u8),
    #[error("invalid signature")]
    InvalidSignature,
    #[error("wrong chain id: the chain is {expected}, the transaction is signed for {got:?}")]
    WrongChainId { expected: u64, got: Option<u64> },
    #[error("nonce too low: the account's nonce is {expected}, the transaction has {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce too high: the account's nonce is {expected}, the transaction has {got}")]
    NonceTooHigh { expected: u64, got: u64 },
    #[error("insufficient funds: {needed} wei needed for value and gas, balance is {balance}")]
    InsufficientFunds { needed: U256, balance: U256 },
    #[error("gas limit {gas_limit} is above the block gas limit {block_gas_limit}")]
    GasLimitAboveBlockLimit {
        gas_limit: u64,
        block_gas_limit: u64,
    },
    #[error("block gas exhausted: the transaction may use {gas_limit}, {remaining} remain")]
    BlockGasExhausted { gas_limit: u64, remaining: u64 },
    #[error("fee per gas below the base fee {base_fee}")]
    FeeBelowBaseFee { base_fee: u64 },
    #[error("rejected by the EVM: {0}")]
    Rejected(String),
    #[error("not permitted: {0}")]
    NotPermitted(#[from] trellis_governance::Refusal),
}

/// A transaction left out of execution, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedTx {
    /// Position in the block's transaction list.
    pub index: usize,
    /// keccak-256 of the envelope bytes (also for malformed bytes).
    pub tx_hash: TxHash,
    /// The sender, when the signature could be recovered.
    pub sender: Option<Address>,
    pub reason: SkipReason,
}

/// Everything executing a block produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    /// One per executed transaction, in block order.
    pub receipts: Vec<TxReceipt>,
    /// One per skipped transaction, in block order.
    pub skipped: Vec<SkippedTx>,
    /// The block's whole effect on state.
    pub changes: ChangeSet,
    pub gas_used: u64,
    /// The gas limit the block ran under (the chain's parameter at its parent).
    pub gas_limit: u64,
    pub logs_bloom: Bloom,
    pub receipts_root: B256,
    pub transactions_root: B256,
}

impl BlockOutcome {
    /// The header of the executed block, given the state root after its changes.
    pub fn header(&self, context: &BlockContext, state_root: StateRoot) -> Header {
        let header = Header {
            parent: context.parent,
            height: context.height,
            timestamp: context.timestamp,
            proposer: context.proposer,
            epoch: context.epoch,
            view: context.view,
            parent_view: context.parent_view,
            transactions_root: self.transactions_root,
            senders_root: senders_root(self.receipts.iter().map(|r| r.from)),
            receipts_root: self.receipts_root,
            state_root,
            logs_bloom: self.logs_bloom,
            gas_used: self.gas_used,
            gas_limit: self.gas_limit,
        };
        header
            .check_gas()
            .expect("execution never uses more gas than the block limit");
        header
    }
}
