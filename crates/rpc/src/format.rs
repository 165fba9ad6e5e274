//! Ledger values as the Ethereum JSON-RPC specification's types: alloy's RPC types, whose serde
//! gives exactly the shapes Ethereum clients parse, so no reply is assembled by hand.

use alloy_consensus::{ReceiptEnvelope, TxEnvelope, transaction::Recovered};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{B256, Bytes, U256, b256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};
use commonware_codec::EncodeSize as _;
use trellis_chain::{FoundLog, StoredBlock};
use trellis_types::RecoveredTx;

/// A transaction as `eth_getTransactionBy*` returns it.
pub type RpcTransaction = Transaction<TxEnvelope>;
/// A receipt as `eth_getTransactionReceipt` returns it.
pub type RpcReceipt = TransactionReceipt<ReceiptEnvelope<Log>>;
/// A block as `eth_getBlockBy*` returns it.
pub type RpcBlock = Block<RpcTransaction, Header>;

/// keccak-256 of the RLP of an empty list: the uncles hash of a block without uncles.
const EMPTY_UNCLES_HASH: B256 =
    b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347");

/// The receipt of the `index`th transaction of `stored`.
pub fn receipt(stored: &StoredBlock, index: usize) -> RpcReceipt {
    let block = &stored.block;
    let record = &stored.receipts[index];
    // Log indexes count across the whole block.
    let first_log: usize = stored.receipts[..index]
        .iter()
        .map(|r| r.envelope.logs().len())
        .sum();
    let mut position = first_log;
    let inner = record.envelope.clone().map_logs(|log| {
        let found = FoundLog {
            block_hash: block.hash(),
            height: block.height(),
            tx_hash: record.tx_hash,
            tx_index: index,
            log_index: position,
            log,
        };
        position += 1;
        self::log(&found)
    });
    TransactionReceipt {
        inner,
        transaction_hash: record.tx_hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash().0),
        block_number: Some(block.height().get()),
        gas_used: record.gas_used,
        effective_gas_price: record.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: record.from,
        to: record.to,
        contract_address: record.contract_address,
    }
}

/// A log with where it is in the chain.
pub fn log(found: &FoundLog) -> Log {
    Log {
        inner: found.log.clone(),
        block_hash: Some(found.block_hash.0),
        block_number: Some(found.height.get()),
        block_timestamp: None,
        transaction_hash: Some(found.tx_hash),
        transaction_index: Some(found.tx_index as u64),
        log_index: Some(found.log_index as u64),
        removed: false,
    }
}

/// A transaction the pool holds: not in a block yet.
pub fn pending_transaction(tx: &RecoveredTx) -> RpcTransaction {
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope().clone(), tx.sender()),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}

/// The `index`th transaction of `stored`, as `eth_getTransactionByHash` returns it.
pub fn transaction(stored: &StoredBlock, index: usize) -> RpcTransaction {
    let block = &stored.block;
    let record = &stored.receipts[index];
    let raw = &block.transactions()[index];
    let envelope = TxEnvelope::decode_2718(&mut raw.as_ref())
        .expect("stored blocks hold only transactions that decoded when executed");
    Transaction {
        inner: Recovered::new_unchecked(envelope, record.from),
        block_hash: Some(block.hash().0),
        block_number: Some(block.height().get()),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(record.effective_gas_price),
        block_timestamp: None,
    }
}

/// A block; its transactions as hashes, or as objects when `full`.
pub fn block(stored: &StoredBlock, base_fee: u64, full: bool) -> RpcBlock {
    let count = stored.block.transactions().len();
    let transactions = match full {
        true => BlockTransactions::Full((0..count).map(|i| transaction(stored, i)).collect()),
        false => BlockTransactions::Hashes(stored.receipts.iter().map(|r| r.tx_hash).collect()),
    };
    let mut header = header(stored, base_fee);
    header.size = Some(U256::from(stored.block.encode_size()));
    Block {
        header,
        uncles: Vec::new(),
        transactions,
        withdrawals: None,
    }
}

