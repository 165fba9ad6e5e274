//! The Ethereum JSON-RPC API on a real dev chain, over plain HTTP: an ERC-20's whole workflow
//! through every read method (state, calls, gas estimates, blocks, transactions, receipts, logs
//! and filters), and bad requests, each refused with a precise error while the node keeps
//! serving and nothing changes.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall, SolError, SolValue, sol};
use serde_json::{Value, json};
use std::time::Duration;
use support::{DevNode, dev_accounts, hex_u64, post};
use trellis_crypto::AccountKey;

const CHAIN_ID: u64 = 1337;
const SUPPLY: u64 = 1_000_000;

sol! {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
}

/// keccak-256 of `Transfer(address,address,uint256)`.
fn transfer_topic() -> B256 {
    keccak256("Transfer(address,address,uint256)")
}

fn artifact() -> Value {
    serde_json::from_str(include_str!(
        "../../../contracts/artifacts/TrellisToken.json"
    ))
    .unwrap()
}

fn creation_code() -> Bytes {
    let code = artifact()["bytecode"].as_str().unwrap().to_string();
    let mut code = alloy_primitives::hex::decode(code).unwrap();
    code.extend(
        (
            "Api Token".to_string(),
            "API".to_string(),
            U256::from(SUPPLY),
        )
            .abi_encode_params(),
    );
    code.into()
}

fn signed(key: &AccountKey, nonce: u64, to: TxKind, input: Bytes, gas_limit: u64) -> String {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        to,
        input,
        ..TxEip1559::default()
    });
    format!("{raw}")
}

/// Sends a transaction and waits for its successful receipt.
fn send(node: &DevNode, raw: &str) -> Value {
    let hash = node.call("eth_sendRawTransaction", json!([raw]));
    let receipt = node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    receipt
}

fn transfer_input(to: Address, value: u64) -> Bytes {
    transferCall {
        to,
        value: U256::from(value),
    }
    .abi_encode()
    .into()
}

/// The error object of a request that must fail.
fn error(node: &DevNode, method: &str, params: Value) -> (i64, String, Value) {
    let response = node.request(method, params);
    let error = &response["error"];
    assert!(error.is_object(), "{method} succeeded: {response}");
    (
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_string(),
        error["data"].clone(),
    )
}

