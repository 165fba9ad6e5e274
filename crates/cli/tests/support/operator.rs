//! An operator's path to running nodes, as the tests take it: keys made with `trellis keys
//! new`, a genesis with `trellis init`, a node.toml per validator.

use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};
use trellis_crypto::AccountKey;

pub fn trellis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .output()
        .expect("run trellis")
}

pub fn free_port() -> u16 {
    super::free_ports(1)
}

/// `trellis keys new --out` in `dir`, sealed under the passphrase in `dir/passphrase`;
/// returns the file and its contents, opened.
pub fn new_keys(dir: &Path, name: &str) -> (PathBuf, Value) {
    let path = dir.join(name);
    let passphrase = dir.join("passphrase");
    std::fs::write(&passphrase, "a test passphrase\n").unwrap();
    let output = trellis(&[
        "keys",
        "new",
        "--out",
        path.to_str().unwrap(),
        "--passphrase-file",
        passphrase.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let sealed: trellis_crypto::SealedKey =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let opened = sealed
        .open(&trellis_crypto::Passphrase::from_file(&passphrase).unwrap())
        .unwrap();
    (path, serde_json::from_slice(&opened).unwrap())
}

/// A one-validator chain in `dir`: keys, a genesis funding the key's account, a node config.
/// Returns the config path and the funded account's key.
pub fn one_validator_chain(dir: &Path, chain_id: u64) -> (PathBuf, AccountKey) {
    std::fs::create_dir_all(dir).unwrap();
    let (key_file, keys) = new_keys(dir, "keys.json");
    let account = AccountKey::from_hex(keys["account"]["private_key"].as_str().unwrap()).unwrap();
    let genesis = dir.join(format!("genesis-{chain_id}.toml"));
    let validator = format!(
        "{}@127.0.0.1:{}",
        keys["validator"]["public_key"].as_str().unwrap(),
        free_port()
    );
    let alloc = format!("{}=1000000000000000000", account.address());
    let output = trellis(&[
        "init",
        "--out",
        genesis.to_str().unwrap(),
        "--chain-id",
        &chain_id.to_string(),
        "--validator",
        &validator,
        "--alloc",
        &alloc,
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("block 0 is 0x"), "{stdout}");
    let config = dir.join(format!("node-{chain_id}.toml"));
    let text = format!(
        "genesis = {:?}\nvalidator_key = {:?}\nkey_passphrase_file = \"passphrase\"\n\
         data_dir = \"data\"\nrpc_addr = \"127.0.0.1:{}\"\n",
        genesis.file_name().unwrap(),
        key_file.file_name().unwrap(),
        free_port()
    );
    std::fs::write(&config, text).unwrap();
    (config, account)
}

/// A chain of `n` validators in `dir`, each with its own key, data directory and RPC port;
/// those in `encrypted` store their data encrypted (under `kek-<i>`, made by `trellis data
/// new-kek`). Returns the node configs and the account key of validator 0, which the genesis
/// funds.
pub fn validator_chain(
    dir: &Path,
    chain_id: u64,
    n: usize,
    encrypted: &[usize],
) -> (Vec<PathBuf>, AccountKey) {
    std::fs::create_dir_all(dir).unwrap();
    let keys: Vec<(PathBuf, Value)> = (0..n)
        .map(|i| new_keys(dir, &format!("keys-{i}.json")))
        .collect();
    let account =
        AccountKey::from_hex(keys[0].1["account"]["private_key"].as_str().unwrap()).unwrap();
    let genesis = dir.join("genesis.toml");
    let mut args: Vec<String> = ["init", "--out", genesis.to_str().unwrap(), "--chain-id"]
        .map(String::from)
        .to_vec();
    args.push(chain_id.to_string());
    for (_, key) in &keys {
        args.push("--validator".into());
        args.push(format!(
            "{}@127.0.0.1:{}",
            key["validator"]["public_key"].as_str().unwrap(),
            free_port()
        ));
    }
    args.push("--alloc".into());
    args.push(format!("{}=1000000000000000000", account.address()));
    let output = trellis(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{output:?}");
    let configs = keys
        .iter()
        .enumerate()
        .map(|(i, (key_file, _))| {
            let config = dir.join(format!("node-{i}.toml"));
            let mut text = format!(
                "genesis = \"genesis.toml\"\nvalidator_key = {:?}\nkey_passphrase_file = \"passphrase\"\ndata_dir = \"data-{i}\"\nrpc_addr = \"127.0.0.1:{}\"\nstate_cache_mib = 16\n",
                key_file.file_name().unwrap(),
                free_port()
            );
            if encrypted.contains(&i) {
                text.push_str(&encryption(dir, &format!("kek-{i}")));
            }
            std::fs::write(&config, text).unwrap();
            config
        })
        .collect();
    (configs, account)
}

pub fn node_args(config: &Path) -> Vec<String> {
    vec![
        "node".into(),
        "--config".into(),
        config.display().to_string(),
    ]
}

/// Runs `trellis node` expecting it to fail; returns its error output.
pub fn failing_node(config: &Path) -> String {
    let output = trellis(&["node", "--config", config.to_str().unwrap()]);
    assert!(!output.status.success(), "the node started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A new key-encryption key `name` in `dir` (`trellis data new-kek`), and the node.toml table
/// that names it.
pub fn encryption(dir: &Path, name: &str) -> String {
    let output = trellis(&["data", "new-kek", "--out", dir.join(name).to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    format!("[data_encryption]\nkek_file = {name:?}\ninsecure_local_kek = true\n")
}
