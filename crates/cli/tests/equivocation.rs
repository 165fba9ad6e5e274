//! A validator signs conflicting votes on a running network of `trellis node` processes: the
//! process holding validator 4's key (its own node stopped) sends two notarizes for two
//! different blocks of one view. Five validators, as governance never shrinks a set of four or
//! more below four. Member 0 keeps the evidence (`trellis_getEvidence`), which
//! verifies offline; its risk rule raises the alarm and, as governor 0 (`risk_operator_key`),
//! proposes removing the validator; governor 1's vote passes it, the next epoch's set is the
//! four honest validators, and the chain goes on.

mod support;

use serde_json::{Value, json};
use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};
use support::{
    NodeProcess,
    equivocator::equivocate,
    network::TestNetwork,
    seats::{gov, gov_read, height, text, wait_until},
};
use trellis_node::genesis_file::GenesisFile;

const CHAIN_ID: u64 = 4949;
/// Blocks per epoch: short, so the removal takes effect within the test.
const EPOCH: u64 = 30;
/// The validator whose key signs conflicting votes.
const LIAR: usize = 4;

const RULES: &str = "[[rule]]\nname = \"equivocation\"\nmeasure = \"consensus_faults\"\nwindow = \"1h\"\nabove = 0\nactions = [\"propose_removal\"]\n";

/// Member `i`'s node.toml gains the rule above, and governor 0's key to propose with.
fn watch_for_equivocation(network: &TestNetwork, i: usize) {
    let config = &network.configs[i];
    std::fs::write(config.with_file_name("risk.toml"), RULES).unwrap();
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "risk_rules = \"risk.toml\"\nrisk_operator_key = \"../accounts.json\"\nrisk_operator_from = \"{}\"\n",
        network.accounts[0].address()
    ));
    std::fs::write(config, text).unwrap();
}

/// The namespace every consensus signature of this chain is bound to.
fn namespace(node: &NodeProcess) -> Vec<u8> {
    let genesis = node.call("eth_getBlockByNumber", json!(["0x0", false]));
    let hash = genesis["hash"].as_str().unwrap();
    format!("trellis-{CHAIN_ID}-{hash}").into_bytes()
}

fn evidence(node: &NodeProcess) -> Vec<Value> {
    node.call("trellis_getEvidence", json!([]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_validator_signing_conflicting_votes_is_proven_alarmed_and_proposed_for_removal() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (5, 0), 4, EPOCH);
    watch_for_equivocation(&network, 0);
    let genesis_file = network.configs[0].with_file_name("genesis.toml");
    let listed = GenesisFile::load(&genesis_file).unwrap().peers().unwrap();
    let accused = format!("0x{}", hex::encode(listed[LIAR].id.0));

    // Four honest validators of five are a quorum: the chain runs without the liar's node.
    let members: Vec<NodeProcess> = (0..LIAR).map(|i| network.start(i)).collect();
    members[0].wait_for_height(2, Duration::from_secs(120));
    let stop = Arc::new(AtomicBool::new(false));
    let liar = {
        let (genesis, stop) = (genesis_file.clone(), stop.clone());
        let key = network.configs[LIAR].with_file_name("validator.json");
        let (listen, namespace) = (listed[LIAR].p2p, namespace(&members[0]));
        thread::spawn(move || equivocate(&genesis, &key, listen, &namespace, stop))
    };

    wait_until("member 0 keeps evidence", Duration::from_secs(60), || {
        !evidence(&members[0]).is_empty()
    });
    let kept = evidence(&members[0]);
    assert!(
        kept.iter()
            .all(|record| record["validator"] == accused.as_str()),
        "only the liar is accused: {kept:?}"
    );
    assert_eq!(kept[0]["kind"], "conflicting_notarize", "{kept:?}");

    // The evidence alone convinces someone who trusts no node.
    let saved = dir.path().join("evidence.json");
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args([
            "evidence",
            "--json",
            "--rpc",
            &format!("http://{}", members[0].rpc),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&saved, &out.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .arg("verify-evidence")
        .arg(&saved)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("valid: validator {accused}")),
        "{said}"
    );

    // Governor 0's proposal to remove the validator is made, after the alarm that asked for it
    // (risk control weighs the evidence on its own task, so both are awaited, not assumed).
    let proposed = format!("risk control proposed removing validator {accused}");
    wait_until("the removal is proposed", Duration::from_secs(60), || {
        members[0].logged(&proposed)
    });
    let alarms = members[0].call("trellis_alarms", json!([]));
    let alarm = alarms
        .as_array()
        .and_then(|all| all.iter().find(|a| a["rule"] == "equivocation"))
        .unwrap_or_else(|| panic!("no equivocation alarm in {alarms}"));
    assert_eq!(alarm["party"]["id"], accused.as_str(), "{alarm}");
    assert_eq!(alarm["actions"], json!(["propose_removal"]), "{alarm}");
    let shown = gov_read(&members[0], &["show", "1"]);
    assert!(shown.to_lowercase().contains(&accused), "{shown}");

    let voted = gov(&network, &members[1], &network.accounts[1], &["vote", "1"]);
    assert!(voted.contains("passed and was carried out"), "{voted}");
    stop.store(true, Ordering::SeqCst);
    let pairs = liar.join().unwrap();
    assert!(pairs > 0, "the liar sent conflicting votes");

    // At the next epoch the set is the four honest validators, and the chain goes on.
    wait_until(
        "an epoch of four validators",
        Duration::from_secs(180),
        || {
            members[1]
                .plain_log()
                .iter()
                .any(|line| line.contains("entered epoch") && line.contains("validators=4 "))
        },
    );
    let now = height(&members[1]);
    for member in &members {
        member.wait_for_height(now + 3, Duration::from_secs(60));
    }
    // Every piece of evidence after the first changed nothing: one proposal, and it passed.
    let listed = gov_read(&members[0], &["list"]);
    assert_eq!(listed.matches("proposal ").count(), 1, "{listed}");
    assert!(listed.contains("proposal 1: "), "{listed}");
}