#[test]
fn an_erc20_workflow_through_every_read_method() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "2"]);
    let keys = dev_accounts(dir.path());
    let owner = &keys[0];
    let alice = Address::repeat_byte(0xa1);

    assert_eq!(
        node.call("web3_clientVersion", json!([]))
            .as_str()
            .unwrap()
            .split('/')
            .next(),
        Some("trellis")
    );
    assert_eq!(
        node.call("web3_sha3", json!(["0x68656c6c6f20776f726c64"])),
        json!(format!("{:#x}", keccak256("hello world")))
    );
    assert_eq!(node.call("net_version", json!([])), "1337");
    assert_eq!(node.call("eth_chainId", json!([])), "0x539");
    assert_eq!(node.call("net_listening", json!([])), true);
    assert_eq!(node.call("eth_syncing", json!([])), false);
    assert_eq!(node.call("eth_accounts", json!([])), json!([]));
    assert_eq!(node.call("eth_maxPriorityFeePerGas", json!([])), "0x0");

    // Deploy: the code at the new address is the artifact's runtime code.
    let receipt = send(
        &node,
        &signed(owner, 0, TxKind::Create, creation_code(), 3_000_000),
    );
    let deployed = hex_u64(&receipt["blockNumber"]);
    let token: Address = serde_json::from_value(receipt["contractAddress"].clone()).unwrap();
    assert_eq!(
        node.call("eth_getCode", json!([token, "latest"])),
        artifact()["deployedBytecode"]
    );
    assert_eq!(node.call("eth_getCode", json!([alice])), "0x");

    // A call reads the balance; the mapping's slot holds the same value.
    let balance_at = |who: Address, block: Value| {
        let data = Bytes::from(balanceOfCall { owner: who }.abi_encode());
        let out = node.call("eth_call", json!([{"to": token, "data": data}, block]));
        U256::from_str_radix(out.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let balance_of = |who: Address| balance_at(who, json!("latest"));
    assert_eq!(balance_of(owner.address()), U256::from(SUPPLY));
    let slot = keccak256((owner.address(), U256::from(3)).abi_encode());
    assert_eq!(
        node.call("eth_getStorageAt", json!([token, slot, "latest"])),
        json!(format!("{:#066x}", U256::from(SUPPLY)))
    );

    // The estimate suffices: a transfer sent with exactly the estimated gas succeeds.
    let input = transfer_input(alice, 250);
    let estimate = node.call(
        "eth_estimateGas",
        json!([{"from": owner.address(), "to": token, "input": input}]),
    );
    let gas = hex_u64(&estimate);
    assert!((21_000..100_000).contains(&gas), "estimate {gas}");
    let receipt = send(&node, &signed(owner, 1, TxKind::Call(token), input, gas));
    assert_eq!(balance_of(alice), U256::from(250));

    // The state at earlier blocks: before and after the transfer, before the deployment.
    let transferred = hex_u64(&receipt["blockNumber"]);
    let before = json!(format!("{:#x}", transferred - 1));
    assert_eq!(balance_at(alice, before.clone()), U256::ZERO);
    assert_eq!(
        balance_at(alice, receipt["blockNumber"].clone()),
        U256::from(250)
    );
    let by_hash = json!({"blockHash": receipt["blockHash"]});
    assert_eq!(balance_at(alice, by_hash), U256::from(250));
    let alice_slot = keccak256((alice, U256::from(3)).abi_encode());
    assert_eq!(
        node.call("eth_getStorageAt", json!([token, alice_slot, before])),
        json!(format!("{:#066x}", 0))
    );
    assert_eq!(
        node.call(
            "eth_getCode",
            json!([token, format!("{:#x}", deployed - 1)])
        ),
        "0x"
    );
    assert_eq!(
        node.call(
            "eth_getTransactionCount",
            json!([owner.address(), "earliest"])
        ),
        "0x0"
    );
    assert_eq!(
        node.call("eth_getTransactionCount", json!([owner.address(), before])),
        "0x1"
    );
    assert_eq!(
        node.call("eth_getBalance", json!([owner.address(), "earliest"])),
        node.call("eth_getBalance", json!([owner.address(), "latest"])),
        "gas is free on the dev chain"
    );

    // A call that reverts: code 3, the custom error's data for the client's ABI to decode.
    let (code, message, data) = error(
        &node,
        "eth_call",
        json!([{"from": alice, "to": token, "data": transfer_input(owner.address(), 251)}]),
    );
    assert_eq!((code, message.as_str()), (3, "execution reverted"));
    let data: Bytes = serde_json::from_value(data).unwrap();
    assert_eq!(
        InsufficientBalance::abi_decode(&data).unwrap().needed,
        U256::from(251)
    );
    let (code, ..) = error(
        &node,
        "eth_estimateGas",
        json!([{"from": alice, "to": token, "data": transfer_input(owner.address(), 251)}]),
    );
    assert_eq!(code, 3);

    // The transfer's block, transaction and receipt, every way they can be asked for.
    let block_hash = receipt["blockHash"].clone();
    let number = receipt["blockNumber"].clone();
    let by_hash = node.call("eth_getBlockByHash", json!([block_hash, false]));
    assert_eq!(
        by_hash,
        node.call("eth_getBlockByNumber", json!([number, false]))
    );
    assert_eq!(by_hash["transactions"], json!([receipt["transactionHash"]]));
    let full = node.call("eth_getBlockByHash", json!([block_hash, true]));
    let tx = node.call(
        "eth_getTransactionByHash",
        json!([receipt["transactionHash"]]),
    );
    assert_eq!(full["transactions"][0], tx);
    assert_eq!(tx["from"], json!(owner.address()));
    assert_eq!(tx["input"], json!(transfer_input(alice, 250)));
    assert_eq!(
        node.call(
            "eth_getTransactionByBlockHashAndIndex",
            json!([block_hash, "0x0"])
        ),
        tx
    );
    assert_eq!(
        node.call(
            "eth_getTransactionByBlockNumberAndIndex",
            json!([number, "0x0"])
        ),
        tx
    );
    assert!(
        node.call(
            "eth_getTransactionByBlockNumberAndIndex",
            json!([number, "0x1"])
        )
        .is_null()
    );
    assert_eq!(
        node.call("eth_getBlockTransactionCountByHash", json!([block_hash])),
        "0x1"
    );
    assert_eq!(
        node.call("eth_getBlockTransactionCountByNumber", json!([number])),
        "0x1"
    );
    assert_eq!(
        node.call("eth_getBlockReceipts", json!([number])),
        json!([receipt])
    );
    assert!(
        node.call("eth_getBlockByHash", json!([B256::repeat_byte(9), false]))
            .is_null()
    );

    // Logs: by address and topic (null and OR positions), by block hash.
    let to_alice = B256::left_padding_from(alice.as_slice());
    let logs = node.call(
        "eth_getLogs",
        json!([{"fromBlock": "earliest", "toBlock": "latest", "address": [token],
                "topics": [transfer_topic(), null, [to_alice, B256::repeat_byte(1)]]}]),
    );
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(logs[0], receipt["logs"][0]);
    let all = node.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "address": token}]),
    );
    assert_eq!(all.as_array().unwrap().len(), 2, "mint and transfer: {all}");
    let in_block = node.call("eth_getLogs", json!([{"blockHash": block_hash}]));
    assert_eq!(in_block, receipt["logs"]);
    let none = node.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "topics": [B256::repeat_byte(5)]}]),
    );
    assert_eq!(none, json!([]));

    // Polled filters see what happens after they are installed, once.
    let log_filter = node.call(
        "eth_newFilter",
        json!([{"fromBlock": "earliest", "address": token, "topics": [transfer_topic()]}]),
    );
    let block_filter = node.call("eth_newBlockFilter", json!([]));
    assert_eq!(
        node.call("eth_getFilterChanges", json!([log_filter])),
        json!([])
    );
    let receipt = send(
        &node,
        &signed(
            owner,
            2,
            TxKind::Call(token),
            transfer_input(alice, 1),
            100_000,
        ),
    );
    let changes = node.call("eth_getFilterChanges", json!([log_filter]));
    assert_eq!(changes, receipt["logs"]);
    assert_eq!(
        node.call("eth_getFilterChanges", json!([log_filter])),
        json!([])
    );
    let hashes = node.call("eth_getFilterChanges", json!([block_filter]));
    assert!(
        hashes.as_array().unwrap().contains(&receipt["blockHash"]),
        "{hashes}"
    );
    // The filter's whole range: the mint and both transfers.
    let logs = node.call("eth_getFilterLogs", json!([log_filter]));
    assert_eq!(logs.as_array().unwrap().len(), 3, "{logs}");
    assert_eq!(logs[2], receipt["logs"][0]);
    assert_eq!(node.call("eth_uninstallFilter", json!([log_filter])), true);
    assert_eq!(node.call("eth_uninstallFilter", json!([log_filter])), false);
    let (code, message, _) = error(&node, "eth_getFilterChanges", json!([log_filter]));
    assert_eq!(code, -32602);
    assert!(message.contains("not found"), "{message}");

    let history = node.call("eth_feeHistory", json!(["0x4", "latest", [50.0]]));
    assert_eq!(
        history["baseFeePerGas"].as_array().unwrap().len(),
        5,
        "{history}"
    );
    assert_eq!(history["reward"].as_array().unwrap().len(), 4, "{history}");
}

