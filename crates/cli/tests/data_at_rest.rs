//! Data at rest: what a node stores is encrypted under data keys that are kept only wrapped by
//! a key-encryption key held elsewhere. A copy of the data directory shows no transaction,
//! address or contract code; a node without its key-encryption key refuses to start and
//! writes nothing.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxKind, U256, hex};
use serde_json::json;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};
use support::operator::{encryption, failing_node, node_args, one_validator_chain, trellis};
use support::{DevNode, NodeProcess, copy_dir, dev_accounts, hex_u64, softhsm::SoftHsm};

/// A signed transfer of `value` wei to `to`, as raw bytes.
fn transfer(
    account: &trellis_crypto::AccountKey,
    chain_id: u64,
    nonce: u64,
    (to, value): (Address, u64),
) -> Bytes {
    account.sign_transaction(TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..TxEip1559::default()
    })
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// The files under `dir` that contain `needle`.
fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(path, _)| path)
        .collect()
}

/// A contract whose code stores a 32-byte marker in slot 0 when called: the runtime code is
/// `PUSH32 marker PUSH1 0 SSTORE STOP`, returned by a constructor that copies it out.
fn marked_contract(marker: [u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let mut runtime = vec![0x7f];
    runtime.extend_from_slice(&marker);
    runtime.extend_from_slice(&[0x60, 0x00, 0x55, 0x00]);
    let mut init = vec![
        0x60,
        runtime.len() as u8,
        0x80,
        0x60,
        0x0b,
        0x60,
        0x00,
        0x39,
        0x60,
        0x00,
        0xf3,
    ];
    init.extend_from_slice(&runtime);
    (init, runtime)
}

/// What a dev chain stores of one contract deployment and one transfer: the raw transactions,
/// the recipient's address and the contract's code, to search its data for.
fn store_secrets(dir: &Path, args: &[&str]) -> Vec<(&'static str, Vec<u8>)> {
    let node = DevNode::dev(dir, args);
    let account = dev_accounts(dir).remove(0);
    let marker: [u8; 32] = std::array::from_fn(|i| 0xa0 ^ (i as u8 * 7));
    let (init, runtime) = marked_contract(marker);
    let deploy = account.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce: 0,
        gas_limit: 200_000,
        to: TxKind::Create,
        input: Bytes::from(init),
        ..TxEip1559::default()
    });
    let recipient = Address::from([0x5e; 20]);
    let transfer = account.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce: 1,
        gas_limit: 21_000,
        to: TxKind::Call(recipient),
        value: U256::from(12_345),
        ..TxEip1559::default()
    });
    let mut raws = Vec::new();
    for raw in [deploy, transfer] {
        let text = format!("{raw}");
        let hash = node.call("eth_sendRawTransaction", json!([text]));
        let receipt = node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
        assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
        if let Some(contract) = receipt["contractAddress"].as_str() {
            let code = node.call("eth_getCode", json!([contract, "latest"]));
            assert_eq!(code, json!(format!("0x{}", hex::encode(&runtime))));
        }
        raws.push(hex::decode(text).unwrap());
    }
    // A few more blocks, so what the two blocks wrote is durable everywhere.
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));
    node.wait_for_height(height + 3, Duration::from_secs(30));
    node.kill();
    vec![
        ("the deployment's raw bytes", raws[0].clone()),
        ("the transfer's raw bytes", raws[1].clone()),
        ("the recipient's address", recipient.to_vec()),
        ("the contract's code", runtime),
        ("the value the contract stores", marker.to_vec()),
    ]
}

#[test]
fn a_copied_data_directory_shows_no_transaction_address_or_code() {
    let root = tempfile::tempdir().unwrap();
    // In clear (asked for), the search finds each secret: it is a search that can fail.
    let plain = root.path().join("plain");
    for (what, bytes) in store_secrets(&plain, &["--plaintext"]) {
        if what != "the value the contract stores" {
            assert!(
                !holding(&plain.join("storage"), &bytes).is_empty(),
                "{what} is stored in clear without encryption"
            );
        }
    }
    // Encrypted (a dev chain's default): a copy of the data directory holds none of them.
    let dir = root.path().join("encrypted");
    let secrets = store_secrets(&dir, &[]);
    let copy = root.path().join("copy");
    copy_dir(&dir.join("storage"), &copy);
    assert!(copy.join("trellis-data-keys.toml").exists());
    for (what, bytes) in &secrets {
        let found = holding(&copy, bytes);
        assert!(found.is_empty(), "{what} is in clear in {found:?}");
    }
    // The key-encryption key lies outside the data directory; the keys inside are wrapped.
    let kek = std::fs::read_to_string(dir.join("dev-kek")).unwrap();
    let kek = hex::decode(kek.trim()).unwrap();
    assert!(holding(&copy, &kek).is_empty());
    // The chain restarts from its encrypted data, where it stopped.
    let node = DevNode::dev(&dir, &[]);
    assert!(node.logged("data at rest is encrypted"));
    let recipient = Address::from([0x5e; 20]);
    let balance = node.call("eth_getBalance", json!([recipient, "latest"]));
    assert_eq!(balance, json!("0x3039"));
}

