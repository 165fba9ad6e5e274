//! `trellis init` and `trellis node --config`: an operator's path from keys to a running
//! validator, and the errors a misconfiguration gets.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use support::operator::{
    failing_node, new_keys, node_args, one_validator_chain, trellis, validator_chain,
};
use support::{NodeProcess, copy_dir, hex_u64, hex_u128};

#[test]
fn an_initialized_validator_finalizes_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let (config, account) = one_validator_chain(dir.path(), 4242);
    let node = NodeProcess::start(&node_args(&config));
    assert_eq!(hex_u64(&node.call("eth_chainId", json!([]))), 4242);
    let to = Address::repeat_byte(0xcd);
    let raw = account.sign_transaction(TxEip1559 {
        chain_id: 4242,
        nonce: 0,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(7),
        ..TxEip1559::default()
    });
    let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
    let receipt = node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(receipt["status"], json!("0x1"));
    assert_eq!(
        hex_u128(&node.call("eth_getBalance", json!([to, "latest"]))),
        7
    );
    assert!(
        dir.path().join("data").is_dir(),
        "data_dir is relative to the config"
    );
    drop(node);
    // Restarted, it reports what its data directory holds.
    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("data directory uses"));
    assert!(!node.logged("state 0.0 MiB"), "the state is on disk");
}