#[test]
fn bad_requests_get_precise_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "1"]);
    let owner = dev_accounts(dir.path())[0].address();
    let balance = node.call("eth_getBalance", json!([owner]));
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));

    let raw = |body: &str| -> (String, Value) {
        let (status, body) = post(node.rpc, body);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let (_, response) = raw("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    assert_eq!(response["error"]["code"], -32700, "{response}");
    let (_, response) = raw("{\"jsonrpc\": \"2.0\", \"id\": 1}");
    assert_eq!(response["error"]["code"], -32600, "{response}");
    let (_, response) =
        raw("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"eth_mine\", \"params\": []}");
    assert_eq!(response["error"]["code"], -32601, "{response}");

    let expect = |method: &str, params: Value, code: i64, text: &str| {
        let (got, message, _) = error(&node, method, params.clone());
        assert_eq!(got, code, "{method} {params}: {message}");
        assert!(
            message.contains(text),
            "{method} {params}: {message:?} lacks {text:?}"
        );
    };
    expect(
        "eth_getBalance",
        json!([123]),
        -32602,
        "expected an address as the first parameter",
    );
    expect(
        "eth_getBalance",
        json!([owner, "0x1", 5]),
        -32602,
        "too many parameters",
    );
    expect(
        "eth_getBalance",
        json!({"address": owner}),
        -32602,
        "must be an array",
    );
    expect(
        "eth_getBlockByNumber",
        json!(["0x1ffffffffffffffff", false]),
        -32602,
        "below 2^64",
    );
    expect(
        "eth_getBlockByNumber",
        json!(["0x1", "yes"]),
        -32602,
        "true (full transactions)",
    );
    expect(
        "eth_getTransactionByBlockNumberAndIndex",
        json!(["0x1", "0x1ffffffffffffffff"]),
        -32602,
        "transaction index",
    );
    expect(
        "eth_getBalance",
        json!([owner, {"blockHash": B256::repeat_byte(3)}]),
        -32000,
        "not found",
    );
    expect(
        "eth_getBalance",
        json!([owner, "0xffffff"]),
        -32000,
        "not finalized yet",
    );
    expect(
        "eth_getLogs",
        json!([{"fromBlock": "0x5", "toBlock": "0x1"}]),
        -32602,
        "reversed",
    );
    expect(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "0xfffffff"}]),
        -32005,
        "at most 100000 blocks",
    );
    expect(
        "eth_getLogs",
        json!([{"blockHash": B256::repeat_byte(3)}]),
        -32000,
        "unknown block",
    );
    expect(
        "eth_call",
        json!([{"to": owner, "value": "0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}]),
        -32602,
        "call object",
    );
    expect(
        "eth_call",
        json!([{"to": owner, "data": "0x01", "input": "0x02"}]),
        -32602,
        "differ",
    );
    let pauper = Address::repeat_byte(0x99);
    expect(
        "eth_estimateGas",
        json!([{"from": pauper, "to": owner, "value": "0x1"}]),
        -32000,
        "insufficient funds for gas * price + value",
    );
    expect(
        "eth_call",
        json!([{"to": owner, "gas": "0x1"}]),
        -32000,
        "intrinsic gas too low",
    );
    expect(
        "eth_feeHistory",
        json!(["0x0", "latest"]),
        -32602,
        "out of range",
    );
    expect(
        "eth_subscribe",
        json!(["newHeads"]),
        -32601,
        "available over WebSocket only",
    );
    expect("eth_uninstallFilter", json!([5]), -32602, "filter id");

    // A batch answers each call; an oversized batch is refused whole.
    let batch: Vec<Value> = (0..3)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": []}))
        .collect();
    let (_, response) = raw(&Value::Array(batch).to_string());
    assert_eq!(response.as_array().map(Vec::len), Some(3), "{response}");
    let batch: Vec<Value> = (0..1_001)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": []}))
        .collect();
    let (_, response) = raw(&Value::Array(batch).to_string());
    assert!(response.to_string().contains("1000"), "{response}");

    // An oversized body is refused before it is read.
    let huge = format!(
        "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"web3_sha3\", \"params\": [\"0x{}\"]}}",
        "ab".repeat(9 << 20)
    );
    let (status, _) = raw(&huge);
    assert!(status.contains("413"), "{status}");

    // The node still serves, and nothing changed.
    assert_eq!(node.call("eth_getBalance", json!([owner])), balance);
    assert!(hex_u64(&node.call("eth_blockNumber", json!([]))) >= height);
}

#[test]
fn a_batch_of_transactions_is_admitted_in_order_with_one_answer_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "2"]);
    let keys = dev_accounts(dir.path());
    let to = TxKind::Call(Address::repeat_byte(0xb2));
    let pay = |key: &AccountKey, nonce: u64| signed(key, nonce, to, Bytes::new(), 21_000);
    let (a0, a1, b0) = (pay(&keys[0], 0), pay(&keys[0], 1), pay(&keys[1], 0));
    let hash = |raw: &str| format!("{:#x}", keccak256(raw.parse::<Bytes>().unwrap()));

    // a's two nonces in order, a call of another method between transactions, bad
    // parameters, a duplicate, b's transfer, undecodable bytes.
    let send = |raw: Value| json!({"method": "eth_sendRawTransaction", "params": [raw]});
    let calls = [
        send(json!(a0)),
        send(json!(a1)),
        json!({"method": "eth_blockNumber", "params": []}),
        send(json!(5)),
        send(json!(a1)),
        send(json!(b0)),
        send(json!("0x1234")),
    ];
    let batch: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(id, call)| {
            let mut call = call.clone();
            call["jsonrpc"] = json!("2.0");
            call["id"] = json!(id);
            call
        })
        .collect();
    let (_, body) = post(node.rpc, &Value::Array(batch).to_string());
    let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
    let ids: Vec<u64> = answers.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..calls.len() as u64).collect::<Vec<_>>(), "{body}");
    assert_eq!(answers[0]["result"], json!(hash(&a0)), "{body}");
    assert_eq!(answers[1]["result"], json!(hash(&a1)), "{body}");
    assert!(answers[2]["result"].as_str().unwrap().starts_with("0x"));
    assert_eq!(answers[3]["error"]["code"], -32602, "{body}");
    assert_eq!(answers[4]["error"]["code"], -32000, "{body}");
    assert_eq!(answers[4]["error"]["message"], "already known", "{body}");
    assert_eq!(answers[5]["result"], json!(hash(&b0)), "{body}");
    assert_eq!(answers[6]["error"]["code"], -32000, "{body}");
    let message = answers[6]["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("malformed transaction"), "{body}");

    for raw in [&a0, &a1, &b0] {
        let receipt = node.wait_for_receipt(&hash(raw), Duration::from_secs(30));
        assert_eq!(receipt["status"], "0x1", "{receipt}");
    }
    let nonce = node.call(
        "eth_getTransactionCount",
        json!([keys[0].address(), "latest"]),
    );
    assert_eq!(hex_u64(&nonce), 2);
}
