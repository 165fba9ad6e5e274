//! A validator rotates its key (consensus and p2p identity) at an epoch boundary while the chain
//! carries load: four members' `trellis node` processes; member 0's node.toml names a successor
//! key (`next_validator_key`); `trellis keys rotate-validator` moves its seat; when the epoch
//! that seats the new key begins, member 0 restarts in place and leads blocks under the new
//! key, the old key leads none, and the others never stop finalizing. Every transfer sent
//! meanwhile is finalized and the four agree on every block.

mod support;

use serde_json::json;
use std::{
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use support::{
    BlockWatcher, NodeProcess, hex_u64,
    network::{Load, TestNetwork, assert_same_chain, try_post},
};
use trellis_crypto::{AccountKey, KeyBundle, ValidatorKey, write_secret_file};
use trellis_node::genesis_file::GenesisFile;
use trellis_types::ValidatorId;

/// Blocks per epoch: short, so that a rotation takes effect within seconds.
const EPOCH: u64 = 40;
const CHAIN_ID: u64 = 4747;

fn height(node: &NodeProcess) -> u64 {
    hex_u64(&node.call("eth_blockNumber", json!([])))
}

/// The block at `height` on `node`: its proposer's coinbase and its timestamp.
fn block(node: &NodeProcess, height: u64) -> (String, u64) {
    let block = node.call(
        "eth_getBlockByNumber",
        json!([format!("{height:#x}"), false]),
    );
    let miner = block["miner"].as_str().unwrap().to_lowercase();
    (miner, hex_u64(&block["timestamp"]))
}

fn coinbase(key: &ValidatorId) -> String {
    key.coinbase().to_string().to_lowercase()
}

/// Runs `trellis keys rotate-validator` through `node`, sent by `from` of `accounts.json`.
fn rotate(
    network: &TestNetwork,
    node: &NodeProcess,
    from: &AccountKey,
    (current, new): (&Path, &Path),
    p2p: &str,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "rotate-validator"])
        .args(["--rpc", &format!("http://{}", node.rpc)])
        .arg("--key")
        .arg(network.dir.join("accounts.json"))
        .args(["--from", &from.address().to_string()])
        .arg("--validator")
        .arg(current)
        .arg("--new")
        .arg(new)
        .args(["--p2p", p2p])
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_validator_rotates_its_key_at_an_epoch_boundary_while_transfers_flow() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (4, 0), 8, EPOCH);
    let folder = network.configs[0].parent().unwrap().to_path_buf();
    let genesis = GenesisFile::load(&folder.join("genesis.toml")).unwrap();
    let listed = genesis.peers().unwrap();
    let (old, p2p) = (listed[0].id, listed[0].p2p.to_string());

    // The successor key, named in member 0's node.toml before the node starts.
    let new_key = ValidatorKey::from_bytes(&[0x7a; 32]);
    let new_file = folder.join("next.json");
    let bundle = KeyBundle::from_keys(&AccountKey::from_seed(78), &new_key);
    write_secret_file(&new_file, &bundle.to_json()).unwrap();
    let mut config = std::fs::read_to_string(&network.configs[0]).unwrap();
    config.push_str("next_validator_key = \"next.json\"\n");
    std::fs::write(&network.configs[0], config).unwrap();

    let mut members: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();
    members[1].wait_for_height(2, Duration::from_secs(120));
    let targets = Arc::new(Mutex::new(
        members[1..].iter().map(|m| Some(m.rpc)).collect::<Vec<_>>(),
    ));
    let watcher = BlockWatcher::start(members[1].rpc);
    let load = Load::start(
        targets.clone(),
        network.accounts[3..].to_vec(),
        CHAIN_ID,
        10,
    );

    // A key that is no validator cannot be rotated; the message says which epoch it checked.
    let stranger = folder.join("stranger.json");
    let bundle = KeyBundle::from_keys(
        &AccountKey::from_seed(79),
        &ValidatorKey::from_bytes(&[0x7b; 32]),
    );
    write_secret_file(&stranger, &bundle.to_json()).unwrap();
    let refused = rotate(
        &network,
        &members[1],
        &network.accounts[0],
        (&stranger, &new_file),
        &p2p,
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("is not a validator in epoch"),
        "{}",
        text(&refused)
    );

    let current = folder.join("validator.json");
    let out = rotate(
        &network,
        &members[1],
        &network.accounts[0],
        (&current, &new_file),
        &p2p,
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let epoch: u64 = said
        .split("from epoch ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in {said}"));
    let first = epoch * EPOCH;
    let rotated_in: u64 = said
        .split("(block ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no block in {said}"));

    // Member 0 restarts in place when the new key's epoch begins, and leads under it.
    let new_coinbase = coinbase(&new_key.validator_id());
    let tip_of = |node: &NodeProcess| {
        let ask = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
        try_post(node.rpc, &ask).map(|answer| hex_u64(&answer["result"]))
    };
    wait_until(
        "member 0 leads a block under its new key",
        Duration::from_secs(240),
        || {
            let Some(top) = tip_of(&members[0]).filter(|top| *top >= first) else {
                return false;
            };
            (first..=top).any(|h| {
                let ask = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                    "params": [format!("{h:#x}"), false]});
                try_post(members[0].rpc, &ask).is_some_and(|answer| {
                    answer["result"]["miner"].as_str().map(str::to_lowercase)
                        == Some(new_coinbase.clone())
                })
            })
        },
    );
    assert!(members[0].logged("restarting with the validator's successor key"));
    // Unless the rotation landed in the epoch's last block (the switch is then immediate),
    // the node said beforehand when its key's term ends.
    if rotated_in + 1 < first {
        let said = "this validator's key rotates to next_validator_key at the epoch boundary";
        assert!(
            members[0].logged(said),
            "the node says when its key's term ends"
        );
    }
    // The same process: it started again in place, nobody had to restart it.
    assert!(members[0].is_running());

    // The old key led blocks before the boundary and none after; the chain never stalled.
    let top = height(&members[1]);
    let old_coinbase = coinbase(&old);
    let before: Vec<(String, u64)> = (1..first).map(|h| block(&members[1], h)).collect();
    let after: Vec<(String, u64)> = (first..=top).map(|h| block(&members[1], h)).collect();
    assert!(before.iter().any(|(miner, _)| *miner == old_coinbase));
    assert!(after.iter().all(|(miner, _)| *miner != old_coinbase));
    assert!(before.iter().all(|(miner, _)| *miner != new_coinbase));
    // The figure: how long member 1 went without a new block around the boundary (member 0
    // restarting there), against the longest wait anywhere else in the run.
    let seen = watcher.finish();
    let gaps: Vec<(u64, Duration)> = seen
        .blocks
        .windows(2)
        .map(|pair| (pair[1].0, pair[1].1 - pair[0].1))
        .collect();
    let near = |h: u64| h + 3 >= first && h <= first + 10;
    let longest = |near_boundary: bool| {
        let gaps = gaps.iter().filter(|(h, _)| near(*h) == near_boundary);
        gaps.map(|(_, gap)| *gap).max().unwrap_or_default()
    };
    println!(
        "rotation at block {first}: longest wait for a block near the boundary {:?}, elsewhere {:?}",
        longest(true),
        longest(false)
    );

    // The old key is retired for good: rotating it again is refused.
    let again = rotate(
        &network,
        &members[1],
        &network.accounts[0],
        (&current, &stranger),
        &p2p,
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("is not a validator in epoch"),
        "{}",
        text(&again)
    );

    // What the old key did: rotated, its successor named, the blocks it proposed before.
    let old_hex = format!("0x{}", hex::encode(old.0));
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "activity", &old_hex])
        .args(["--rpc", &format!("http://{}", members[1].rpc)])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let until = format!("validator {old_hex}: rotated, term from epoch 0 until epoch {epoch}");
    assert!(said.contains(&until), "{said}");
    let successor = format!("its successor: 0x{}", hex::encode(new_key.validator_id().0));
    assert!(said.contains(&successor), "{said}");
    let proposed = before
        .iter()
        .filter(|(miner, _)| *miner == old_coinbase)
        .count();
    let counts = format!("before: 0 transaction(s) signed, {proposed} block(s) proposed, ");
    assert!(said.contains(&counts), "{proposed} blocks in {said}");
    // Its finalize votes, from the archived certificates: in most of its term's blocks (a
    // certificate carries a quorum, 3 of 4, and a block finalized through a descendant's has
    // none of its own).
    let votes: u64 = said
        .split(&counts)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no vote count in {said}"));
    println!("the old key's finalize votes in blocks 1..{first}: {votes}");
    assert!(
        votes > 0 && votes < first,
        "{votes} votes in blocks 1..{first}: {said}"
    );
    assert!(said.contains("not recorded: p2p sessions"), "{said}");

    let outcome = load.finish();
    assert!(!outcome.sent.is_empty());
    let tip = height(&members[1]);
    let all: Vec<&NodeProcess> = members.iter().collect();
    for node in &all {
        node.wait_for_height(tip, Duration::from_secs(60));
    }
    assert_same_chain(&all, tip);
    for node in &mut members {
        assert!(node.is_running(), "a member's node died");
    }
}