#[test]
fn misconfigurations_are_named_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = one_validator_chain(dir.path(), 5151);

    // A configuration that is not valid TOML for a node.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "genesis = 12\n").unwrap();
    let error = failing_node(&bad);
    assert!(error.contains("configuration file"), "{error}");
    assert!(error.contains("bad.toml"), "{error}");

    // A genesis file that is missing.
    let text = std::fs::read_to_string(&config).unwrap();
    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, text.replace("genesis-5151.toml", "nowhere.toml")).unwrap();
    let error = failing_node(&missing);
    assert!(error.contains("cannot read the genesis file"), "{error}");

    // A key that is not one of the genesis validators.
    let (other_key, _) = new_keys(dir.path(), "other.json");
    let outsider = dir.path().join("outsider.toml");
    let other_name = other_key.file_name().unwrap().to_str().unwrap();
    std::fs::write(&outsider, text.replace("keys.json", other_name)).unwrap();
    let error = failing_node(&outsider);
    assert!(
        error.contains("not in the genesis validator set"),
        "{error}"
    );

    // State settings out of range.
    for (setting, named) in [
        ("state_keep_blocks = 0", "state_keep_blocks = 0"),
        ("state_cache_mib = 0", "state_cache_mib = 0"),
    ] {
        let bad_state = dir.path().join("bad-state.toml");
        std::fs::write(&bad_state, format!("{text}{setting}\n")).unwrap();
        let error = failing_node(&bad_state);
        assert!(error.contains(named), "{error}");
    }

    // A busy RPC port.
    let rpc_port: u16 = text
        .split("127.0.0.1:")
        .last()
        .unwrap()
        .trim()
        .trim_end_matches('"')
        .parse()
        .unwrap();
    let busy = TcpListener::bind(("127.0.0.1", rpc_port)).unwrap();
    let error = failing_node(&config);
    assert!(
        error.contains(&format!(
            "cannot listen for JSON-RPC on 127.0.0.1:{rpc_port}"
        )),
        "{error}"
    );
    drop(busy);

    // A busy p2p port (the validator's own address in the genesis).
    let genesis = std::fs::read_to_string(dir.path().join("genesis-5151.toml")).unwrap();
    let p2p = genesis
        .lines()
        .find_map(|l| l.strip_prefix("p2p = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let busy = TcpListener::bind(&p2p).unwrap();
    let error = failing_node(&config);
    assert!(
        error.contains(&format!("cannot listen for p2p on {p2p}")),
        "{error}"
    );
    drop(busy);
    assert!(
        !dir.path().join("data").exists(),
        "a node refused for its configuration or a busy port wrote nothing"
    );

    // A bad genesis given to init: an invalid validator key.
    let output = trellis(&[
        "init",
        "--out",
        dir.path().join("g.toml").to_str().unwrap(),
        "--chain-id",
        "1",
        "--validator",
        "0x1234@127.0.0.1:1",
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("not 32 bytes of hex"), "{error}");
}

#[test]
fn a_data_directory_of_another_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = one_validator_chain(dir.path(), 6161);
    let node = NodeProcess::start(&node_args(&first));
    node.wait_for_height(1, Duration::from_secs(30));
    node.kill();
    // Same directory, same data_dir, another genesis.
    let (second, _) = one_validator_chain(&dir.path().join("second"), 6262);
    let text = std::fs::read_to_string(&second)
        .unwrap()
        .replace("data_dir = \"data\"", "data_dir = \"../data\"");
    std::fs::write(&second, text).unwrap();
    let error = failing_node(&second);
    assert!(error.contains("holds the chain with genesis"), "{error}");
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs a build with --features fault-injection (scripts/test builds one)"
)]
fn a_validator_killed_during_a_state_commit_recovers_and_agrees_with_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let chain_id = 7171;
    let (configs, account) = validator_chain(dir.path(), chain_id, 4, &[1, 3]);
    let mut nodes: Vec<NodeProcess> = configs[..3]
        .iter()
        .map(|c| NodeProcess::start(&node_args(c)))
        .collect();
    // Validator 3 kills itself (SIGKILL) after storing block `crash_at` and applying its state
    // to the log, before the state is durable.
    let crash_at = 6;
    let mut victim = NodeProcess::start_with_env(
        &node_args(&configs[3]),
        &[("TRELLIS_TEST_KILL_DURING_COMMIT", &crash_at.to_string())],
    );
    let to = Address::repeat_byte(0xee);
    let mut sent = Vec::new();
    for nonce in 0..20u64 {
        let raw = account.sign_transaction(TxEip1559 {
            chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(to),
            value: U256::from(1),
            ..TxEip1559::default()
        });
        sent.push(nodes[0].call("eth_sendRawTransaction", json!([format!("{raw}")])));
        std::thread::sleep(Duration::from_millis(150));
    }
    let status = victim.wait_for_exit(Duration::from_secs(60));
    assert!(!status.success(), "the hook killed it: {status:?}");
    assert!(victim.logged("crash test hook"), "it died in the hook");

    // The others go on (3 of 4 is a quorum); then the victim restarts without the hook.
    let peer_height = hex_u64(&nodes[0].call("eth_blockNumber", json!([])));
    let restarted = NodeProcess::start(&node_args(&configs[3]));
    // Validators 1 and 3 store their data encrypted, 0 and 2 in clear.
    assert!(restarted.logged("data at rest is encrypted"));
    assert!(
        restarted.logged("re-executed a stored block whose state was not committed"),
        "the stored block above the durable state was executed again"
    );
    let target = peer_height.max(crash_at) + 3;
    nodes.push(restarted);
    for node in &nodes {
        node.wait_for_height(target, Duration::from_secs(60));
    }
    for height in 1..=target {
        let block = |node: &NodeProcess| {
            node.call(
                "eth_getBlockByNumber",
                json!([format!("{height:#x}"), false]),
            )
        };
        let reference = block(&nodes[0]);
        for node in &nodes[1..] {
            let other = block(node);
            assert_eq!(other["hash"], reference["hash"], "block {height}");
            assert_eq!(other["stateRoot"], reference["stateRoot"], "block {height}");
        }
    }
    for hash in &sent {
        let receipt = nodes[3].wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
        assert_eq!(receipt["status"], json!("0x1"));
    }
    for node in &nodes {
        assert_eq!(
            hex_u128(&node.call("eth_getBalance", json!([to, "latest"]))),
            20,
            "every transfer applied exactly once"
        );
    }
    // The victim indexed block `crash_at`'s writes before it died and again when it executed
    // the block anew: its history of the recipient lists each write once, as its peers' do,
    // and proves against its own state root.
    let summary = |history: &Value| -> Vec<(Value, Value, Value)> {
        history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["blockNumber"].clone(),
                    e["transactionHash"].clone(),
                    e["value"]["balance"].clone(),
                )
            })
            .collect()
    };
    let histories: Vec<Value> = nodes
        .iter()
        .map(|node| node.call("trellis_getHistory", json!([to])))
        .collect();
    for (i, history) in histories.iter().enumerate() {
        assert_eq!(summary(history), summary(&histories[0]), "validator {i}");
        let parsed: trellis_state::History = serde_json::from_value(history.clone()).unwrap();
        let root: trellis_types::B256 = history["stateRoot"].as_str().unwrap().parse().unwrap();
        parsed
            .verify(&trellis_types::StateRoot(root))
            .unwrap_or_else(|e| panic!("validator {i}: {e}"));
    }
    let balances: Vec<u128> = summary(&histories[0])
        .iter()
        .map(|(_, _, balance)| hex_u128(balance))
        .collect();
    assert_eq!(balances.last(), Some(&20), "{balances:?}");
    assert!(
        balances.windows(2).all(|w| w[0] < w[1]),
        "each block's write once: {balances:?}"
    );
}

