//! A consortium changes its validators by vote while the chain carries load: four members'
//! `trellis node` processes, a fifth validator voted in (it starts from genesis, catches up and
//! leads blocks from the next epoch on), then a founding member voted out (it leads nothing
//! after its last epoch and is cut off from the others). A genesis full node follows
//! throughout, and a second full node, let in by vote, from its first epoch on. Every transfer
//! sent meanwhile is finalized, and the nodes still running agree on every block.

mod support;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    NodeProcess, free_ports,
    network::{Load, TestNetwork, assert_same_chain},
    seats::{
        coinbase, height, key_file, miners, name_next_key, number_after, pass, rotate, text,
        try_height, wait_until,
    },
};
use trellis_crypto::ValidatorKey;
use trellis_node::genesis_file::GenesisFile;
use trellis_types::ValidatorId;

/// Blocks per epoch: short, so that changes take effect within seconds.
const EPOCH: u64 = 20;
const CHAIN_ID: u64 = 4646;

/// A newcomer's folder `name`: a key file, and a node.toml naming the members' genesis, the
/// key (as `key_field`: `validator_key` or `full_node_key`) and where it listens (it is in no
/// genesis list).
fn newcomer_config(
    network: &TestNetwork,
    name: &str,
    (key_field, key): (&str, &ValidatorKey),
    p2p: u16,
    rpc: u16,
) -> String {
    let folder = network.dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    key_file(&folder, "key.json", key, 77);
    let genesis = network.configs[0].with_file_name("genesis.toml");
    let config = folder.join("node.toml");
    let text = format!(
        "genesis = {genesis:?}\n{key_field} = \"key.json\"\ndata_dir = \"data\"\n\
         rpc_addr = \"127.0.0.1:{rpc}\"\np2p_listen = \"127.0.0.1:{p2p}\"\nstate_cache_mib = 16\n"
    );
    std::fs::write(&config, text).unwrap();
    config.display().to_string()
}

fn genesis_keys(network: &TestNetwork) -> Vec<ValidatorId> {
    let genesis = network.configs[0].with_file_name("genesis.toml");
    let peers = GenesisFile::load(Path::new(&genesis)).unwrap().peers();
    peers.unwrap().into_iter().map(|p| p.id).collect()
}