/// A block's header fields, as `newHeads` notifications carry them.
pub fn header(stored: &StoredBlock, base_fee: u64) -> Header {
    let block = &stored.block;
    let header = block.header();
    let inner = alloy_consensus::Header {
        parent_hash: header.parent.0,
        ommers_hash: EMPTY_UNCLES_HASH,
        beneficiary: header.proposer.coinbase(),
        state_root: header.state_root.0,
        transactions_root: header.transactions_root,
        receipts_root: header.receipts_root,
        logs_bloom: header.logs_bloom,
        difficulty: U256::ZERO,
        number: header.height.get(),
        gas_limit: header.gas_limit,
        gas_used: header.gas_used,
        timestamp: header.timestamp.seconds(),
        extra_data: Bytes::new(),
        mix_hash: header.parent.0,
        nonce: Default::default(),
        base_fee_per_gas: Some(base_fee),
        withdrawals_root: None,
        blob_gas_used: None,
        excess_blob_gas: None,
        parent_beacon_block_root: None,
        requests_hash: None,
        block_access_list_hash: None,
        slot_number: None,
    };
    Header {
        hash: block.hash().0,
        inner,
        total_difficulty: Some(U256::ZERO),
        size: None,
    }
}

#[cfg(test)]
mod tests {
    //! The reply shapes, pinned: every key the specification's objects carry (and no other),
    //! with the values a client reads.

