//! An account key's lifecycle on a consortium's chain, through the `trellis` CLI against a
//! running node: a member rotates its key to one generated inside SoftHSM2 (no vote needed),
//! the old key is refused at admission and the new one pays with the member's roles; another
//! member reports its key compromised and is refused with the block it is suspected from; a
//! governor's rotation proof for a vote is printed by `keys rotation-proof`.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::process::Output;
use support::{NodeProcess, network::TestNetwork, softhsm::SoftHsm};
use trellis_crypto::AccountKey;

const CHAIN_ID: u64 = 6161;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A transfer from `key` with `nonce`, sent raw; returns the node's answer.
fn send_raw(node: &NodeProcess, key: &AccountKey, nonce: u64) -> serde_json::Value {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x55)),
        value: U256::from(1),
        ..TxEip1559::default()
    });
    node.request("eth_sendRawTransaction", json!([format!("{raw}")]))
}

#[test]
fn a_member_rotates_its_key_into_an_hsm_and_another_reports_its_key_compromised() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token("bank");
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (1, 0), 5, 1_000);
    let node = network.start(0);
    let rpc = format!("http://{}", node.rpc);
    let accounts = network.dir.join("accounts.json");
    let [teller, clerk] = [&network.accounts[3], &network.accounts[4]];

    // The teller's successor is generated inside the token; the teller hands over to it.
    let successor_uri = hsm.uri("bank", "teller-2");
    let out = hsm.trellis(&["keys", "new", "--hsm", &successor_uri, "--kind", "account"]);
    assert!(out.status.success(), "{}", text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let successor: Address = made["address"].as_str().unwrap().parse().unwrap();
    // Balances stay with accounts: the teller funds its successor first.
    let out = hsm.trellis(&[
        "tx",
        "send",
        "--rpc",
        &rpc,
        "--key",
        accounts.to_str().unwrap(),
        "--from",
        &teller.address().to_string(),
        "--to",
        &successor.to_string(),
        "--value",
        "1000000000000000000",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hsm.trellis(&[
        "keys",
        "rotate",
        "--rpc",
        &rpc,
        "--key",
        accounts.to_str().unwrap(),
        "--from",
        &teller.address().to_string(),
        "--new",
        &successor_uri,
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("handed its registration to {successor}")),
        "{said}"
    );

    // The old key is refused at admission, naming why; the successor pays with its roles.
    let refused = send_raw(&node, teller, 2);
    let message = refused["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("rotated to a successor key") && message.contains("by its own key"),
        "{refused}"
    );
    let out = hsm.trellis(&[
        "tx",
        "send",
        "--rpc",
        &rpc,
        "--signer",
        &successor_uri,
        "--to",
        &clerk.address().to_string(),
        "--value",
        "7",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The clerk reports its key leaked since block 1: refused from then on, with that block.
    let out = hsm.trellis(&[
        "keys",
        "revoke",
        "--rpc",
        &rpc,
        "--key",
        accounts.to_str().unwrap(),
        "--from",
        &clerk.address().to_string(),
        "--compromised-since",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let refused = send_raw(&node, clerk, 1);
    let message = refused["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("reported compromised")
            && message.contains("suspected of misuse from block 1"),
        "{refused}"
    );
    // A retired key cannot be retired again: the CLI says why.
    let out = hsm.trellis(&[
        "keys",
        "revoke",
        "--rpc",
        &rpc,
        "--key",
        accounts.to_str().unwrap(),
        "--from",
        &clerk.address().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("reported compromised"),
        "{}",
        text(&out)
    );

    // For a holder who lost its key: the successor's proof, for a governance vote.
    let out = hsm.trellis(&[
        "keys",
        "rotation-proof",
        "--old",
        &clerk.address().to_string(),
        "--new",
        &successor_uri,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let proof = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(proof.len(), 2 + 130, "{proof}");
}
