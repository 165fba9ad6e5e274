//! Risk control on a real node: a dev chain watching a rules file throttles a sender that
//! floods it while another sender's transactions pass, raises one alarm with the evidence
//! (the account, its transactions, the value they moved), serves it over `trellis_alarms`
//! and `trellis alarms`, posts it to the rule's webhook (a real HTTP listener here), keeps it
//! across a restart, and keeps its rules when the file is rewritten badly.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    path::Path,
    sync::mpsc,
    time::{Duration, Instant},
};
use support::{DevNode, dev_accounts, get, hex_u64, sample_with as sample};

/// Accepts HTTP requests on loopback, answers 200, and hands over each request's body.
fn webhook_receiver() -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (bodies, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            let _ = bodies.send(String::from_utf8(body).unwrap());
        }
    });
    (addr, received)
}

fn rules(hook: SocketAddr) -> String {
    format!(
        r#"# A sender may offer ten transactions a minute.
[[rule]]
name = "burst"
measure = "sender_transactions"
window = "1m"
above = 10
actions = ["throttle"]
webhook = "http://{hook}/alarms"
"#
    )
}

const VALUE: u64 = 1_000;

fn transfer(key: &trellis_crypto::AccountKey, nonce: u64) -> String {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce,
        gas_limit: 21_000,
        to: TxKind::Call(Address::from([0x42; 20])),
        value: U256::from(VALUE),
        ..TxEip1559::default()
    });
    format!("{raw}")
}

