//! A consortium governing itself through `trellis gov`: real processes, a governed dev chain,
//! JSON-RPC over loopback. A freeze passes with two of three governors and the frozen account's
//! next transaction is refused by the node with the rule's reason.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::{path::Path, process::Command, time::Duration};
use support::{DevNode, dev_accounts};
use trellis_crypto::AccountKey;

/// Runs `trellis gov ARGS` against `node`, signing (where it signs) with dev account `from`.
fn gov(node: &DevNode, dir: &Path, from: Option<&AccountKey>, args: &[&str]) -> (bool, String) {
    trellis(node, dir, from, "gov", args)
}

/// Runs `trellis WHAT ARGS` against `node` (see [`gov`]).
fn trellis(
    node: &DevNode,
    dir: &Path,
    from: Option<&AccountKey>,
    what: &str,
    args: &[&str],
) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    command.arg(what).arg(args[0]);
    command.args(["--rpc", &format!("http://{}", node.rpc)]);
    if let Some(key) = from {
        command.arg("--key").arg(dir.join("dev-accounts.json"));
        command.args(["--from", &key.address().to_string()]);
    }
    command.args(&args[1..]);
    let out = command.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn transfer(key: &AccountKey, nonce: u64, to: Address) -> String {
    transfer_of(key, nonce, to, 1)
}

fn transfer_of(key: &AccountKey, nonce: u64, to: Address, wei: u64) -> String {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(wei),
        ..TxEip1559::default()
    });
    format!("{raw}")
}

#[test]
fn two_of_three_governors_freeze_an_account_and_every_refusal_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "5", "--governed"]);
    node.wait_for_height(1, Duration::from_secs(30));
    let keys = dev_accounts(dir.path());
    let [g1, g2, g3, member, suspect] = [0, 1, 2, 3, 4].map(|i| &keys[i]);
    let suspect_address = suspect.address().to_string();

    let (ok, out) = gov(
        &node,
        dir.path(),
        Some(g1),
        &[
            "propose",
            "--voting-blocks",
            "500",
            "freeze",
            &suspect_address,
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("proposal 1 made, open for votes until block"),
        "{out}"
    );
    assert!(
        !out.contains("carried out"),
        "one of three governors is not enough: {out}"
    );

    // A member who is no governor cannot vote; the suspect still transacts meanwhile.
    let (ok, out) = gov(&node, dir.path(), Some(member), &["vote", "1"]);
    assert!(!ok);
    assert!(
        out.contains("may not propose or vote: it is no governor's account"),
        "{out}"
    );
    let sent = node.call(
        "eth_sendRawTransaction",
        json!([transfer(suspect, 0, g1.address())]),
    );
    node.wait_for_receipt(sent.as_str().unwrap(), Duration::from_secs(30));

    let (ok, out) = gov(&node, dir.path(), Some(g2), &["vote", "1"]);
    assert!(ok, "{out}");
    assert!(out.contains("approved proposal 1 with weight 1"), "{out}");
    assert!(
        out.contains("proposal 1 passed and was carried out"),
        "{out}"
    );
    let block: u64 = out
        .split("in block ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no block in {out}"));

    let response = node.request(
        "eth_sendRawTransaction",
        json!([transfer(suspect, 1, g1.address())]),
    );
    assert_eq!(response["error"]["code"], -32003, "{response}");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("is frozen since block {block} by proposal 1")),
        "{message}"
    );

    let (ok, out) = gov(&node, dir.path(), Some(g3), &["vote", "1", "--reject"]);
    assert!(!ok);
    assert!(
        out.contains("proposal 1 is executed: it takes no more votes"),
        "{out}"
    );
    let (ok, out) = gov(
        &node,
        dir.path(),
        Some(g1),
        &["propose", "set-thresholds", "100", "4000"],
    );
    assert!(!ok);
    assert!(out.contains("out of range"), "{out}");

    let token = "0x00000000000000000000000000000000000000aa";
    let (ok, out) = gov(
        &node,
        dir.path(),
        Some(g1),
        &[
            "propose",
            "restrict-method",
            token,
            "transfer(address,uint256)",
            "dispatcher",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("proposal 2 made"), "{out}");
    let (ok, out) = gov(&node, dir.path(), None, &["show", "2"]);
    assert!(ok, "{out}");
    assert!(out.contains("restrict function 0xa9059cbb of 0x"), "{out}");
    let (ok, out) = gov(
        &node,
        dir.path(),
        Some(g1),
        &[
            "propose",
            "restrict-method",
            token,
            "transfer",
            "dispatcher",
        ],
    );
    assert!(!ok);
    assert!(out.contains("neither a selector"), "{out}");

    let (ok, out) = gov(&node, dir.path(), None, &["show", "1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "proposal 1: executed — make account {suspect_address} frozen"
        )),
        "{out}"
    );
    assert!(out.contains("approvals 2, rejections 0"), "{out}");
    let (ok, out) = gov(&node, dir.path(), None, &["list"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("proposal 1:").count(), 1, "{out}");
    assert!(
        out.find("proposal 2:") < out.find("proposal 1:"),
        "newest first: {out}"
    );
}

#[test]
fn an_approver_of_another_identity_releases_a_held_transfer_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "5", "--governed"]);
    node.wait_for_height(1, Duration::from_secs(30));
    let keys = dev_accounts(dir.path());
    let [g1, g2, _, member, _] = [0, 1, 2, 3, 4].map(|i| &keys[i]);

    let (ok, out) = gov(
        &node,
        dir.path(),
        Some(g1),
        &["propose", "set-limits", "4", "--hold-above", "1000"],
    );
    assert!(ok, "{out}");
    let (ok, out) = gov(&node, dir.path(), Some(g2), &["vote", "1"]);
    assert!(out.contains("passed and was carried out"), "{ok} {out}");

    let recipient = Address::repeat_byte(0x5a);
    let sent = node.call(
        "eth_sendRawTransaction",
        json!([transfer_of(member, 0, recipient, 2000)]),
    );
    let receipt = node.wait_for_receipt(sent.as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(receipt["status"], "0x1");
    let balance = node.call("eth_getBalance", json!([recipient, "latest"]));
    assert_eq!(balance, "0x0", "held, not delivered");

    let (ok, out) = trellis(&node, dir.path(), None, "holds", &["show", "1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("held transfer 1: waiting — 2000 wei from"),
        "{out}"
    );
    let (ok, out) = trellis(&node, dir.path(), Some(member), "holds", &["approve", "1"]);
    assert!(!ok);
    assert!(
        out.contains("another identity's approver must decide it"),
        "{out}"
    );
    let (ok, out) = trellis(&node, dir.path(), Some(g1), "holds", &["approve", "1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("held transfer 1 released to its recipient by"),
        "{out}"
    );
    let balance = node.call("eth_getBalance", json!([recipient, "latest"]));
    assert_eq!(balance, "0x7d0");
}