#[test]
fn a_validator_is_voted_in_and_a_member_voted_out_while_transfers_flow() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (4, 1), 8, EPOCH);
    // The genesis full node holds a successor for its transport key.
    let follower_folder = network.full_nodes[0].parent().unwrap().to_path_buf();
    let follower_next = ValidatorKey::from_bytes(&[0x5d; 32]);
    let next_file = key_file(&follower_folder, "next.json", &follower_next, 78);
    name_next_key(&network.full_nodes[0], "next_full_node_key", "next.json");
    let mut members: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();
    let mut follower = network.start_full_node(0);
    members[1].wait_for_height(2, Duration::from_secs(120));
    let founders = genesis_keys(&network);

    // Transfers from accounts 3–7 (governors 0–2 sign governance) through members 1–3.
    let targets = Arc::new(Mutex::new(
        members[1..].iter().map(|m| Some(m.rpc)).collect::<Vec<_>>(),
    ));
    let load = Load::start(
        targets.clone(),
        network.accounts[3..].to_vec(),
        CHAIN_ID,
        10,
    );

    let key = ValidatorKey::from_bytes(&[0x5e; 32]);
    let (p2p, rpc) = (free_ports(1), free_ports(1));
    let config = newcomer_config(&network, "newcomer", ("validator_key", &key), p2p, rpc);
    let public = key.public_hex();
    let address = format!("127.0.0.1:{p2p}");
    let passed = pass(
        &network,
        &members[1],
        1,
        &["add-validator", &public, &address],
    );
    let first = (passed / EPOCH + 1) * EPOCH;

    // The newcomer starts from genesis, walks the epochs up to the others and leads blocks
    // of its epochs.
    let newcomer = NodeProcess::start(&["node".into(), "--config".into(), config]);
    targets.lock().unwrap().push(Some(newcomer.rpc));
    let joined = coinbase(&key.validator_id());
    wait_until(
        "the newcomer leads a block",
        Duration::from_secs(180),
        || {
            let top = height(&newcomer);
            top >= first && miners(&newcomer, first, top).contains(&joined)
        },
    );
    let before = miners(&members[1], 1, first - 1);
    assert!(!before.contains(&joined), "it led a block before its epoch");

    // A full node let in by vote (it is in no genesis list) follows from its first epoch on.
    let watcher_key = ValidatorKey::from_bytes(&[0x5f; 32]);
    let (p2p, rpc) = (free_ports(1), free_ports(1));
    let config = newcomer_config(
        &network,
        "watcher",
        ("full_node_key", &watcher_key),
        p2p,
        rpc,
    );
    let address = format!("127.0.0.1:{p2p}");
    let passed = pass(
        &network,
        &members[1],
        2,
        &["add-full-node", &watcher_key.public_hex(), &address],
    );
    let watcher = NodeProcess::start(&["node".into(), "--config".into(), config]);
    let followed = (passed / EPOCH + 2) * EPOCH;
    watcher.wait_for_height(followed, Duration::from_secs(180));

    // The genesis full node's transport key rotates (both keys sign; it has no operator): the
    // node switches to its successor by itself at the boundary and keeps following.
    let genesis = network.configs[0].with_file_name("genesis.toml");
    let listed = GenesisFile::load(&genesis)
        .unwrap()
        .full_node_peers()
        .unwrap();
    let out = rotate(
        &network,
        &members[1],
        &network.accounts[2],
        (&follower_folder.join("node.json"), &next_file),
        &listed[0].p2p.to_string(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let switched = (number_after(&text(&out), "from epoch ") + 1) * EPOCH;
    wait_until(
        "the full node restarts with its successor key",
        Duration::from_secs(120),
        || follower.logged("restarting with the node's successor key"),
    );
    wait_until(
        "the full node follows an epoch under its successor key",
        Duration::from_secs(120),
        || try_height(&follower).is_some_and(|top| top >= switched),
    );
    assert!(follower.is_running(), "it restarted in place");

    // Member 0 is voted out: from the epoch after, it leads nothing and falls behind.
    let removed = founders[0];
    let passed = pass(
        &network,
        &members[2],
        3,
        &["remove-validator", &format!("0x{}", hex::encode(removed.0))],
    );
    let gone = (passed / EPOCH + 1) * EPOCH;
    // Once its own node has taken the block the proposal passed in (it may trail member 2).
    wait_until(
        "the removed validator is warned",
        Duration::from_secs(60),
        || members[0].logged("ALARM: this node's key leaves the set at that epoch"),
    );
    let until = gone + 3 * EPOCH;
    members[1].wait_for_height(until, Duration::from_secs(180));
    let after = miners(&members[1], gone, until);
    assert!(
        !after.contains(&coinbase(&removed)),
        "a removed validator led a block"
    );
    assert!(after.contains(&joined), "the newcomer stopped leading");
    let stalled = height(&members[0]);
    members[1].wait_for_height(until + EPOCH, Duration::from_secs(120));
    assert!(
        height(&members[0]) < height(&members[1]),
        "the removed validator still follows the chain ({stalled} then {}, the others {})",
        height(&members[0]),
        height(&members[1])
    );

    let outcome = load.finish();
    assert!(!outcome.sent.is_empty());
    let tip = height(&members[1]);
    let running: Vec<&NodeProcess> = members[1..]
        .iter()
        .chain([&newcomer, &follower, &watcher])
        .collect();
    for node in &running {
        node.wait_for_height(tip, Duration::from_secs(60));
    }
    assert_same_chain(&running, tip);
    for node in &mut members {
        assert!(node.is_running(), "a member's node died");
    }
}
