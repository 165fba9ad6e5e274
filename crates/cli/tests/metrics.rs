//! A node's metrics for Prometheus: a dev chain serves `GET /metrics` in the text format, with
//! its chain's own figures (finalized height, transactions, pool, transactions offered by
//! outcome) and its API's (calls by method and status) beside consensus's, p2p's and
//! storage's, under stable `trellis_` names, and they move as the chain does.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::time::Duration;
use support::{DevNode, dev_accounts, get, hex_u64, sample_with};

/// The value of the first sample of metric `name` (with any labels).
fn sample(scrape: &str, name: &str) -> f64 {
    sample_with(scrape, name, "")
}

#[test]
fn a_dev_chain_serves_its_metrics_for_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &[]);
    let metrics = node
        .metrics
        .expect("the dev chain says where its metrics are");
    node.wait_for_height(3, Duration::from_secs(30));

    let (status, scrape) = get(metrics, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(scrape.contains("# TYPE"), "the text format");
    let height = sample_with(
        &scrape,
        "trellis_chain_finalized_height",
        "role=\"validator\"",
    );
    assert!(height >= 3.0, "finalized_height {height}");
    // Consensus's and storage's own metrics are in the same scrape.
    assert!(scrape.contains("trellis_consensus_"), "consensus metrics");
    assert!(scrape.contains("runtime_tasks_running"), "runtime metrics");
    // Each vote this validator signed, timed.
    assert!(sample(&scrape, "trellis_consensus_signing_seconds_count") >= 3.0);
    // The data directory and its filesystem, measured at start.
    assert!(sample(&scrape, "trellis_disk_state_bytes") > 0.0);
    let free = sample(&scrape, "trellis_disk_free_bytes");
    assert!(free > 0.0 && free <= sample(&scrape, "trellis_disk_size_bytes"));

    let account = &dev_accounts(dir.path())[0];
    let raw = account.sign_transaction(TxEip1559 {
        chain_id: 1337,
        gas_limit: 21_000,
        to: TxKind::Call(Address::from([0x42; 20])),
        value: U256::from(1),
        ..TxEip1559::default()
    });
    let hash = node.call("eth_sendRawTransaction", json!([format!("{raw}")]));
    node.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
    let now = hex_u64(&node.call("eth_blockNumber", json!([])));
    node.wait_for_height(now + 1, Duration::from_secs(30));
    // Refused: another chain's id.
    let wrong = account.sign_transaction(TxEip1559 {
        chain_id: 1,
        nonce: 1,
        gas_limit: 21_000,
        to: TxKind::Call(Address::from([0x42; 20])),
        ..TxEip1559::default()
    });
    let refused = node.request("eth_sendRawTransaction", json!([format!("{wrong}")]));
    assert!(refused.get("error").is_some(), "{refused}");
    let invented = node.request("eth_inventedMethod", json!([]));
    assert!(invented.get("error").is_some(), "{invented}");
    let (_, scrape) = get(metrics, "/metrics");
    assert!(sample(&scrape, "finalized_transactions_total") >= 1.0);
    assert!(sample(&scrape, "finalized_height") >= now as f64);
    let offered = |outcome: &str| {
        let labels = format!("source=\"client\",outcome=\"{outcome}\"");
        sample_with(&scrape, "offered_transactions_total", &labels)
    };
    assert_eq!(offered("admitted"), 1.0);
    assert_eq!(offered("wrong_chain_id"), 1.0);
    let calls = |method: &str, status: &str| {
        let labels = format!("method=\"{method}\",status=\"{status}\"");
        sample_with(&scrape, "trellis_rpc_calls_total", &labels)
    };
    assert_eq!(calls("eth_sendRawTransaction", "ok"), 1.0);
    assert_eq!(calls("eth_sendRawTransaction", "-32000"), 1.0);
    assert!(calls("eth_blockNumber", "ok") >= 1.0);
    // A method the server does not have is counted under one label, whatever its name.
    assert_eq!(calls("unknown", "-32601"), 1.0);
    assert!(
        !scrape.contains("eth_inventedMethod"),
        "client-chosen label"
    );
    let timed = sample_with(
        &scrape,
        "trellis_rpc_call_seconds_count",
        "method=\"eth_sendRawTransaction\"",
    );
    assert_eq!(timed, 2.0);

    let (status, body) = get(metrics, "/");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("GET /metrics"), "{body}");
}
