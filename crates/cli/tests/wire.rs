//! What crosses the wire between nodes: a capture of a busy 4-validator network's p2p traffic
//! (tcpdump on the loopback) holds none of the transactions, addresses or contract code it
//! carried in clear; a node whose key the genesis does not list gets no connection and no data.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};
use support::{
    NodeProcess, hex_u64,
    network::{Load, TestNetwork},
};

/// tcpdump writing every packet on the loopback matching `filter` to `file`.
struct Capture {
    child: Child,
    /// tcpdump's stderr after its first line: its closing counts.
    report: std::thread::JoinHandle<Vec<String>>,
}

impl Capture {
    fn start(file: &Path, filter: &str) -> Self {
        // Immediate mode: without it libpcap hands packets over a ring block at a time and
        // the block still filling when tcpdump is stopped is lost (a CI run once kept none).
        // Its ring holds one frame per packet sized for the loopback's 64 KiB MTU, so the
        // default 2 MiB held ~30 and dropped hundreds on a busy host: 128 MiB.
        let mut child = Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "--immediate-mode",
                "-B",
                "131072",
                "-U",
                "-s",
                "0",
                "-w",
            ])
            .arg(file)
            .arg(filter)
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/setup installs it)");
        // It says so on stderr once it captures.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("listening on lo"), "tcpdump: {first}");
        let report = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        Self { child, report }
    }

    /// Stops the capture (SIGINT, so tcpdump flushes) and returns the file's bytes.
    fn finish(mut self, file: &Path) -> Vec<u8> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
        let report = self.report.join().unwrap();
        // A capture that lost packets could not show that something is absent.
        assert!(
            report
                .iter()
                .any(|l| l.trim() == "0 packets dropped by kernel"),
            "tcpdump lost packets: {report:?}"
        );
        std::fs::read(file).unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The p2p addresses (host:port) in a genesis file.
