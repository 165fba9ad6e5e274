//! Helpers for tests that move validator seats across `trellis node` processes: the council's
//! votes through `trellis gov`, who led which block, and waiting for a change to show.

use super::{
    NodeProcess, hex_u64,
    network::{Load, TestNetwork, assert_same_chain},
};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};
use trellis_crypto::{AccountKey, KeyBundle, ValidatorKey, write_secret_file};
use trellis_types::ValidatorId;

/// A command's stdout and stderr, as text.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `trellis gov ARGS` against `node`, signed by account `from` of the network's
/// `accounts.json`; returns its output, asserting it succeeded.
pub fn gov(network: &TestNetwork, node: &NodeProcess, from: &AccountKey, args: &[&str]) -> String {
    let key = network.dir.join("accounts.json");
    let from = from.address().to_string();
    run_gov(
        node,
        args,
        &["--key", key.to_str().unwrap(), "--from", &from],
    )
}

/// Runs `trellis gov show|list ARGS` against `node` (anyone may read proposals).
pub fn gov_read(node: &NodeProcess, args: &[&str]) -> String {
    run_gov(node, args, &[])
}

fn run_gov(node: &NodeProcess, args: &[&str], signer: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["gov", args[0]])
        .args(["--rpc", &format!("http://{}", node.rpc)])
        .args(signer)
        .args(&args[1..])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "trellis gov {args:?}: {said}");
    said
}

/// Governor 0 proposes `action` as proposal `id`, governor 1 approves it; returns the block
/// it passed in.
pub fn pass(network: &TestNetwork, node: &NodeProcess, id: u64, action: &[&str]) -> u64 {
    let mut args = vec!["propose"];
    args.extend_from_slice(action);
    let out = gov(network, node, &network.accounts[0], &args);
    assert!(out.contains(&format!("proposal {id} made")), "{out}");
    let out = gov(
        network,
        node,
        &network.accounts[1],
        &["vote", &id.to_string()],
    );
    assert!(out.contains("passed and was carried out"), "{out}");
    out.split("in block ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_end_matches(['.', ',', ')']).parse().ok())
        .unwrap_or_else(|| panic!("no block in {out}"))
}

pub fn height(node: &NodeProcess) -> u64 {
    hex_u64(&node.call("eth_blockNumber", json!([])))
}

/// The `miner` (the proposer's coinbase) of each block `from..=to` on `node`.
pub fn miners(node: &NodeProcess, from: u64, to: u64) -> Vec<String> {
    (from..=to)
        .map(|h| {
            let block = node.call("eth_getBlockByNumber", json!([format!("{h:#x}"), false]));
            block["miner"].as_str().unwrap().to_lowercase()
        })
        .collect()
}

/// The coinbase a validator key's blocks name, lower case.
pub fn coinbase(key: &ValidatorId) -> String {
    key.coinbase().to_string().to_lowercase()
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes validator key `key` (with a throwaway account key) to `folder/name`; returns its
/// path.
pub fn key_file(folder: &Path, name: &str, key: &ValidatorKey, account_seed: u64) -> PathBuf {
    let path = folder.join(name);
    let bundle = KeyBundle::from_keys(&AccountKey::from_seed(account_seed), key);
    write_secret_file(&path, &bundle.to_json()).unwrap();
    path
}

/// Adds `FIELD = "NAME"` (`next_validator_key`, or a full node's `next_full_node_key`) to the
/// node.toml at `config`.
pub fn name_next_key(config: &Path, field: &str, name: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("{field} = {name:?}\n"));
    std::fs::write(config, text).unwrap();
}

/// Runs `trellis keys rotate-validator` through `node`, sent by `from` of `accounts.json`:
/// node key `current` (a validator's or a full node's key file) hands over to `new`, which
/// listens on `p2p`.
pub fn rotate(
    network: &TestNetwork,
    node: &NodeProcess,
    from: &AccountKey,
    (current, new): (&Path, &Path),
    p2p: &str,
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "rotate-validator"])
        .args(["--rpc", &format!("http://{}", node.rpc)])
        .arg("--key")
        .arg(network.dir.join("accounts.json"))
        .args(["--from", &from.address().to_string()])
        .arg("--validator")
        .arg(current)
        .arg("--new")
        .arg(new)
        .args(["--p2p", p2p])
        .output()
        .unwrap()
}

/// `method`'s result from `node`; `None` while the node does not answer (it may be restarting).
fn try_call(
    node: &NodeProcess,
    method: &str,
    params: serde_json::Value,
) -> Option<serde_json::Value> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    super::network::try_post(node.rpc, &request).map(|answer| answer["result"].clone())
}

/// `node`'s newest block; `None` while it does not answer.
pub fn try_height(node: &NodeProcess) -> Option<u64> {
    try_call(node, "eth_blockNumber", json!([])).map(|top| hex_u64(&top))
}

/// Whether `node` has a block from `first` on led by `coinbase`; `false` while the node does
/// not answer (it may be restarting).
pub fn led_since(node: &NodeProcess, first: u64, coinbase: &str) -> bool {
    let ask = |method: &str, params| try_call(node, method, params);
    let Some(top) = try_height(node).filter(|top| *top >= first) else {
        return false;
    };
    (first..=top).any(|h| {
        ask("eth_getBlockByNumber", json!([format!("{h:#x}"), false])).is_some_and(|block| {
            block["miner"].as_str().map(str::to_lowercase).as_deref() == Some(coinbase)
        })
    })
}

/// The number after `marker` in `said`, e.g. the epoch in "… from epoch 3 …".
pub fn number_after(said: &str, marker: &str) -> u64 {
    said.split(marker)
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no number after {marker:?} in {said}"))
}

/// Stops `load` (some transfers were sent), waits until every node reaches member 1's tip and
/// checks they all hold the same chain and are still running.
pub fn settle(load: Load, members: &mut [NodeProcess]) {
    let outcome = load.finish();
    assert!(!outcome.sent.is_empty());
    let tip = height(&members[1]);
    let all: Vec<&NodeProcess> = members.iter().collect();
    for node in &all {
        node.wait_for_height(tip, Duration::from_secs(60));
    }
    assert_same_chain(&all, tip);
    for node in members {
        assert!(node.is_running(), "a member's node died");
    }
}
