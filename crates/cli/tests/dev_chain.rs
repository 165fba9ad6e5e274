//! `trellis dev` as a user runs it: a real process, JSON-RPC over HTTP on loopback, signed
//! transactions, a kill and a restart.

mod support;

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{BlockWatcher, DevNode, Seen, dev_accounts, hex_u64, hex_u128, percentiles};
use trellis_crypto::AccountKey;

const CHAIN_ID: u64 = 1337;
const VALUE: u64 = 1_000_000;

fn transfer(key: &AccountKey, nonce: u64, to: Address, value: u64) -> String {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..TxEip1559::default()
    });
    format!("{raw}")
}

fn balance(node: &DevNode, address: Address) -> u128 {
    hex_u128(&node.call("eth_getBalance", json!([address, "latest"])))
}

/// Prints the time from each `eth_sendRawTransaction` to its block being visible over RPC,
/// and the block interval meanwhile.
fn report(label: &str, sent: &[(String, Instant)], seen: &Seen) {
    let latencies = sent
        .iter()
        .map(|(hash, start)| seen.transactions[hash].duration_since(*start))
        .collect();
    let (p50, p99) = percentiles(latencies);
    let blocks = &seen.blocks;
    let span = blocks.last().unwrap().1.duration_since(blocks[0].1);
    println!(
        "{label}: {} transfers, sent → in a visible block: p50 {p50:?}, p99 {p99:?}; {} blocks, one every {:?}",
        sent.len(),
        blocks.len(),
        span / (blocks.len().max(2) as u32 - 1)
    );
}

/// A dev chain of `validators` in a new directory; 10 transfers from each of 20 accounts sent
/// over HTTP, all finalized with receipts, and the balances add up. Prints the latency figures.
fn two_hundred_transfers(validators: usize) -> (tempfile::TempDir, DevNode, Vec<AccountKey>) {
    let dir = tempfile::tempdir().unwrap();
    let count = validators.to_string();
    let node = DevNode::dev(dir.path(), &["--validators", &count, "--accounts", "20"]);
    assert_eq!(hex_u64(&node.call("eth_chainId", json!([]))), CHAIN_ID);
    assert_eq!(node.call("net_version", json!([])), json!("1337"));
    let keys = dev_accounts(dir.path());
    assert_eq!(keys.len(), 20);
    let initial = balance(&node, keys[0].address());
    assert_eq!(initial, 1_000_000 * 10u128.pow(18));

    // 10 transfers from each of 20 accounts, each to an account that starts empty.
    // Measure the running chain, not its first seconds: consensus needs only 3 of 4 links, so
    // blocks come before every validator has dialled every other, and a transaction gossiped
    // to a validator not yet connected misses it (that validator, leading, then waits the
    // empty-block interval, ~1 s, with an empty pool).
    node.wait_for_height(2, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let watcher = BlockWatcher::start(node.rpc);
    let mut sent = Vec::new();
    for nonce in 0..10u64 {
        for (i, key) in keys.iter().enumerate() {
            let raw = transfer(key, nonce, recipient(i), VALUE);
            let start = Instant::now();
            let hash = node.call("eth_sendRawTransaction", json!([raw]));
            sent.push((hash.as_str().unwrap().to_string(), start));
        }
        let pending = node.call(
            "eth_getTransactionCount",
            json!([keys[0].address(), "pending"]),
        );
        assert!(
            hex_u64(&pending) > nonce,
            "pending nonce counts pooled transactions"
        );
    }
    for (hash, _) in &sent {
        let receipt = node.wait_for_receipt(hash, Duration::from_secs(120));
        assert_eq!(receipt["status"], json!("0x1"));
        assert_eq!(receipt["transactionHash"], json!(hash));
        let block = node.call(
            "eth_getBlockByNumber",
            json!([receipt["blockNumber"], false]),
        );
        assert_eq!(block["hash"], receipt["blockHash"]);
        assert!(
            block["transactions"]
                .as_array()
                .unwrap()
                .contains(&json!(hash))
        );
    }
    std::thread::sleep(Duration::from_millis(20));
    report(
        &format!("{validators} validator(s)"),
        &sent,
        &watcher.finish(),
    );

    for key in &keys {
        assert_eq!(
            balance(&node, key.address()),
            initial - 10 * u128::from(VALUE)
        );
        let nonce = node.call("eth_getTransactionCount", json!([key.address(), "latest"]));
        assert_eq!(hex_u64(&nonce), 10);
    }
    let received: u128 = (0..5).map(|i| balance(&node, recipient(i))).sum();
    assert_eq!(received, 200 * u128::from(VALUE));
    (dir, node, keys)
}

#[test]
fn one_validator_finalizes_200_transfers() {
    two_hundred_transfers(1);
}

#[test]
fn four_validators_finalize_200_transfers_and_survive_a_restart() {
    let (dir, node, keys) = two_hundred_transfers(4);
    let initial = 1_000_000 * 10u128.pow(18);
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));
    let block = node.call(
        "eth_getBlockByNumber",
        json!([format!("{height:#x}"), true]),
    );
    node.kill();

    let node = DevNode::dev(dir.path(), &["--validators", "4"]);
    let after = hex_u64(&node.call("eth_blockNumber", json!([])));
    assert!(after >= height, "height went back from {height} to {after}");
    let same = node.call(
        "eth_getBlockByNumber",
        json!([format!("{height:#x}"), true]),
    );
    assert_eq!(same, block, "block {height} changed across the restart");
    for key in &keys {
        assert_eq!(
            balance(&node, key.address()),
            initial - 10 * u128::from(VALUE)
        );
    }
    // And the chain goes on.
    let hash = node.call(
        "eth_sendRawTransaction",
        json!([transfer(&keys[0], 10, recipient(0), VALUE)]),
    );
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(60));
}