/// `config` with its `[data_encryption]` table replaced by `table` (none if empty).
fn with_encryption(config: &Path, table: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let base = text.split("[data_encryption]").next().unwrap();
    let path = config.with_file_name(name);
    std::fs::write(&path, format!("{base}{table}")).unwrap();
    path
}

#[test]
fn a_node_without_its_key_encryption_key_refuses_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = one_validator_chain(dir.path(), 3131);
    let data = dir.path().join("data");
    let table = encryption(dir.path(), "kek");
    let config = with_encryption(&plain, &table, "encrypted.toml");

    // The key-encryption key is missing: refused by name, no data directory made.
    std::fs::rename(dir.path().join("kek"), dir.path().join("kek.away")).unwrap();
    let error = failing_node(&config);
    assert!(error.contains("no key-encryption key at"), "{error}");
    assert!(error.contains("kek"), "{error}");
    assert!(!data.exists(), "nothing written");
    std::fs::rename(dir.path().join("kek.away"), dir.path().join("kek")).unwrap();

    // A key file beside the node's own key file: both in clear on one host, refused unless a
    // trial accepts it.
    let beside = with_encryption(
        &plain,
        "[data_encryption]\nkek_file = \"kek\"\n",
        "beside.toml",
    );
    let error = failing_node(&beside);
    assert!(error.contains("both be held in clear"), "{error}");
    assert!(error.contains("kek_hsm"), "{error}");
    assert!(!data.exists(), "nothing written");

    // Kept inside the data directory, it would be copied with the data: refused.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(dir.path().join("kek"), data.join("kek")).unwrap();
    let inside = with_encryption(
        &plain,
        "[data_encryption]\nkek_file = \"data/kek\"\ninsecure_local_kek = true\n",
        "inside.toml",
    );
    let error = failing_node(&inside);
    assert!(
        error.contains("keep it outside the data directory"),
        "{error}"
    );
    std::fs::remove_dir_all(&data).unwrap();

    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("encrypting a new data directory"));
    node.wait_for_height(3, Duration::from_secs(30));
    node.kill();
    let before = snapshot(&data);

    // Another key-encryption key: refused, naming both keys; nothing written.
    let other = with_encryption(&plain, &encryption(dir.path(), "other-kek"), "other.toml");
    let error = failing_node(&other);
    assert!(
        error.contains("wrapped by key-encryption key file:"),
        "{error}"
    );
    assert!(error.contains("the node was given file:"), "{error}");
    // No [data_encryption] at all: refused, naming what to add.
    let error = failing_node(&plain);
    assert!(error.contains("is encrypted"), "{error}");
    assert!(error.contains("[data_encryption]"), "{error}");
    assert_eq!(snapshot(&data), before, "a refused start writes nothing");

    // Re-wrapped under the other key in place: the data is untouched, the old key no longer
    // opens it, the new one does and the chain goes on from where it was.
    let output = trellis(&[
        "data",
        "rewrap",
        "--config",
        config.to_str().unwrap(),
        "--new-kek",
        dir.path().join("other-kek").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("are now wrapped by file:"), "{stdout}");
    let keys = data.join("trellis-data-keys.toml");
    let mut after = snapshot(&data);
    assert_ne!(after.remove(&keys), before.get(&keys).cloned());
    let mut untouched = before.clone();
    untouched.remove(&keys);
    assert_eq!(after, untouched, "only the wrapped keys change");
    let error = failing_node(&config);
    assert!(
        error.contains("wrapped by key-encryption key file:"),
        "{error}"
    );
    let node = NodeProcess::start(&node_args(&other));
    node.wait_for_height(5, Duration::from_secs(30));
}