    use super::*;
    use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom, TxEip1559};
    use alloy_primitives::{Address, Log as PrimitiveLog, LogData, TxKind, keccak256};
    use serde_json::{Value, json};
    use std::collections::BTreeSet;
    use trellis_chain::ReceiptRecord;
    use trellis_crypto::AccountKey;
    use trellis_types::{BlockHash, Height, transactions_root};

    const BASE_FEE: u64 = 7;

    /// Block 5 with two signed transfers, each emitting one log.
    fn stored() -> (StoredBlock, AccountKey) {
        let key = AccountKey::from_seed(9);
        let transactions: Vec<trellis_types::Bytes> = (0..2u64)
            .map(|nonce| {
                key.sign_transaction(TxEip1559 {
                    chain_id: 1337,
                    nonce,
                    gas_limit: 50_000,
                    max_fee_per_gas: 20,
                    max_priority_fee_per_gas: 2,
                    to: TxKind::Call(Address::repeat_byte(0xbb)),
                    value: U256::from(3),
                    ..TxEip1559::default()
                })
            })
            .collect();
        let header = trellis_types::Header {
            parent: BlockHash(B256::repeat_byte(0x11)),
            height: Height(5),
            transactions_root: transactions_root(&transactions),
            gas_limit: 30_000_000,
            gas_used: 42_000,
            ..trellis_types::Header::default()
        };
        let receipts = transactions
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let log = PrimitiveLog {
                    address: Address::repeat_byte(0xaa),
                    data: LogData::new_unchecked(vec![B256::repeat_byte(i as u8)], Bytes::new()),
                };
                let receipt = Receipt {
                    status: Eip658Value::Eip658(true),
                    cumulative_gas_used: 21_000 * (i as u64 + 1),
                    logs: vec![log],
                };
                let bloom = receipt.bloom_slow();
                ReceiptRecord {
                    tx_hash: keccak256(raw),
                    from: key.address(),
                    to: Some(Address::repeat_byte(0xbb)),
                    contract_address: None,
                    gas_used: 21_000,
                    effective_gas_price: 9,
                    envelope: ReceiptEnvelope::Eip1559(ReceiptWithBloom::new(receipt, bloom)),
                }
            })
            .collect();
        let block = trellis_types::Block::new(header, transactions).expect("its own root");
        (StoredBlock { block, receipts }, key)
    }

    fn keys(value: &Value) -> BTreeSet<&str> {
        value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
        names.iter().copied().collect()
    }

    #[test]
    fn a_receipt_has_the_specification_fields_and_block_wide_log_indexes() {
        let (stored, key) = stored();
        let value = serde_json::to_value(receipt(&stored, 1)).unwrap();
        assert_eq!(
            keys(&value),
            set(&[
                "transactionHash",
                "transactionIndex",
                "blockHash",
                "blockNumber",
                "from",
                "to",
                "contractAddress",
                "cumulativeGasUsed",
                "gasUsed",
                "effectiveGasPrice",
                "logs",
                "logsBloom",
                "status",
                "type",
            ])
        );
        assert_eq!(value["status"], "0x1");
        assert_eq!(value["type"], "0x2");
        assert_eq!(value["transactionIndex"], "0x1");
        assert_eq!(value["blockNumber"], "0x5");
        assert_eq!(value["cumulativeGasUsed"], "0xa410");
        assert_eq!(value["effectiveGasPrice"], "0x9");
        assert_eq!(value["contractAddress"], Value::Null);
        assert_eq!(value["from"], json!(key.address()));
        let log = &value["logs"][0];
        assert_eq!(log["logIndex"], "0x1", "log indexes count across the block");
        assert_eq!(log["transactionIndex"], "0x1");
        assert_eq!(log["removed"], false);
    }

    #[test]
    fn a_log_has_the_specification_fields() {
        let (stored, _) = stored();
        let value = serde_json::to_value(receipt(&stored, 0)).unwrap()["logs"][0].clone();
        assert_eq!(
            keys(&value),
            set(&[
                "address",
                "topics",
                "data",
                "blockHash",
                "blockNumber",
                "transactionHash",
                "transactionIndex",
                "logIndex",
                "removed",
            ])
        );
        assert_eq!(value["logIndex"], "0x0");
        assert_eq!(value["data"], "0x");
    }

    #[test]
    fn a_finalized_transaction_names_its_block_and_a_pending_one_does_not() {
        let (stored, key) = stored();
        let value = serde_json::to_value(transaction(&stored, 1)).unwrap();
        for field in [
            "hash",
            "from",
            "blockHash",
            "blockNumber",
            "transactionIndex",
        ] {
            assert!(value.get(field).is_some(), "{field} in {value}");
        }
        assert_eq!(value["from"], json!(key.address()));
        assert_eq!(value["nonce"], "0x1");
        assert_eq!(value["gasPrice"], "0x9", "the effective price it paid");
        assert_eq!(value["hash"], json!(stored.receipts[1].tx_hash));
        assert_eq!(value["blockNumber"], "0x5");

        let raw = stored.block.transactions()[0].clone();
        let recovered = trellis_types::transaction::decode(raw).unwrap();
        let pending = serde_json::to_value(pending_transaction(&recovered)).unwrap();
        assert_eq!(pending["blockHash"], Value::Null);
        assert_eq!(pending["blockNumber"], Value::Null);
        assert_eq!(pending["transactionIndex"], Value::Null);
        assert_eq!(pending["from"], json!(key.address()));
        assert_eq!(pending["hash"], json!(stored.receipts[0].tx_hash));
    }

    #[test]
    fn a_block_has_the_specification_fields_with_hashes_or_full_transactions() {
        let (stored, _) = stored();
        let value = serde_json::to_value(block(&stored, BASE_FEE, false)).unwrap();
        assert_eq!(
            keys(&value),
            set(&[
                "number",
                "hash",
                "parentHash",
                "nonce",
                "sha3Uncles",
                "logsBloom",
                "transactionsRoot",
                "stateRoot",
                "receiptsRoot",
                "miner",
                "difficulty",
                "totalDifficulty",
                "extraData",
                "gasLimit",
                "gasUsed",
                "timestamp",
                "mixHash",
                "baseFeePerGas",
                "transactions",
                "uncles",
                "size",
            ])
        );
        assert_eq!(value["number"], "0x5");
        assert_eq!(value["baseFeePerGas"], "0x7");
        assert_eq!(value["nonce"], "0x0000000000000000");
        assert_eq!(value["difficulty"], "0x0");
        assert_eq!(value["uncles"], json!([]));
        assert_eq!(
            value["transactions"],
            json!([stored.receipts[0].tx_hash, stored.receipts[1].tx_hash])
        );
        let full = serde_json::to_value(block(&stored, BASE_FEE, true)).unwrap();
        assert_eq!(full["transactions"][1]["nonce"], "0x1");
        let header = serde_json::to_value(header(&stored, BASE_FEE)).unwrap();
        assert_eq!(
            keys(&header),
            &keys(&value) - &set(&["transactions", "uncles", "size"]),
            "newHeads carries the header fields"
        );
    }
}