/// Where the transfers of account `i` go. Not 0x01..0x11: those are precompiles, and a plain
/// transfer to one fails.
fn recipient(i: usize) -> Address {
    Address::repeat_byte(0xa0 + (i % 5) as u8)
}

/// The error a rejected `eth_sendRawTransaction` gets.
fn rejection(node: &DevNode, raw: &str) -> (i64, String) {
    let response = node.request("eth_sendRawTransaction", json!([raw]));
    let error = &response["error"];
    assert!(error.is_object(), "accepted: {response}");
    (
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn bad_transactions_get_precise_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::dev(dir.path(), &["--accounts", "2"]);
    let keys = dev_accounts(dir.path());
    let rich = &keys[0];
    let before = balance(&node, rich.address());
    let to = Address::with_last_byte(0x77);

    // A first transfer, finalized, so that nonce 0 is then too low.
    let hash = node.call("eth_sendRawTransaction", json!([transfer(rich, 0, to, 5)]));
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));

    let (code, message) = rejection(&node, "0xdeadbeef");
    assert_eq!(code, -32000);
    assert!(message.starts_with("malformed transaction"), "{message}");

    let (code, message) = rejection(&node, "0x1234zz");
    assert_eq!(code, -32602, "{message}");

    let wrong_chain = rich.sign_transaction(TxLegacy {
        chain_id: Some(CHAIN_ID + 1),
        nonce: 1,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(1),
        ..TxLegacy::default()
    });
    let (_, message) = rejection(&node, &format!("{wrong_chain}"));
    assert!(
        message.contains("invalid chain id: expected 1337, got 1338"),
        "{message}"
    );

    // Flip a byte of the signature's s: it no longer recovers to a valid key (or recovers to
    // another account with no funds).
    let good = transfer(rich, 1, to, 1);
    let mut bytes = alloy_primitives::hex::decode(&good).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let (_, message) = rejection(
        &node,
        &format!("0x{}", alloy_primitives::hex::encode(&bytes)),
    );
    assert!(
        message.contains("invalid sender") || message.contains("insufficient funds"),
        "{message}"
    );

    let (_, message) = rejection(&node, &transfer(rich, 0, to, 1));
    assert_eq!(message, "nonce too low: next nonce 1, tx nonce 0");

    let pauper = AccountKey::from_seed(4242);
    let (_, message) = rejection(&node, &transfer(&pauper, 0, to, 1));
    assert!(
        message.starts_with("insufficient funds for gas * price + value"),
        "{message}"
    );

    let oversized = rich.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 1,
        gas_limit: 30_000_000,
        to: TxKind::Call(to),
        input: vec![1u8; 200 * 1024].into(),
        ..TxEip1559::default()
    });
    let (_, message) = rejection(&node, &format!("{oversized}"));
    assert!(message.starts_with("oversized data"), "{message}");

    // Nothing was applied, and the node still serves and finalizes.
    assert!(node.is_running());
    assert_eq!(balance(&node, rich.address()), before - 5);
    assert_eq!(balance(&node, to), 5);
    let nonce = node.call(
        "eth_getTransactionCount",
        json!([rich.address(), "pending"]),
    );
    assert_eq!(hex_u64(&nonce), 1);
    let hash = node.call("eth_sendRawTransaction", json!([transfer(rich, 1, to, 5)]));
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(balance(&node, to), 10);
}