#[test]
fn a_plaintext_directory_is_encrypted_in_place_and_keeps_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, account) = one_validator_chain(dir.path(), 3232);
    let data = dir.path().join("data");
    let node = NodeProcess::start(&node_args(&plain));
    let recipient = Address::from([0x6f; 20]);
    let raw = transfer(&account, 3232, 0, (recipient, 4_242));
    let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));
    node.wait_for_height(height + 2, Duration::from_secs(30));
    assert!(!holding(&data, recipient.as_slice()).is_empty(), "in clear");

    // Asked to encrypt it, the node refuses, naming the command that does.
    let config = with_encryption(&plain, &encryption(dir.path(), "kek"), "encrypted.toml");
    let encrypt = || trellis(&["data", "encrypt", "--config", config.to_str().unwrap()]);
    // Not while a node runs on it.
    let output = encrypt();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("a node is running on"), "{error}");
    node.kill();
    let error = failing_node(&config);
    assert!(error.contains("trellis data encrypt --config"), "{error}");

    let output = encrypt();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("encrypted:"), "{stdout}");
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.contains("blob(s)"), "{progress}");
    assert!(holding(&data, recipient.as_slice()).is_empty(), "encrypted");
    assert!(holding(&data, &hex::decode(format!("{raw}")).unwrap()).is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("__encrypting"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The chain goes on from its encrypted data.
    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("data at rest is encrypted"));
    assert_eq!(
        node.call("eth_getBalance", json!([recipient, "latest"])),
        json!("0x1092")
    );
    node.wait_for_height(height + 4, Duration::from_secs(30));
    node.kill();
    let output = encrypt();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("is already encrypted"), "{error}");
}

#[test]
fn a_key_encryption_key_in_an_hsm_wraps_the_data_keys_and_never_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token("member-0");
    let (plain, _) = one_validator_chain(dir.path(), 3333);
    let uri = hsm.uri("member-0", "data-kek");
    let output = hsm.trellis(&["data", "new-kek", "--hsm", &uri]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("pkcs11:member-0/data-kek#"), "{stdout}");
    let again = hsm.trellis(&["data", "new-kek", "--hsm", &uri]);
    assert!(!again.status.success(), "a label names one key");

    let table = |pin: &Path| {
        format!(
            "[data_encryption.kek_hsm]\nmodule = \"{}\"\ntoken = \"member-0\"\nlabel = \"data-kek\"\npin_file = {:?}\n",
            trellis_hsm::SOFTHSM2_MODULE,
            pin.display().to_string()
        )
    };
    let config = with_encryption(&plain, &table(&hsm.pin_file), "hsm.toml");
    let data = dir.path().join("data");

    // A wrong PIN: refused, nothing written.
    let wrong = dir.path().join("wrong.pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    let wrong_config = with_encryption(&plain, &table(&wrong), "wrong-pin.toml");
    let output = hsm.trellis(&["node", "--config", wrong_config.to_str().unwrap()]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("PIN"), "{error}");
    assert!(!data.exists(), "nothing written");

    let node = NodeProcess::start_with_env(&node_args(&config), &hsm.env());
    assert!(node.logged("encrypting a new data directory"));
    node.wait_for_height(2, Duration::from_secs(30));
    node.kill();
    let keys = std::fs::read_to_string(data.join("trellis-data-keys.toml")).unwrap();
    assert!(keys.contains("kek = \"pkcs11:member-0/data-kek#"), "{keys}");
    let node = NodeProcess::start_with_env(&node_args(&config), &hsm.env());
    assert!(node.logged("data at rest is encrypted"));
    node.wait_for_height(4, Duration::from_secs(30));
    node.kill();

    // Without the token's key the directory does not open; re-wrapped under a key file, it
    // opens with that instead.
    let file_kek = dir.path().join("file-kek");
    let output = trellis(&["data", "new-kek", "--out", file_kek.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let file_config = with_encryption(
        &plain,
        "[data_encryption]\nkek_file = \"file-kek\"\ninsecure_local_kek = true\n",
        "file.toml",
    );
    let error = failing_node(&file_config);
    assert!(error.contains("pkcs11:member-0/data-kek#"), "{error}");
    let output = hsm.trellis(&[
        "data",
        "rewrap",
        "--config",
        config.to_str().unwrap(),
        "--new-kek",
        file_kek.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let node = NodeProcess::start(&node_args(&file_config));
    node.wait_for_height(6, Duration::from_secs(30));
}

/// Waits up to `limit` for `node` to have logged `text`.
fn wait_for_log(node: &NodeProcess, text: &str, limit: Duration) {
    let start = std::time::Instant::now();
    while !node.logged(text) {
        assert!(start.elapsed() < limit, "never logged: {text}");
    }
}

#[test]
fn a_data_key_rotated_while_the_node_runs_encrypts_everything_under_it_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, account) = one_validator_chain(dir.path(), 3434);
    let config = with_encryption(&plain, &encryption(dir.path(), "kek"), "encrypted.toml");
    let node = NodeProcess::start(&node_args(&config));
    let recipient = Address::from([0x7a; 20]);
    for nonce in 0..5u64 {
        let raw = transfer(&account, 3434, nonce, (recipient, 1));
        let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
        node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    }
    let data = |command: &str| trellis(&["data", command, "--config", config.to_str().unwrap()]);

    let output = data("rotate-key");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("data key #2 made"), "{stdout}");
    wait_for_log(
        &node,
        "a rotated data key now encrypts",
        Duration::from_secs(20),
    );
    // Killed (SIGKILL) as the move of the older blobs starts: the next start finishes it.
    wait_for_log(
        &node,
        "re-encrypting data written under older data keys",
        Duration::from_secs(20),
    );
    node.kill();
    let output = data("status");
    assert!(output.status.success(), "{output:?}");
    eprintln!(
        "killed while moving: {}",
        String::from_utf8_lossy(&output.stdout)
    );

    let node = NodeProcess::start(&node_args(&config));
    for nonce in 5..10u64 {
        // The node answers and commits while it re-encrypts.
        let raw = transfer(&account, 3434, nonce, (recipient, 1));
        let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
        node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    }
    wait_for_log(&node, "re-encryption pass done", Duration::from_secs(120));
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));
    node.wait_for_height(height + 5, Duration::from_secs(60));
    node.kill();

    // Everything is under the new key now: what was written before and after the rotation.
    let output = data("status");
    assert!(output.status.success(), "{output:?}");
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(status.contains("data key #2 encrypts new data"), "{status}");
    assert!(!status.contains("  data key #1: "), "{status}");
    assert!(
        status.contains("every blob is under data key #2"),
        "{status}"
    );
    assert!(!status.contains("in clear"), "{status}");

    // Restarted, the node reads it all.
    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("data at rest is encrypted"));
    assert_eq!(
        node.call("eth_getBalance", json!([recipient, "latest"])),
        json!("0xa")
    );
    node.wait_for_height(height + 7, Duration::from_secs(30));
}

