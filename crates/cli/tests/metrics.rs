//! A node's metrics for Prometheus: a dev chain serves `GET /metrics` in the text format, with
//! its chain's own figures (finalized height, transactions, pool) beside consensus's, p2p's and
//! storage's, and they move as the chain does.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::time::Duration;
use support::{DevNode, dev_accounts, get, hex_u64};

/// The value of the first sample of metric `name` (with any labels) in a scrape.
fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.rsplit_once(' ')?;
            let bare = metric.split('{').next()?;
            bare.ends_with(name).then(|| value.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
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
    let height = sample(&scrape, "finalized_height");
    assert!(height >= 3.0, "finalized_height {height}");
    // Consensus's and storage's own metrics are in the same scrape.
    assert!(scrape.contains("consensus_"), "consensus metrics");
    assert!(scrape.contains("runtime_tasks_running"), "runtime metrics");

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
    let (_, scrape) = get(metrics, "/metrics");
    assert!(sample(&scrape, "finalized_transactions_total") >= 1.0);
    assert!(sample(&scrape, "finalized_height") >= now as f64);

    let (status, body) = get(metrics, "/");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("GET /metrics"), "{body}");
}
