//! A validator key leaks while the chain carries load: four members' `trellis node` processes;
//! member 2 holds a spare key (`next_validator_key`). A genesis validator has no operator
//! identity, so its own report is refused and the council reports the key, with the block it
//! is suspected from and the spare as successor. Member 2 raises an alarm, moves to the spare
//! at the next epoch by restarting in place, and `trellis keys activity` splits what the leaked
//! key signed at the suspected block. Every transfer is finalized and the four agree.

mod support;

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    NodeProcess,
    network::{Load, TestNetwork},
    seats::{
        coinbase, height, key_file, led_since, miners, name_next_key, number_after, pass, settle,
        text, wait_until,
    },
};
use trellis_crypto::ValidatorKey;
use trellis_node::genesis_file::GenesisFile;

/// Blocks per epoch: short, so that the report takes effect within seconds.
const EPOCH: u64 = 30;
const CHAIN_ID: u64 = 4848;

#[test]
fn a_leaked_validator_key_is_reported_and_its_seat_moves_to_the_spare_key() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (4, 0), 8, EPOCH);
    let folder = network.configs[2].parent().unwrap().to_path_buf();
    let genesis = GenesisFile::load(&folder.join("genesis.toml")).unwrap();
    let listed = genesis.peers().unwrap();
    let (leaked, p2p) = (listed[2].id, listed[2].p2p.to_string());
    let leaked_hex = format!("0x{}", hex::encode(leaked.0));
    let spare = ValidatorKey::from_bytes(&[0x6c; 32]);
    let spare_file = key_file(&folder, "spare.json", &spare, 80);
    name_next_key(&network.configs[2], "next_validator_key", "spare.json");

    let mut members: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();
    members[1].wait_for_height(2, Duration::from_secs(120));
    let targets = Arc::new(Mutex::new([0, 1, 3].map(|i| Some(members[i].rpc)).to_vec()));
    let load = Load::start(
        targets.clone(),
        network.accounts[3..].to_vec(),
        CHAIN_ID,
        10,
    );

    // A genesis validator has no operator whose account could report it: only the council.
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "report-validator"])
        .args(["--rpc", &format!("http://{}", members[1].rpc)])
        .arg("--key")
        .arg(network.dir.join("accounts.json"))
        .args(["--from", &network.accounts[0].address().to_string()])
        .args(["--validator", &leaked_hex, "--compromised-since", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("only the council"), "{}", text(&out));

    // Suspected from a block a little behind the tip, so that what it signed splits.
    let since = height(&members[1]);
    members[1].wait_for_height(since + 3, Duration::from_secs(60));
    let passed = pass(
        &network,
        &members[1],
        1,
        &[
            "compromise-validator",
            &leaked_hex,
            "--compromised-since",
            &since.to_string(),
            "--new",
            spare_file.to_str().unwrap(),
            "--p2p",
            &p2p,
        ],
    );
    let first = (passed / EPOCH + 1) * EPOCH;
    wait_until(
        "member 2 raises the compromise alarm",
        Duration::from_secs(60),
        || members[2].logged("ALARM: the chain records this node's key as compromised"),
    );
    let spare_coinbase = coinbase(&spare.validator_id());
    wait_until(
        "member 2 leads a block under its spare key",
        Duration::from_secs(240),
        || led_since(&members[2], first, &spare_coinbase),
    );
    assert!(members[2].logged("restarting with the node's successor key"));
    assert!(members[2].is_running(), "it restarted in place");
    let top = height(&members[1]);
    let after = miners(&members[1], first, top);
    assert!(
        !after.contains(&coinbase(&leaked)),
        "the leaked key led a block after it left"
    );

    // What the leaked key signed, split at the suspected block.
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "activity", &leaked_hex])
        .args(["--rpc", &format!("http://{}", members[1].rpc)])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let epoch = first / EPOCH;
    let status = format!(
        "validator {leaked_hex}: reported compromised, term from epoch 0 until epoch {epoch}"
    );
    assert!(said.contains(&status), "{said}");
    assert!(
        said.contains(&format!("suspected of misuse from block {since}")),
        "{said}"
    );
    assert!(said.contains("by proposal 1"), "{said}");
    let successor = format!("its successor: 0x{}", hex::encode(spare.validator_id().0));
    assert!(said.contains(&successor), "{said}");
    // It voted in blocks on both sides of the suspected block (a certificate carries 3 of 4).
    let votes = |side: &str| {
        let line = said
            .lines()
            .find(|line| line.starts_with(&format!("{side}: ")))
            .unwrap_or_else(|| panic!("no {side} line in {said}"));
        number_after(line, "proposed, ")
    };
    let (before, after) = (votes("before"), votes("after"));
    println!("the leaked key's finalize votes: {before} before block {since}, {after} after");
    assert!(before > 0 && after > 0, "{said}");
    assert!(after <= first - since, "votes after it left: {said}");
    assert!(said.contains("its votes still count"), "{said}");

    settle(load, &mut members);
}
