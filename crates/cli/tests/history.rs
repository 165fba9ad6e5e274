//! `trellis_getHistory` on a real dev chain: the history of an ERC-20 balance slot across five
//! transfers, each write with its block and transaction, checked by `trellis verify-history`
//! without a node; tampering and bad parameters are refused with the reason.

mod support;

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall, SolValue, sol};
use serde_json::{Value, json};
use support::{DevNode, dev_accounts, hex_u64};

/// `balanceOf` is the fourth state variable of `TrellisToken` (after name, symbol, totalSupply).
const BALANCES_SLOT: u64 = 3;

sol! {
    function transfer(address to, uint256 value) external returns (bool);
}

fn token_creation_code() -> Bytes {
    let json = include_str!("../../../contracts/artifacts/TrellisToken.json");
    let artifact: Value = serde_json::from_str(json).unwrap();
    let code = artifact["bytecode"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let mut code = hex::decode(code).unwrap();
    let supply = U256::from(1_000_000u64);
    code.extend(("History Token".to_string(), "HIST".to_string(), supply).abi_encode_params());
    Bytes::from(code)
}

/// The storage slot of `owner`'s balance in the token's `balanceOf` mapping.
fn balance_slot(owner: Address) -> B256 {
    keccak256((owner, U256::from(BALANCES_SLOT)).abi_encode())
}

fn verify_history(file: &std::path::Path, root: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args([
            "verify-history",
            "--history",
            file.to_str().unwrap(),
            "--root",
            root,
        ])
        .output()
        .unwrap()
}

#[test]
fn an_erc20_balance_history_lists_five_transfers_each_proven() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "1", "--accounts", "1"]);
    let owner = &dev_accounts(dir.path())[0];
    let deployed = node.execute(owner, 0, TxKind::Create, token_creation_code());
    let token: Address = deployed["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let recipient = Address::repeat_byte(0x99);
    let mut transfers = Vec::new();
    for i in 0..5u64 {
        let call = transferCall {
            to: recipient,
            value: U256::from(10 * (i + 1)),
        };
        let receipt = node.execute(owner, 1 + i, TxKind::Call(token), call.abi_encode().into());
        transfers.push((
            hex_u64(&receipt["blockNumber"]),
            receipt["transactionHash"].as_str().unwrap().to_string(),
        ));
    }

    let slot = balance_slot(recipient);
    let history = node.call("trellis_getHistory", json!([token, slot]));
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{history:#}");
    let mut balance = 0u64;
    for (i, (entry, (block, hash))) in entries.iter().zip(&transfers).enumerate() {
        balance += 10 * (i as u64 + 1);
        assert_eq!(hex_u64(&entry["blockNumber"]), *block, "{entry:#}");
        assert_eq!(entry["transactionHash"].as_str().unwrap(), hash);
        assert_eq!(entry["value"]["kind"], "slot");
        assert_eq!(entry["value"]["value"], format!("{balance:#x}"));
    }
    assert_eq!(history["truncated"], false);
    // The newest entry is the slot's current value, as a state proof shows.
    let proof = node.call("trellis_getProof", json!([token, [slot]]));
    assert_eq!(
        proof["storage"][0]["value"],
        entries.last().unwrap()["value"]["value"]
    );

    // The owner's balance slot: minted by the deployment, then one debit per transfer.
    let owner_history = node.call(
        "trellis_getHistory",
        json!([token, balance_slot(owner.address()), {"limit": 3}]),
    );
    assert_eq!(owner_history["entries"].as_array().unwrap().len(), 3);
    assert_eq!(owner_history["truncated"], true);

    // Checked without the node, against the root of the header it names.
    let header = node.call(
        "eth_getBlockByNumber",
        json!([history["blockNumber"], false]),
    );
    let root = header["stateRoot"].as_str().unwrap().to_string();
    assert_eq!(history["stateRoot"].as_str().unwrap(), root);
    let file = dir.path().join("history.json");
    let write = |value: &Value| std::fs::write(&file, value.to_string()).unwrap();
    write(&history);
    let output = verify_history(&file, &root);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("5 write(s) of slot"), "{stdout}");
    assert!(stdout.contains(&transfers[0].1), "{stdout}");

    let refused = |output: std::process::Output, expected: &str| {
        assert!(!output.status.success(), "accepted: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    };
    // A balance that was never written.
    let mut value = history.clone();
    value["entries"][2]["value"]["value"] = json!("0x5f5e100");
    write(&value);
    refused(
        verify_history(&file, &root),
        "does not show what the entry claims",
    );
    // A write moved to another block.
    let mut block = history.clone();
    block["entries"][2]["blockNumber"] = json!(format!("{:#x}", transfers[2].0 + 1));
    write(&block);
    refused(verify_history(&file, &root), "commit");
    // Another root.
    write(&history);
    refused(
        verify_history(&file, &format!("0x{}", "11".repeat(32))),
        "do not hash to state root",
    );
}

#[test]
fn bad_history_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "1", "--accounts", "1"]);
    let error = |params: Value| {
        let response = node.request("trellis_getHistory", params);
        assert_eq!(response["error"]["code"], -32602, "{response}");
        response["error"]["message"].as_str().unwrap().to_string()
    };
    let account = Address::repeat_byte(1);
    assert!(error(json!(["0x1234"])).contains("address"));
    assert!(error(json!([account, "not a slot"])).contains("storage slot"));
    assert!(error(json!([account, null, {"limit": 0}])).contains("out of range"));
    assert!(error(json!([account, null, {"limit": 1_000_000}])).contains("out of range"));
    assert!(error(json!([account, null, {"limitt": 3}])).contains("limit"));
    // An account nobody wrote has an empty history, and the node keeps serving.
    let empty = node.call("trellis_getHistory", json!([account]));
    assert_eq!(empty["entries"], json!([]));
}
