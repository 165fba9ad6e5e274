//! Real Ethereum clients against a real `trellis dev --validators 4`: the ethers.js v6 suite
//! (clients/ethers) and the web3.py suite (clients/web3py), each with a funded account of its
//! own. Their packages are installed by scripts/setup (which the test command runs first).

mod support;

use std::process::Command;
use support::{
    DevNode,
    clients::{npm_ethers, run, web3py},
    dev_accounts,
};

fn ethers(node: &DevNode, key: &str) -> Command {
    npm_ethers(node, &["test", "--silent"], key)
}

#[test]
fn ethers_and_web3py_work_unchanged_against_four_validators() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "4", "--accounts", "2"]);
    let keys: Vec<String> = dev_accounts(dir.path())
        .iter()
        .map(|key| key.secret_hex())
        .collect();
    run("ethers.js", ethers(&node, &keys[0]));
    run("web3.py", web3py(&node, "test_trellis.py", &keys[1]));
    assert!(
        !node.logged("panicked"),
        "the node panicked while serving the clients"
    );
}

/// ethers.js against a consortium's chain: governance through the system contracts' ABI, and
/// the rules' refusals as ethers reports them.
#[test]
fn ethers_governs_a_consortium_and_meets_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "5", "--governed"]);
    let keys: Vec<String> = dev_accounts(dir.path())
        .iter()
        .map(|key| key.secret_hex())
        .collect();
    let mut command = npm_ethers(&node, &["run", "test:governance", "--silent"], &keys[0]);
    command.env("TRELLIS_KEYS", serde_json::to_string(&keys).unwrap());
    run("ethers.js governance", command);
    assert!(!node.logged("panicked"), "the node panicked");
}
