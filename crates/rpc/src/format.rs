//! Ledger values in the JSON shapes of the Ethereum JSON-RPC specification.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{B256, U256, b256};
use commonware_codec::EncodeSize as _;
use serde_json::{Map, Value, json};
use trellis_chain::{FoundLog, StoredBlock};
use trellis_types::RecoveredTx;

/// keccak-256 of the RLP of an empty list: the uncles hash of a block without uncles.
const EMPTY_UNCLES_HASH: B256 =
    b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347");

pub fn quantity(n: impl Into<u128>) -> String {
    format!("{:#x}", n.into())
}

pub fn u256(n: U256) -> String {
    format!("{n:#x}")
}

fn hash(h: &B256) -> String {
    format!("{h:#x}")
}

/// The receipt of the `index`th transaction of `stored`.
pub fn receipt(stored: &StoredBlock, index: usize) -> Value {
    let block = &stored.block;
    let record = &stored.receipts[index];
    let block_hash = hash(&block.hash().0);
    let number = quantity(block.height().get());
    // Log indexes count across the whole block.
    let first_log: usize = stored.receipts[..index]
        .iter()
        .map(|r| r.envelope.logs().len())
        .sum();
    let logs: Vec<Value> = record
        .envelope
        .logs()
        .iter()
        .enumerate()
        .map(|(i, log)| {
            self::log(&FoundLog {
                block_hash: block.hash(),
                height: block.height(),
                tx_hash: record.tx_hash,
                tx_index: index,
                log_index: first_log + i,
                log: log.clone(),
            })
        })
        .collect();
    json!({
        "transactionHash": hash(&record.tx_hash),
        "transactionIndex": quantity(index as u64),
        "blockHash": block_hash,
        "blockNumber": number,
        "from": record.from,
        "to": record.to,
        "contractAddress": record.contract_address,
        "cumulativeGasUsed": quantity(record.envelope.cumulative_gas_used()),
        "gasUsed": quantity(record.gas_used),
        "effectiveGasPrice": quantity(record.effective_gas_price),
        "logs": logs,
        "logsBloom": record.envelope.logs_bloom(),
        "status": quantity(u64::from(record.envelope.status())),
        "type": quantity(u64::from(u8::from(record.envelope.tx_type()))),
    })
}

/// A log with where it is in the chain.
pub fn log(found: &FoundLog) -> Value {
    json!({
        "address": found.log.address,
        "topics": found.log.topics(),
        "data": found.log.data.data,
        "blockHash": hash(&found.block_hash.0),
        "blockNumber": quantity(found.height.get()),
        "transactionHash": hash(&found.tx_hash),
        "transactionIndex": quantity(found.tx_index as u64),
        "logIndex": quantity(found.log_index as u64),
        "removed": false,
    })
}

/// A transaction the pool holds: not in a block yet.
pub fn pending_transaction(tx: &RecoveredTx) -> Value {
    let mut object = envelope_fields(tx.envelope());
    object.insert("hash".into(), hash(&tx.hash()).into());
    object.insert("from".into(), json!(tx.sender()));
    object.insert("blockHash".into(), Value::Null);
    object.insert("blockNumber".into(), Value::Null);
    object.insert("transactionIndex".into(), Value::Null);
    Value::Object(object)
}

/// The signed fields of a transaction, in the specification's shape.
fn envelope_fields(envelope: &TxEnvelope) -> Map<String, Value> {
    match serde_json::to_value(envelope) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The `index`th transaction of `stored`, as `eth_getTransactionByHash` returns it.
pub fn transaction(stored: &StoredBlock, index: usize) -> Value {
    let block = &stored.block;
    let record = &stored.receipts[index];
    let raw = &block.transactions()[index];
    let envelope = TxEnvelope::decode_2718(&mut raw.as_ref())
        .expect("stored blocks hold only transactions that decoded when executed");
    let mut object = envelope_fields(&envelope);
    object.insert("hash".into(), hash(&record.tx_hash).into());
    object.insert("from".into(), json!(record.from));
    object.insert("blockHash".into(), hash(&block.hash().0).into());
    object.insert("blockNumber".into(), quantity(block.height().get()).into());
    object.insert("transactionIndex".into(), quantity(index as u64).into());
    object.insert(
        "gasPrice".into(),
        quantity(record.effective_gas_price).into(),
    );
    Value::Object(object)
}

/// A block; its transactions as hashes, or as objects when `full`.
pub fn block(stored: &StoredBlock, base_fee: u64, full: bool) -> Value {
    let transactions: Vec<Value> = (0..stored.block.transactions().len())
        .map(|i| {
            if full {
                transaction(stored, i)
            } else {
                hash(&stored.receipts[i].tx_hash).into()
            }
        })
        .collect();
    let mut object = header(stored, base_fee);
    object["transactions"] = transactions.into();
    object["uncles"] = json!([]);
    object["size"] = quantity(stored.block.encode_size() as u64).into();
    object
}

/// A block's header fields, as `newHeads` notifications carry them.
pub fn header(stored: &StoredBlock, base_fee: u64) -> Value {
    let block = &stored.block;
    let header = block.header();
    json!({
        "number": quantity(header.height.get()),
        "hash": hash(&block.hash().0),
        "parentHash": hash(&header.parent.0),
        "nonce": "0x0000000000000000",
        "sha3Uncles": hash(&EMPTY_UNCLES_HASH),
        "logsBloom": header.logs_bloom,
        "transactionsRoot": hash(&header.transactions_root),
        "stateRoot": hash(&header.state_root.0),
        "receiptsRoot": hash(&header.receipts_root),
        "miner": header.proposer.coinbase(),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp.seconds()),
        "mixHash": hash(&header.parent.0),
        "baseFeePerGas": quantity(base_fee),
    })
}
