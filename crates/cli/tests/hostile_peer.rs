//! Peers that hold a key the genesis admits and send the validators what no honest node sends:
//! bytes that decode as nothing, on every channel, and a message over the size limit. Each is
//! cut off (blocked where the message can only be hostile), and the chain goes on.

mod support;

use serde_json::json;
use std::{thread, time::Duration};
use support::{
    NodeProcess, hex_u64,
    hostile::{Junk, send_junk},
    network::{TestNetwork, assert_same_chain},
};
use trellis_consensus::engine::channel;
use trellis_node::genesis_file::GenesisFile;

fn height(node: &NodeProcess) -> u64 {
    hex_u64(&node.call("eth_blockNumber", json!([])))
}

#[test]
fn peers_sending_garbage_are_blocked_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // Channels on which an undecodable message is blocked, one hostile full-node key each; the
    // two request/response channels, where commonware's resolver drops such a message; and one
    // key that sends a message twice the size limit.
    let blocked = [
        ("votes", channel::VOTES),
        ("certificates", channel::CERTIFICATES),
        ("blocks", channel::BLOCKS),
        ("transactions", channel::TRANSACTIONS),
        ("hello", channel::HELLO),
    ];
    let dropped = [channel::SIMPLEX_RESOLVER, channel::BACKFILL];
    let hostile = blocked.len() + dropped.len() + 1;
    let network = TestNetwork::with_full_nodes(dir.path(), 4343, 4, hostile as u16, 1);
    let mut nodes: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();
    nodes[0].wait_for_height(2, Duration::from_secs(120));

    let genesis = network.configs[0].with_file_name("genesis.toml");
    let full_nodes = GenesisFile::load(&genesis)
        .unwrap()
        .full_node_peers()
        .unwrap();
    let garbage = vec![0xa5u8; 300];
    let limit = trellis_consensus::engine::max_message_size(4, &Default::default()) as usize;
    let junk: Vec<Junk> = blocked
        .iter()
        .map(|(_, channel)| *channel)
        .chain(dropped)
        .map(|channel| Junk {
            channel,
            message: garbage.clone(),
        })
        .chain([Junk {
            channel: channel::VOTES,
            message: vec![0; limit + 1024],
        }])
        .collect();
    let senders: Vec<_> = junk
        .into_iter()
        .enumerate()
        .map(|(j, junk)| {
            let genesis = genesis.clone();
            let key = network.full_nodes[j].with_file_name("node.json");
            let listen = full_nodes[j].p2p;
            thread::spawn(move || send_junk(&genesis, &key, listen, junk, Duration::from_secs(10)))
        })
        .collect();
    // Every node keeps answering while it is attacked.
    for _ in 0..10 {
        for node in &nodes {
            height(node);
        }
        thread::sleep(Duration::from_secs(1));
    }
    for sender in senders {
        sender.join().unwrap();
    }

    for (j, (what, _)) in blocked.iter().enumerate() {
        let key = hex::encode(full_nodes[j].id.0);
        for (i, node) in nodes.iter().enumerate() {
            assert!(
                (0..6).any(|_| node.logged_all(&["blocked a peer", &key])),
                "validator {i} blocks the peer that sent garbage on the {what} channel"
            );
        }
    }
    let now = nodes.iter().map(height).max().unwrap();
    for (i, node) in nodes.iter_mut().enumerate() {
        assert!(node.is_running(), "validator {i} survived");
        node.wait_for_height(now + 3, Duration::from_secs(60));
    }
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    assert_same_chain(&refs, now + 3);
}
