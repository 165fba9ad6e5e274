//! The audit log of a real node: a dev chain records its start, its risk rules and the alarm
//! they raise, each record signed by validator 0's key; `trellis audit verify` finds the log
//! intact, then names the record an edit changed and the one a deletion removed; `trellis
//! audit export` hands the verified records over.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};
use support::{DevNode, dev_accounts};

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
