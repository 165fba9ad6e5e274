//! A small chain for execution tests: genesis allocations, signing, block application.
#![allow(dead_code)]

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use std::collections::BTreeMap;
use trellis_crypto::AccountKey;
use trellis_execution::{
    BlockContext, BlockOutcome, CallOutcome, CallRequest, ExecutionConfig, Executor,
};
use trellis_state::{Account, ChangeSet, MemoryStore, StateReader};
use trellis_types::{BlockHash, Epoch, Header, Height, StateRoot, Timestamp, ValidatorId, View};

pub const CHAIN_ID: u64 = 7_777;
pub const GAS: u64 = 1_000_000;

/// One ether, in wei.
pub fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Creation bytecode of a compiled fixture contract.
pub fn creation_code(contract: &str) -> Bytes {
    let json = match contract {
        "TrellisToken" => include_str!("../../../../contracts/artifacts/TrellisToken.json"),
        "Reverter" => include_str!("../../../../contracts/artifacts/Reverter.json"),
        "CouncilSeat" => include_str!("../../../../contracts/artifacts/CouncilSeat.json"),
        "ShipmentLog" => include_str!("../../../../contracts/artifacts/ShipmentLog.json"),
        "Relay" => include_str!("../../../../contracts/artifacts/Relay.json"),
        "Factory" => include_str!("../../../../contracts/artifacts/Factory.json"),
        other => panic!("no artifact {other}"),
    };
    let artifact: serde_json::Value = serde_json::from_str(json).unwrap();
    let hex_code = artifact["bytecode"].as_str().unwrap();
    Bytes::from(hex::decode(hex_code.trim_start_matches("0x")).unwrap())
}

/// A chain on an in-memory store, executing blocks one after another.
pub struct TestChain {
    pub executor: Executor,
    pub store: MemoryStore,
    pub parent: BlockHash,
    pub ancestors: BTreeMap<Height, BlockHash>,
    pub last_header: Option<Header>,
}

impl TestChain {
    /// Genesis gives each key 1000 ether.
    pub fn new(funded: &[&AccountKey]) -> Self {
        Self::with_config(ExecutionConfig::new(CHAIN_ID), funded)
    }

    pub fn with_config(config: ExecutionConfig, funded: &[&AccountKey]) -> Self {
        let mut genesis = ChangeSet::new();
        for key in funded {
            genesis.set_account(key.address(), Account::with_balance(ether(1000)));
        }
        let mut store = MemoryStore::new();
        let root = store.commit(Height(0), &genesis).unwrap();
        let parent = BlockHash(alloy_primitives::keccak256(root.0));
        Self {
            executor: Executor::new(config),
            store,
            parent,
            ancestors: BTreeMap::from([(Height(0), parent)]),
            last_header: None,
        }
    }

    pub fn context(&self) -> BlockContext {
        let height = self.store.next_height();
        BlockContext {
            height,
            parent: self.parent,
            timestamp: Timestamp(1_750_000_000_000 + height.get() * 500),
            proposer: ValidatorId([7; 32]),
            epoch: Epoch(0),
            view: View(height.get()),
            parent_view: View(height.get() - 1),
            ancestors: self.ancestors.clone(),
        }
    }

    /// Executes a block on the current state without committing it.
    pub fn execute(&self, txs: &[Bytes]) -> BlockOutcome {
        self.executor
            .execute(&self.context(), &self.store, txs)
            .expect("block executes")
    }

    /// Executes and commits a block; returns its outcome and the new state root.
    pub fn apply(&mut self, txs: &[Bytes]) -> (BlockOutcome, StateRoot) {
        let context = self.context();
        let outcome = self.execute(txs);
        let root = self.store.commit(context.height, &outcome.changes).unwrap();
        let header = outcome.header(&context, root);
        if let Some(parent) = &self.last_header {
            header
                .check_child_of(parent)
                .expect("blocks chain correctly");
        }
        self.parent = header.hash();
        self.last_header = Some(header);
        self.ancestors.insert(context.height, self.parent);
        (outcome, root)
    }

    pub fn call(&self, to: Address, data: Bytes) -> CallOutcome {
        let request = CallRequest {
            to: Some(to),
            data,
            ..CallRequest::default()
        };
        self.executor
            .call(&self.context(), &self.store, &request)
            .unwrap()
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.store
            .account(&address)
            .unwrap()
            .map_or(U256::ZERO, |a| a.balance)
    }

    pub fn nonce(&self, address: Address) -> u64 {
        self.store.account(&address).unwrap().map_or(0, |a| a.nonce)
    }
}

/// Signs any typed transaction and returns its EIP-2718 envelope.
pub fn sign<T>(key: &AccountKey, tx: T) -> Bytes
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    key.sign_transaction(tx)
}

/// An EIP-1559 transaction with free gas.
pub fn tx1559(key: &AccountKey, nonce: u64, to: TxKind, value: U256, input: Bytes) -> Bytes {
    sign(
        key,
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: GAS,
            to,
            value,
            input,
            ..TxEip1559::default()
        },
    )
}

/// An EIP-1559 value transfer with the given gas limit and fees.
pub fn tx1559_priced(
    key: &AccountKey,
    nonce: u64,
    to: Address,
    value: U256,
    gas_limit: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
) -> Bytes {
    sign(
        key,
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            to: TxKind::Call(to),
            value,
            ..TxEip1559::default()
        },
    )
}

/// An EIP-155 legacy transaction.
pub fn legacy(
    key: &AccountKey,
    nonce: u64,
    to: Address,
    value: U256,
    chain_id: Option<u64>,
) -> Bytes {
    sign(
        key,
        TxLegacy {
            chain_id,
            nonce,
            gas_price: 0,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value,
            input: Bytes::new(),
        },
    )
}

/// An EIP-2930 transaction.
pub fn tx2930(key: &AccountKey, nonce: u64, to: Address, value: U256) -> Bytes {
    sign(
        key,
        TxEip2930 {
            chain_id: CHAIN_ID,
            nonce,
            gas_price: 0,
            gas_limit: 30_000,
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input: Bytes::new(),
        },
    )
}

/// A plain value transfer.
pub fn transfer(key: &AccountKey, nonce: u64, to: Address, value: U256) -> Bytes {
    tx1559(key, nonce, TxKind::Call(to), value, Bytes::new())
}

/// A contract call.
pub fn call_tx(key: &AccountKey, nonce: u64, to: Address, input: impl Into<Bytes>) -> Bytes {
    tx1559(key, nonce, TxKind::Call(to), U256::ZERO, input.into())
}

/// A contract deployment: creation code followed by ABI-encoded constructor arguments.
pub fn deploy_tx(key: &AccountKey, nonce: u64, code: Bytes, args: &[u8]) -> Bytes {
    let mut input = code.to_vec();
    input.extend_from_slice(args);
    tx1559(key, nonce, TxKind::Create, U256::ZERO, input.into())
}