/// Every directory under `data` whose name marks it as part of the state.
fn state_partitions(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("-state-")
        })
        .collect()
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> PathBuf {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for partition in state_partitions(dir) {
        for entry in std::fs::read_dir(&partition).unwrap().flatten() {
            files.push((entry.metadata().unwrap().len(), entry.path()));
        }
    }
    files.sort();
    files.pop().expect("the state has files").1
}

#[test]
fn a_damaged_state_is_refused_or_recovered_never_silently_empty() {
    damaged_state(false);
}

/// The same damage to a state stored encrypted: flipped ciphertext decrypts to flipped
/// plaintext, which the checksums and roots above the cipher catch as they do in clear.
#[test]
fn a_damaged_encrypted_state_is_refused_or_recovered_never_silently_empty() {
    damaged_state(true);
}

fn damaged_state(encrypted: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (config, account) = one_validator_chain(dir.path(), 8181);
    if encrypted {
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&support::operator::encryption(dir.path(), "kek"));
        std::fs::write(&config, text).unwrap();
    }
    let node = NodeProcess::start(&node_args(&config));
    let to = Address::repeat_byte(0x42);
    for nonce in 0..5 {
        let raw = account.sign_transaction(TxEip1559 {
            chain_id: 8181,
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value: U256::from(1),
            ..TxEip1559::default()
        });
        let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
        node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    }
    assert_eq!(
        node.logged("data at rest is encrypted") || node.logged("encrypting a new data directory"),
        encrypted
    );
    node.kill();
    let data = dir.path().join("data");
    let pristine = dir.path().join("pristine");
    copy_dir(&data, &pristine);

    // The state's partitions deleted: blocks without state are refused, not started from empty.
    for partition in state_partitions(&data) {
        std::fs::remove_dir_all(partition).unwrap();
    }
    let error = failing_node(&config);
    assert!(error.contains("the state is empty"), "{error}");

    // A state file damaged in its middle: either refused with the reason, or recovered to a
    // consistent state (an older commit, then the stored blocks executed again).
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&pristine, &data);
    let victim = largest_file(&data);
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0xff;
    }
    std::fs::write(&victim, bytes).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["node", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut child = output;
    match child.try_wait().unwrap() {
        Some(status) => {
            assert!(!status.success());
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            eprintln!("damaged state refused: {stderr}");
            assert!(
                stderr
                    .contains("cannot open the state stored in partitions validator-chain-state-*"),
                "the error names the state's files: {stderr}"
            );
            assert!(stderr.contains("data directory"), "{stderr}");
        }
        None => {
            child.kill().unwrap();
            child.wait().unwrap();
            eprintln!("damaged state recovered");
            let node = NodeProcess::start(&node_args(&config));
            assert_eq!(
                hex_u128(&node.call("eth_getBalance", json!([to, "latest"]))),
                5,
                "recovered with every transfer"
            );
        }
    }
}
