//! A validator rotates its key (consensus and p2p identity) at an epoch boundary while the chain
//! carries load: four members' `trellis node` processes; member 0's node.toml names a successor
//! key (`next_validator_key`); `trellis keys rotate-validator` moves its seat; when the epoch
//! that seats the new key begins, member 0 restarts in place and leads blocks under the new
//! key, the old key leads none, and the others never stop finalizing. Every transfer sent
//! meanwhile is finalized and the four agree on every block.

mod support;

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    BlockWatcher, NodeProcess,
    network::{Load, TestNetwork},
    seats::{
        coinbase, height, key_file, led_since, miners, name_next_key, number_after, rotate, settle,
        text, wait_until,
    },
};
use trellis_crypto::ValidatorKey;
use trellis_node::genesis_file::GenesisFile;

/// Blocks per epoch: short, so that a rotation takes effect within seconds.
const EPOCH: u64 = 40;
const CHAIN_ID: u64 = 4747;

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
    let new_file = key_file(&folder, "next.json", &new_key, 78);
    name_next_key(&network.configs[0], "next_validator_key", "next.json");

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
    let stranger = key_file(
        &folder,
        "stranger.json",
        &ValidatorKey::from_bytes(&[0x7b; 32]),
        79,
    );
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
    let epoch = number_after(&said, "from epoch ");
    let first = epoch * EPOCH;
    let rotated_in = number_after(&said, "(block ");

    // Member 0 restarts in place when the new key's epoch begins, and leads under it.
    let new_coinbase = coinbase(&new_key.validator_id());
    wait_until(
        "member 0 leads a block under its new key",
        Duration::from_secs(240),
        || led_since(&members[0], first, &new_coinbase),
    );
    assert!(members[0].logged("restarting with the node's successor key"));
    // Unless the rotation landed in the epoch's last block (the switch is then immediate),
    // the node said beforehand when its key's term ends.
    if rotated_in + 1 < first {
        let said = "this node's key rotates to its successor";
        assert!(
            members[0].logged(said),
            "the node says when its key's term ends"
        );
    }
    // The same process: it started again in place, nobody had to restart it.
    assert!(members[0].is_running());
    // Its audit log recorded the rotation before the restart, under the old key, and the
    // start after it under the new one; it verifies against the two.
    let log = folder.join("data").join("audit.jsonl");
    let hex_of =
        |id: &trellis_types::ValidatorId| format!("0x{}", alloy_primitives::hex::encode(id.0));
    let verified = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["audit", "verify", "--log", &log.display().to_string()])
        .args([
            "--key",
            &hex_of(&old),
            "--key",
            &hex_of(&new_key.validator_id()),
        ])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
    let records = std::fs::read_to_string(&log).unwrap();
    let rotated = records
        .find(r#""kind":"key_rotated""#)
        .expect("the rotation is recorded");
    let restarted = records.rfind(r#""kind":"node_started""#).unwrap();
    assert!(rotated < restarted, "recorded before the restart");

    // The old key led blocks before the boundary and none after; the chain never stalled.
    let top = height(&members[1]);
    let old_coinbase = coinbase(&old);
    let before = miners(&members[1], 1, first - 1);
    let after = miners(&members[1], first, top);
    assert!(before.contains(&old_coinbase));
    assert!(after.iter().all(|miner| *miner != old_coinbase));
    assert!(before.iter().all(|miner| *miner != new_coinbase));
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
        .filter(|miner| **miner == old_coinbase)
        .count();
    let counts = format!("before: 0 transaction(s) signed, {proposed} block(s) proposed, ");
    assert!(said.contains(&counts), "{proposed} blocks in {said}");
    // Its finalize votes, from the archived certificates: in most of its term's blocks (a
    // certificate carries a quorum, 3 of 4, and a block finalized through a descendant's has
    // none of its own).
    let votes = number_after(&said, &counts);
    println!("the old key's finalize votes in blocks 1..{first}: {votes}");
    assert!(
        votes > 0 && votes < first,
        "{votes} votes in blocks 1..{first}: {said}"
    );
    assert!(said.contains("not recorded: p2p sessions"), "{said}");

    settle(load, &mut members);
}