#[test]
fn a_dev_directory_refuses_another_validator_count_and_tokens_without_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &[]);
    node.kill();
    let refusal = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
            .arg("dev")
            .args(args)
            .args(["--rpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refusal(&["--validators", "3"]);
    assert!(
        stderr.contains("holds a dev chain of 1 validator(s), not 3"),
        "{stderr}"
    );
    // API tokens name registered accounts: a chain without a registry has none.
    let stderr = refusal(&["--api-tokens"]);
    assert!(
        stderr.contains("API tokens are checked against the chain's registry of accounts, and this chain has none"),
        "{stderr}"
    );
}

/// Runs `trellis verify-proof --proof FILE [--root ROOT]`.
fn verify_proof(file: &std::path::Path, root: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"));
    command.args(["verify-proof", "--proof", file.to_str().unwrap()]);
    if let Some(root) = root {
        command.args(["--root", root]);
    }
    command.output().unwrap()
}

#[test]
fn state_proofs_verify_without_a_node_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "1", "--accounts", "2"]);
    let keys = dev_accounts(dir.path());
    let to = Address::repeat_byte(0x99);
    let hash = node.call(
        "eth_sendRawTransaction",
        json!([transfer(&keys[0], 0, to, 1234)]),
    );
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));

    let proof = node.call("trellis_getProof", json!([to, [], "latest"]));
    assert_eq!(hex_u128(&proof["account"]["balance"]), 1234);
    let header = node.call("eth_getBlockByNumber", json!([proof["blockNumber"], false]));
    let root = header["stateRoot"].as_str().unwrap().to_string();
    assert_eq!(
        proof["stateRoot"].as_str().unwrap(),
        root,
        "the header's root"
    );
    let file = dir.path().join("proof.json");
    let write = |value: &Value| std::fs::write(&file, value.to_string()).unwrap();

    write(&proof);
    let output = verify_proof(&file, Some(&root));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("balance 1234 wei"), "{stdout}");

    let refused = |output: std::process::Output, expected: &str| {
        assert!(!output.status.success(), "accepted: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    };
    // A tampered value.
    let mut value = proof.clone();
    value["account"]["balance"] = json!("0x10000");
    write(&value);
    refused(
        verify_proof(&file, Some(&root)),
        "does not verify against state root",
    );
    // A tampered key (another address).
    let mut key = proof.clone();
    key["address"] = json!(Address::repeat_byte(0x98));
    write(&key);
    refused(
        verify_proof(&file, Some(&root)),
        "does not verify against state root",
    );
    // A tampered root.
    write(&proof);
    let other_root = format!("0x{}", "11".repeat(32));
    refused(
        verify_proof(&file, Some(&other_root)),
        "do not hash to state root",
    );

    // An account that does not exist cannot be proven, and the verifier says so.
    // (The chain has moved on: the proof is checked against the root it was made at.)
    let absent = node.call("trellis_getProof", json!([Address::repeat_byte(0x55), []]));
    write(&absent);
    let absent_root = absent["stateRoot"].as_str().unwrap();
    refused(verify_proof(&file, Some(absent_root)), "does not exist");
    // Proofs are made against the latest state only.
    let old = node.request("trellis_getProof", json!([to, [], "0x0"]));
    let message = old["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("proofs are made against the latest block"),
        "{old}"
    );
}