/// Polls `trellis_alarms` until it lists at least one alarm.
fn first_alarms(node: &DevNode) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let alarms = node.call("trellis_alarms", json!([]));
        let alarms = alarms.as_array().unwrap().clone();
        if !alarms.is_empty() {
            return alarms;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no alarm raised");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_log(node: &DevNode, parts: &[&str]) {
    let start = Instant::now();
    while !node.logged_all(parts) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the node never logged {parts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scrape(node: &DevNode) -> String {
    get(node.metrics.expect("metrics served"), "/metrics").1
}

fn alarms_command(node: &DevNode) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["alarms", "--rpc", &format!("http://{}", node.rpc)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_flooding_sender_is_throttled_and_traced_while_others_pass() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let rules_file = dir.path().join("risk.toml");
    let (hook, posts) = webhook_receiver();
    std::fs::write(&rules_file, rules(hook)).unwrap();
    let rules_arg = rules_file.display().to_string();
    let node = DevNode::dev(&chain, &["--risk-rules", &rules_arg]);
    let accounts = dev_accounts(&chain);
    let (flooder, other) = (&accounts[0], &accounts[1]);

    // Eleven transactions cross the threshold of ten.
    let mut hashes = Vec::new();
    for nonce in 0..11 {
        let hash = node.call("eth_sendRawTransaction", json!([transfer(flooder, nonce)]));
        hashes.push(hash.as_str().unwrap().to_owned());
    }
    let alarms = first_alarms(&node);
    assert_eq!(alarms.len(), 1, "one alarm for the burst: {alarms:?}");
    let alarm = &alarms[0];
    assert_eq!(alarm["id"], 1);
    assert_eq!(alarm["rule"], "burst");
    assert_eq!(alarm["measure"], "sender_transactions");
    assert_eq!(alarm["party"]["kind"], "account");
    let party: Address = serde_json::from_value(alarm["party"]["id"].clone()).unwrap();
    assert_eq!(party, flooder.address(), "traced to the sender");
    assert_eq!(alarm["observed"], "11");
    assert_eq!(alarm["above"], "10");
    assert_eq!(alarm["actions"], json!(["throttle"]));
    let evidence: Vec<String> =
        serde_json::from_value(alarm["evidence"]["transactions"].clone()).unwrap();
    assert_eq!(evidence, hashes, "the sender's transactions, in order");
    let value: U256 = serde_json::from_value(alarm["evidence"]["value"].clone()).unwrap();
    assert_eq!(value, U256::from(11 * VALUE), "the value at stake");

    // The flooder is refused for the window; the other sender is not.
    for nonce in 11..14 {
        let refused = node.request("eth_sendRawTransaction", json!([transfer(flooder, nonce)]));
        let error = &refused["error"];
        assert_eq!(error["code"], -32005, "{refused}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("throttled"), "{message}");
        assert!(
            error["data"]["retryAfterMs"].as_u64().unwrap() > 0,
            "{refused}"
        );
    }
    let mut last = String::new();
    for nonce in 0..5 {
        let hash = node.call("eth_sendRawTransaction", json!([transfer(other, nonce)]));
        last = hash.as_str().unwrap().to_owned();
    }
    node.wait_for_receipt(&last, Duration::from_secs(30));
    node.wait_for_receipt(&hashes[10], Duration::from_secs(30));

    // The webhook got the same alarm.
    let posted = posts.recv_timeout(Duration::from_secs(10)).expect("a post");
    let posted: Value = serde_json::from_str(&posted).unwrap();
    assert_eq!(&posted, alarm);

    let printed = alarms_command(&node);
    assert!(printed.contains("alarm 1 burst"), "{printed}");
    assert!(printed.contains(&hashes[0]), "{printed}");

    let metrics = scrape(&node);
    assert_eq!(
        sample(&metrics, "trellis_risk_alarms_total", "rule=\"burst\""),
        1.0
    );
    let throttled = sample(
        &metrics,
        "trellis_chain_offered_transactions_total",
        "outcome=\"throttled\"",
    );
    assert_eq!(throttled, 3.0);

    reload_keeps_rules_until_a_good_file(&node, &rules_file, hook);

    // The alarm outlives the process.
    drop(node);
    let node = DevNode::dev(&chain, &["--risk-rules", &rules_arg]);
    let alarms = node.call("trellis_alarms", json!([{"after": 0}]));
    assert_eq!(alarms.as_array().unwrap(), &vec![alarm.clone()]);
    let none = node.call("trellis_alarms", json!([{"after": 1}]));
    assert_eq!(none, json!([]));
}

/// A rules file rewritten with a mistake is refused with its line and the rules in force
/// stay; a good one is taken while the node keeps answering.
fn reload_keeps_rules_until_a_good_file(node: &DevNode, rules_file: &Path, hook: SocketAddr) {
    let height = hex_u64(&node.call("eth_blockNumber", json!([])));
    let bad = rules(hook).replace("sender_transactions", "sender_transactionz");
    std::fs::write(rules_file, bad).unwrap();
    wait_for_log(
        node,
        &["risk rules not reloaded", "line 4", "sender_transactionz"],
    );
    assert_eq!(
        sample(&scrape(node), "trellis_risk_reload_failures_total", ""),
        1.0
    );
    assert_eq!(sample(&scrape(node), "trellis_risk_rules", ""), 1.0);
    let good = format!(
        "{}\n[[rule]]\nname = \"refusals\"\nmeasure = \"refused_transactions\"\nwindow = \"5m\"\nabove = 100\n",
        rules(hook)
    );
    std::fs::write(rules_file, good).unwrap();
    wait_for_log(node, &["risk rules reloaded"]);
    assert_eq!(sample(&scrape(node), "trellis_risk_rules", ""), 2.0);
    node.wait_for_height(height + 2, Duration::from_secs(30));
}

/// A rule with `propose_freeze`: on a governed dev chain the first account (a governor)
/// proposes freezing the account that moved too much; a second governor's vote passes it, and
/// the account is refused from then on.
#[test]
fn a_large_outflow_is_proposed_for_a_freeze_that_governors_pass() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let rules_file = dir.path().join("risk.toml");
    std::fs::write(
        &rules_file,
        "[[rule]]\nname = \"large-outflow\"\nmeasure = \"sender_value\"\nwindow = \"1h\"\nabove = \"5 ether\"\nactions = [\"propose_freeze\"]\n",
    )
    .unwrap();
    let rules_arg = rules_file.display().to_string();
    let node = DevNode::dev(
        &chain,
        &["--accounts", "5", "--governed", "--risk-rules", &rules_arg],
    );
    let accounts = dev_accounts(&chain);
    let (governor, suspect) = (&accounts[1], &accounts[4]);
    let ether = 1_000_000_000_000_000_000u64;
    let mut last = String::new();
    for nonce in 0..2 {
        let raw = suspect.sign_transaction(TxEip1559 {
            chain_id: 1337,
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(accounts[3].address()),
            value: U256::from(3 * ether),
            ..TxEip1559::default()
        });
        let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
        last = hash.as_str().unwrap().to_owned();
    }
    node.wait_for_receipt(&last, Duration::from_secs(30));
    let alarm = first_alarms(&node).remove(0);
    assert_eq!(alarm["rule"], "large-outflow");
    let party: Address = serde_json::from_value(alarm["party"]["id"].clone()).unwrap();
    assert_eq!(party, suspect.address());
    let value: U256 = serde_json::from_value(alarm["evidence"]["value"].clone()).unwrap();
    assert_eq!(value, U256::from(6 * ether), "the outflow at stake");
    wait_for_log(&node, &["risk control proposed freezing"]);

    let vote = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["gov", "vote", "--rpc", &format!("http://{}", node.rpc)])
        .arg("--key")
        .arg(chain.join("dev-accounts.json"))
        .args(["--from", &governor.address().to_string(), "1"])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&vote.stdout).into_owned() + &String::from_utf8_lossy(&vote.stderr);
    assert!(vote.status.success(), "{said}");
    assert!(
        said.contains("proposal 1 passed and was carried out"),
        "{said}"
    );

    let raw = suspect.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce: 2,
        gas_limit: 21_000,
        to: TxKind::Call(accounts[3].address()),
        value: U256::from(1),
        ..TxEip1559::default()
    });
    let refused = node.request("eth_sendRawTransaction", json!([format!("{raw}")]));
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("frozen"), "{message}");
}
