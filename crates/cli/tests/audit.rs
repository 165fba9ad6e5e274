//! The audit log of a real node: a dev chain records its start, its risk rules and the alarm
//! they raise, each record signed by validator 0's key; `trellis audit verify` finds the log
//! intact, then names the record an edit changed and the one a deletion removed; `trellis
//! audit export` hands the verified records over. A node anchoring its log's head on chain
//! (`[audit_anchor]`): the anchors catch a log rewritten with the node's own key, which signature
//! checks alone cannot, and a log cut short.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};
use support::{DevNode, dev_accounts, network::TestNetwork};

fn audit(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn the_audit_log_holds_until_a_record_is_edited_or_removed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let rules = dir.path().join("risk.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"burst\"\nmeasure = \"sender_transactions\"\nwindow = \"1m\"\nabove = 2\n",
    )
    .unwrap();
    let node = DevNode::dev(&chain, &["--risk-rules", &rules.display().to_string()]);
    let sender = &dev_accounts(&chain)[0];
    for nonce in 0..3 {
        let raw = sender.sign_transaction(TxEip1559 {
            chain_id: 1337,
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(Address::from([0x42; 20])),
            value: U256::from(1),
            ..TxEip1559::default()
        });
        node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
    }
    let log = chain.join("storage").join("audit.jsonl");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(r#""kind":"alarm""#)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no alarm recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(node);

    let kinds: Vec<String> = records(&log)
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["node_started", "risk_rules_loaded", "alarm"]);
    let key_file: Value =
        serde_json::from_str(&std::fs::read_to_string(chain.join("validator-0.json")).unwrap())
            .unwrap();
    let key = key_file["public_key"].as_str().unwrap().to_owned();
    let log_arg = log.display().to_string();
    let (ok, said) = audit(&["verify", "--log", &log_arg, "--key", &key]);
    assert!(ok, "{said}");
    assert!(said.contains("intact, 3 records"), "{said}");
    assert!(said.contains(&key), "{said}");
    let other = format!("0x{}", "11".repeat(32));
    let (ok, said) = audit(&["verify", "--log", &log_arg, "--key", &other]);
    assert!(!ok && said.contains("not a key given to trust"), "{said}");

    let export = dir.path().join("export.json");
    let (ok, said) = audit(&[
        "export",
        "--log",
        &log_arg,
        "--out",
        &export.display().to_string(),
    ]);
    assert!(ok, "{said}");
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(exported["records"].as_array().unwrap().len(), 3);
    assert_eq!(exported["head"]["seq"], 3);

    let original = std::fs::read_to_string(&log).unwrap();
    let edited = original.replacen(r#""observed":"3""#, r#""observed":"1""#, 1);
    assert_ne!(
        edited, original,
        "the alarm's record names what it observed"
    );
    std::fs::write(&log, &edited).unwrap();
    let (ok, said) = audit(&["verify", "--log", &log_arg]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("line 3 (record 3): its content does not match its hash"),
        "{said}"
    );

    let mut lines: Vec<&str> = original.lines().collect();
    lines.remove(1);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (ok, said) = audit(&["verify", "--log", &log_arg]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("line 2 (record 3): numbered 3 where 2 comes next"),
        "{said}"
    );
}

/// Waits until the log at `path` holds `count` records of `kind`.
fn wait_for_records(path: &Path, kind: &str, count: usize) {
    let start = Instant::now();
    let needle = format!(r#""kind":"{kind}""#);
    while std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(&needle)
        .count()
        < count
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "fewer than {count} {kind} records in {}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The complete lines of a log being written (a last line being appended is left out).
fn snapshot(log: &Path, to: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    std::fs::write(to, complete).unwrap();
    records(to)
}

/// The log `records` written again from scratch and signed by `signer`, with record 2's
/// detail changed: what someone holding the node's key could make.
fn forge(records: &[Value], signer: trellis_crypto::ValidatorSigner, to: &Path) {
    let mut forged = trellis_audit::AuditLog::open(to, signer).unwrap();
    for record in records {
        let mut detail = record["detail"].clone();
        if record["seq"] == 2 {
            detail["forged"] = json!(true);
        }
        let at = record["atMs"].as_u64().unwrap();
        forged
            .append(at, record["kind"].as_str().unwrap(), detail)
            .unwrap();
    }
}

#[test]
fn anchors_on_chain_catch_a_log_rewritten_with_the_nodes_own_key_or_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::init(dir.path(), 4343, 1, 2);
    let (deployer, anchorer) = (&network.accounts[0], &network.accounts[1]);
    // Named before it exists: the node says so until it is deployed.
    let contract = deployer.address().create(0);
    let config = &network.configs[0];
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "\n[audit_anchor]\ncontract = \"{contract}\"\nkey = \"{}\"\nfrom = \"{}\"\nevery_secs = 1\n",
        network.dir.join("accounts.json").display(),
        anchorer.address()
    ));
    std::fs::write(config, text).unwrap();
    let node = network.start(0);
    let log = config.with_file_name("data").join("audit.jsonl");
    wait_for_records(&log, "audit_anchor_failed", 1);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(&format!("no contract at {contract}")),
        "the failure says why"
    );
    let artifact: Value = serde_json::from_str(include_str!(
        "../../../contracts/artifacts/AuditAnchors.json"
    ))
    .unwrap();
    let code = alloy_primitives::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    let deployed = node.execute(deployer, 0, TxKind::Create, code.into());
    assert_eq!(
        deployed["contractAddress"].as_str().unwrap().to_lowercase(),
        contract.to_string().to_lowercase()
    );
    // One anchor: after it, only its own record follows, and the log is not anchored again
    // until something else is written.
    wait_for_records(&log, "audit_anchored", 1);

    let copy = dir.path().join("copy.jsonl");
    let written = snapshot(&log, &copy);
    let rpc = format!("http://{}", node.rpc);
    let contract = contract.to_string();
    let verify = |path: &Path| {
        let path = path.display().to_string();
        audit(&[
            "verify",
            "--log",
            &path,
            "--anchors",
            &contract,
            "--rpc",
            &rpc,
        ])
    };
    let (ok, said) = verify(&copy);
    assert!(ok, "{said}");
    assert!(said.contains("matches its 1 anchor(s) at"), "{said}");

    // Rewritten and re-signed with the node's own key: every signature holds, the anchors don't.
    let key_path = config.with_file_name("validator.json");
    let signer = trellis_node::keyfile::load(&key_path)
        .unwrap()
        .validator_signer();
    let forged = dir.path().join("forged.jsonl");
    forge(&written, signer, &forged);
    let forged_arg = forged.display().to_string();
    let (ok, said) = audit(&["verify", "--log", &forged_arg]);
    assert!(ok, "the forged log's own signatures hold: {said}");
    let (ok, said) = verify(&forged);
    assert!(!ok, "{said}");
    assert!(said.contains("is not the one anchored in block"), "{said}");
    assert!(said.contains("the log was rewritten"), "{said}");

    // Cut short below an anchor.
    let cut = dir.path().join("cut.jsonl");
    let first = std::fs::read_to_string(&copy).unwrap();
    let first_line = first.lines().next().unwrap();
    std::fs::write(&cut, format!("{first_line}\n")).unwrap();
    let (ok, said) = verify(&cut);
    assert!(!ok, "{said}");
    assert!(said.contains("it was cut short"), "{said}");
    assert!(!node.logged("panicked"), "the node panicked");
}