/// The validator key genesis file `genesis` lists first.
fn first_validator(genesis: &Path) -> String {
    let text = std::fs::read_to_string(genesis).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("public_key = "))
        .expect("a validator in the genesis");
    line.trim_matches('"').to_owned()
}

#[test]
fn a_key_manager_in_its_own_process_holds_the_key_encryption_key() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let (plain, _) = one_validator_chain(dir.path(), 3535);
    let node_key = first_validator(&dir.path().join("genesis-3535.toml"));
    let keyd_dir = dir.path().join("keyd");
    let keyd = |args: &[&str]| {
        let mut all = vec!["keyd", "--dir", keyd_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        trellis(&all)
    };
    let listen = format!("127.0.0.1:{}", support::free_ports(1));
    let output = keyd(&["init", "--listen", &listen]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let identity = stdout
        .trim()
        .strip_prefix("trellis-keyd identity ")
        .expect("the identity printed")
        .to_owned();
    let output = keyd(&["allow", "--name", "member-0", "--node", &node_key]);
    assert!(output.status.success(), "{output:?}");

    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keyd", "--dir", keyd_dir.to_str().unwrap(), "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("trellis-keyd listening on"), "{line}");

    let table =
        format!("[data_encryption.keyd]\naddress = \"{listen}\"\npublic_key = \"{identity}\"\n");
    let config = with_encryption(&plain, &table, "keyd-node.toml");
    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("encrypting a new data directory"));
    node.wait_for_height(2, Duration::from_secs(30));
    node.kill();
    let data = dir.path().join("data");
    let keys = std::fs::read_to_string(data.join("trellis-data-keys.toml")).unwrap();
    assert!(keys.contains("kek = \"keyd:"), "{keys}");
    // The node's directory holds no key-encryption key: the key manager's does.
    let kek_files: Vec<_> = std::fs::read_dir(keyd_dir.join("keks")).unwrap().collect();
    assert_eq!(kek_files.len(), 1);
    let node = NodeProcess::start(&node_args(&config));
    assert!(node.logged("data at rest is encrypted"));
    node.wait_for_height(4, Duration::from_secs(30));
    node.kill();

    // Re-wrapped onto a key file and back onto the key manager.
    let table = encryption(dir.path(), "file-kek");
    let file_config = with_encryption(&plain, &table, "file-node.toml");
    let rewrap = |config: &Path, new: &str| {
        trellis(&[
            "data",
            "rewrap",
            "--config",
            config.to_str().unwrap(),
            "--new-kek",
            new,
        ])
    };
    let output = rewrap(&config, dir.path().join("file-kek").to_str().unwrap());
    assert!(output.status.success(), "{output:?}");
    assert!(failing_node(&config).contains("wrapped by key-encryption key file:"));
    let output = rewrap(&file_config, &format!("keyd:{listen}@{identity}"));
    assert!(output.status.success(), "{output:?}");
    let node = NodeProcess::start(&node_args(&config));
    node.wait_for_height(5, Duration::from_secs(30));
    node.kill();

    // Without its key manager the node cannot open its data: refused, naming where it looked.
    server.kill().unwrap();
    server.wait().unwrap();
    let before = snapshot(&data);
    let error = failing_node(&config);
    assert!(
        error.contains(&format!("cannot reach the key manager at {listen}")),
        "{error}"
    );
    assert_eq!(snapshot(&data), before, "nothing written");
}
