//! Real Ethereum clients against a real `trellis dev --validators 4`: the ethers.js v6 suite
//! (clients/ethers) and the web3.py suite (clients/web3py), each with a funded account of its
//! own. Their packages are installed by scripts/setup (which the test command runs first).

mod support;

use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Command,
};
use support::DevNode;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients")
}

/// The private keys of the dev chain's funded accounts.
fn keys(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("dev-accounts.json")).unwrap();
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    entries
        .iter()
        .map(|e| e["private_key"].as_str().unwrap().to_string())
        .collect()
}

/// Runs a client suite to the end, echoing its output; panics with it if the suite fails.
fn run(what: &str, mut command: Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run the {what} suite: {e} (run ./scripts/setup)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the {what} suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

fn ethers(node: &DevNode, key: &str) -> Command {
    let dir = clients_dir().join("ethers");
    assert!(
        dir.join("node_modules/ethers").is_dir(),
        "ethers is not installed in {}: run ./scripts/setup",
        dir.display()
    );
    let mut command = Command::new("npm");
    command
        .args(["test", "--silent"])
        .current_dir(dir)
        .env("TRELLIS_HTTP", format!("http://{}", node.rpc))
        .env("TRELLIS_WS", format!("ws://{}", node.rpc))
        .env("TRELLIS_KEY", key);
    command
}

fn web3py(node: &DevNode, key: &str) -> Command {
    let dir = clients_dir().join("web3py");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "web3.py's environment {} is missing: run ./scripts/setup",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg("test_trellis.py")
        .current_dir(dir)
        .env("TRELLIS_HTTP", format!("http://{}", node.rpc))
        .env("TRELLIS_KEY", key);
    command
}

#[test]
fn ethers_and_web3py_work_unchanged_against_four_validators() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "4", "--accounts", "2"]);
    let keys = keys(dir.path());
    run("ethers.js", ethers(&node, &keys[0]));
    run("web3.py", web3py(&node, &keys[1]));
    assert!(
        !node.logged("panicked"),
        "the node panicked while serving the clients"
    );
}