fn p2p_ports(genesis: &Path) -> Vec<u16> {
    std::fs::read_to_string(genesis)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("p2p = "))
        .map(|a| {
            a.trim_matches('"')
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn p2p_traffic_carries_nothing_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::init(dir.path(), 4545, 4, 21);
    let ports = p2p_ports(&network.configs[0].with_file_name("genesis.toml"));
    let nodes: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();

    let p2p_file = dir.path().join("p2p.pcap");
    let filter: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
    let p2p = Capture::start(&p2p_file, &format!("tcp and ({})", filter.join(" or ")));
    // The control: node 0's JSON-RPC (plain HTTP on the loopback) carries the same
    // transactions hex-encoded, so the capture and the search do find them there.
    let rpc_file = dir.path().join("rpc.pcap");
    let rpc = Capture::start(&rpc_file, &format!("tcp and port {}", nodes[0].rpc.port()));

    let targets = Arc::new(Mutex::new(nodes.iter().map(|n| Some(n.rpc)).collect()));
    let load = Load::start(targets, network.accounts[..20].to_vec(), 4545, 10);
    // A contract whose init code carries a 32-byte marker, and transfers to one recipient,
    // sent to node 0: gossip and blocks take them to the others.
    let marker = alloy_primitives::keccak256(b"trellis: nothing in clear on the wire");
    let recipient = Address::from_slice(&marker[..20]);
    let account = &network.accounts[20];
    let mut init_code = vec![0x7f]; // PUSH32 marker, then STOP
    init_code.extend_from_slice(marker.as_slice());
    init_code.push(0x00);
    let mut raws = Vec::new();
    for nonce in 0..20u64 {
        let to = if nonce == 0 {
            TxKind::Create
        } else {
            TxKind::Call(recipient)
        };
        let raw = account.sign_transaction(TxEip1559 {
            chain_id: 4545,
            nonce,
            gas_limit: 100_000,
            max_fee_per_gas: 1_000_000_000,
            to,
            value: U256::from(nonce),
            input: if nonce == 0 {
                init_code.clone().into()
            } else {
                Default::default()
            },
            ..TxEip1559::default()
        });
        nodes[0].call("eth_sendRawTransaction", json!([format!("{raw}")]));
        raws.push(raw);
    }
    let last = alloy_primitives::keccak256(raws.last().unwrap());
    nodes[3].wait_for_receipt(&format!("{last}"), Duration::from_secs(60));
    let outcome = load.finish();
    let wire = p2p.finish(&p2p_file);
    let control = rpc.finish(&rpc_file);

    // The capture saw the links at work: node 0 must have sent the marked transactions (in
    // gossip or in blocks) to each of the 3 others, so at least 3 times their own bytes
    // crossed. How much more depends on how fast the blocks came (27–200 KB seen).
    let marked: usize = raws.iter().map(|raw| raw.len()).sum();
    assert!(
        wire.len() > 3 * marked,
        "the capture saw the p2p traffic: {} bytes, the marked transactions alone are {marked}",
        wire.len()
    );
    let hex = |bytes: &[u8]| alloy_primitives::hex::encode(bytes).into_bytes();
    assert!(
        contains(&control, &hex(marker.as_slice())),
        "control: the marker in the RPC capture"
    );
    assert!(
        contains(&control, &hex(&raws[5])),
        "control: a transaction in the RPC capture"
    );
    for (i, raw) in raws.iter().enumerate() {
        // Any 32 bytes of the transaction (its signature among them) would give it away.
        let middle = &raw[raw.len() / 2 - 16..raw.len() / 2 + 16];
        assert!(
            !contains(&wire, middle),
            "transaction {i} in clear on the wire"
        );
        assert!(
            !contains(&wire, &hex(middle)),
            "transaction {i} as hex on the wire"
        );
    }
    assert!(
        !contains(&wire, marker.as_slice()),
        "contract code in clear on the wire"
    );
    assert!(
        !contains(&wire, recipient.as_slice()),
        "an address in clear on the wire"
    );
    eprintln!(
        "{} bytes of p2p traffic captured ({} load transfers and 20 probes): none in clear",
        wire.len(),
        outcome.sent.len()
    );
}

#[test]
fn a_key_the_genesis_does_not_list_gets_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let network = TestNetwork::init(dir.path(), 4646, 4, 1);
    // Validator 0 watches for strangers: any key outside the set raises an alarm.
    let rules = dir.path().join("risk.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"strangers\"\nmeasure = \"unknown_peers\"\nwindow = \"1h\"\nabove = 0\n",
    )
    .unwrap();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], support::free_ports(1)));
    let mut config = std::fs::read_to_string(&network.configs[0]).unwrap();
    config.push_str(&format!(
        "metrics_addr = \"{metrics}\"\nrisk_rules = \"{}\"\n",
        rules.display()
    ));
    std::fs::write(&network.configs[0], config).unwrap();
    let nodes: Vec<NodeProcess> = (0..4).map(|i| network.start(i)).collect();

    // An outsider with a copy of the genesis that lists it as a full node (the list is not part
    // of block 0, so its chain id and genesis hash match): the validators' copies do not.
    let outsider = dir.path().join("outsider");
    std::fs::create_dir(&outsider).unwrap();
    let keys = outsider.join("keys.json");
    std::fs::write(outsider.join("passphrase"), "outsider\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["keys", "new", "--out", keys.to_str().unwrap()])
        .args([
            "--passphrase-file",
            outsider.join("passphrase").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let bundle: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut genesis =
        std::fs::read_to_string(network.configs[0].with_file_name("genesis.toml")).unwrap();
    let p2p = support::free_ports(1);
    genesis.push_str(&format!(
        "\n[[full_nodes]]\npublic_key = \"{}\"\np2p = \"127.0.0.1:{p2p}\"\n",
        bundle["validator"]["public_key"].as_str().unwrap()
    ));
    std::fs::write(outsider.join("genesis.toml"), genesis).unwrap();
    std::fs::write(
        outsider.join("node.toml"),
        format!(
            "genesis = \"genesis.toml\"\nfull_node_key = \"keys.json\"\nkey_passphrase_file = \"passphrase\"\ndata_dir = \"data\"\nrpc_addr = \"127.0.0.1:{}\"\nstate_cache_mib = 16\n",
            support::free_ports(1)
        ),
    )
    .unwrap();
    let intruder = NodeProcess::start(&[
        "node".into(),
        "--config".into(),
        outsider.join("node.toml").display().to_string(),
    ]);
    let start = hex_u64(&nodes[0].call("eth_blockNumber", json!([])));
    nodes[0].wait_for_height(start + 8, Duration::from_secs(60));
    assert_eq!(
        hex_u64(&intruder.call("eth_blockNumber", json!([]))),
        0,
        "the outsider received no block"
    );
    // Validator 0 counted the refused handshakes and traced them to the outsider's key.
    let key = bundle["validator"]["public_key"].as_str().unwrap();
    let key = key.trim_start_matches("0x").to_lowercase();
    // Another test's node on a reused loopback port may knock too: find the outsider's.
    let alarms = nodes[0].call("trellis_alarms", json!([]));
    let party = json!({"kind": "peer", "id": key});
    let alarm = alarms
        .as_array()
        .unwrap()
        .iter()
        .find(|alarm| alarm["party"] == party)
        .unwrap_or_else(|| panic!("no alarm names the outsider {key}: {alarms}"));
    assert_eq!(alarm["rule"], "strangers", "{alarms}");
    let (_, scrape) = support::get(metrics, "/metrics");
    let refused = support::sample_with(
        &scrape,
        "trellis_p2p_handshake_failures_total",
        "reason=\"unknown_peer\"",
    );
    assert!(refused >= 1.0, "{refused}");
}
