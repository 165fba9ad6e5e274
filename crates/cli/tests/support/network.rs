//! A network of separate `trellis node` processes made by `trellis init --validators N`, and
//! a steady transfer load that survives nodes dying under it.

use super::{NodeProcess, free_ports, hex_u64};
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};
use std::{
    collections::VecDeque,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use trellis_crypto::AccountKey;

/// The files `trellis init --validators N` wrote, and where each member serves RPC.
pub struct TestNetwork {
    pub dir: PathBuf,
    pub chain_id: u64,
    /// Validators' configs.
    pub configs: Vec<PathBuf>,
    /// Full nodes' configs.
    pub full_nodes: Vec<PathBuf>,
    pub accounts: Vec<AccountKey>,
}

impl TestNetwork {
    /// Runs `trellis init --validators n --accounts k` into `dir/net` on free loopback ports.
    pub fn init(dir: &Path, chain_id: u64, n: u16, accounts: usize) -> Self {
        Self::with_full_nodes(dir, chain_id, n, 0, accounts)
    }

    /// Like [`init`](Self::init), with `full` full nodes too.
    pub fn with_full_nodes(dir: &Path, chain_id: u64, n: u16, full: u16, accounts: usize) -> Self {
        Self::with_args(dir, chain_id, n, full, accounts, &[])
    }

    /// Like [`with_full_nodes`](Self::with_full_nodes), for a consortium (`--governed`:
    /// accounts 0–2 are governors) whose epochs last `epoch_length` blocks.
    pub fn governed(
        dir: &Path,
        chain_id: u64,
        (n, full): (u16, u16),
        accounts: usize,
        epoch_length: u64,
    ) -> Self {
        let epochs = epoch_length.to_string();
        let args = ["--governed", "--epoch-length", epochs.as_str()];
        Self::with_args(dir, chain_id, n, full, accounts, &args)
    }

    fn with_args(
        dir: &Path,
        chain_id: u64,
        n: u16,
        full: u16,
        accounts: usize,
        extra: &[&str],
    ) -> Self {
        let out = dir.join("net");
        let p2p = free_ports(n + full);
        let rpc = free_ports(n + full);
        let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(["init", "--out", out.to_str().unwrap(), "--chain-id"])
            .arg(chain_id.to_string())
            .args([
                "--validators",
                &n.to_string(),
                "--full-nodes",
                &full.to_string(),
            ])
            .arg("--accounts")
            .arg(accounts.to_string())
            .args([
                "--p2p-port",
                &p2p.to_string(),
                "--rpc-port",
                &rpc.to_string(),
            ])
            .args(extra)
            .output()
            .expect("run trellis init");
        assert!(output.status.success(), "{output:?}");
        let configs: Vec<PathBuf> = (0..n)
            .map(|i| out.join(format!("member-{i}")).join("node.toml"))
            .collect();
        let full_nodes: Vec<PathBuf> = (0..full)
            .map(|j| out.join(format!("full-node-{j}")).join("node.toml"))
            .collect();
        // Several nodes share two cores here: a small page cache each.
        for config in configs.iter().chain(&full_nodes) {
            let mut text = std::fs::read_to_string(config).unwrap();
            text.push_str("state_cache_mib = 16\n");
            std::fs::write(config, text).unwrap();
        }
        let listed: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(out.join("accounts.json")).unwrap())
                .unwrap();
        let accounts = listed
            .iter()
            .map(|a| AccountKey::from_hex(a["private_key"].as_str().unwrap()).unwrap())
            .collect();
        Self {
            dir: out,
            chain_id,
            configs,
            full_nodes,
            accounts,
        }
    }

    /// Starts member `i`'s node and waits until it serves RPC.
    pub fn start(&self, i: usize) -> NodeProcess {
        NodeProcess::start(&[
            "node".into(),
            "--config".into(),
            self.configs[i].display().to_string(),
        ])
    }
}

impl TestNetwork {
    /// Starts full node `j` and waits until it serves RPC.
    pub fn start_full_node(&self, j: usize) -> NodeProcess {
        NodeProcess::start(&[
            "node".into(),
            "--config".into(),
            self.full_nodes[j].display().to_string(),
        ])
    }
}

/// Every node's RPC address, `None` while the node is down; shared with the load's thread.
pub type Targets = Arc<Mutex<Vec<Option<SocketAddr>>>>;

/// One HTTP JSON-RPC exchange that may fail (the node may be down or dying).
pub fn try_post(addr: SocketAddr, body: &Value) -> Option<Value> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let body = body.to_string();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then_some(())?;
    serde_json::from_str(body).ok()
}

/// One sender's transactions not yet seen in a block.
struct Sender {
    key: AccountKey,
    next_nonce: u64,
    /// (nonce, raw transaction, hash), oldest first.
    unconfirmed: VecDeque<(u64, String, String)>,
    /// When the oldest unconfirmed transaction was last submitted.
    since: Instant,
}

/// What a [`Load`] did.
pub struct LoadOutcome {
    /// Hashes of every transaction sent, all of them confirmed by their sender's nonce.
    pub sent: Vec<String>,
    pub recipient: Address,
    /// How often unconfirmed transactions were submitted again (after a node died with them).
    pub resubmissions: usize,
}

/// Transfers of 1 wei from every account to one recipient, `per_tick` every 100 ms, spread over
/// the live nodes. A node killed with transactions in its pool loses them; their sender's later
/// transactions then wait on the gap, so a sender whose oldest transaction stays unconfirmed
/// for 3 s submits its unconfirmed ones again (to another node).
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<LoadOutcome>,
}

impl Load {
    pub fn start(targets: Targets, keys: Vec<AccountKey>, chain_id: u64, per_tick: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut senders: Vec<Sender> = keys
                .into_iter()
                .map(|key| Sender {
                    key,
                    next_nonce: 0,
                    unconfirmed: VecDeque::new(),
                    since: Instant::now(),
                })
                .collect();
            let recipient = Address::repeat_byte(0x5a);
            let mut sent = Vec::new();
            let mut resubmissions = 0;
            let mut turn = 0usize;
            let mut last_check = Instant::now();
            let mut stopping_since = None;
            loop {
                if flag.load(Ordering::Relaxed) && stopping_since.is_none() {
                    stopping_since = Some(Instant::now());
                }
                let live: Vec<SocketAddr> =
                    targets.lock().unwrap().iter().flatten().copied().collect();
                if stopping_since.is_none() && !live.is_empty() {
                    let mut batch = Vec::new();
                    for _ in 0..per_tick {
                        let count = senders.len();
                        let sender = &mut senders[turn % count];
                        turn += 1;
                        let raw = sender.key.sign_transaction(TxEip1559 {
                            chain_id,
                            nonce: sender.next_nonce,
                            gas_limit: 21_000,
                            max_fee_per_gas: 1_000_000_000,
                            to: TxKind::Call(recipient),
                            value: U256::from(1),
                            ..TxEip1559::default()
                        });
                        let hash = format!("{}", alloy_primitives::keccak256(&raw));
                        let raw = format!("{raw}");
                        if sender.unconfirmed.is_empty() {
                            sender.since = Instant::now();
                        }
                        sender.unconfirmed.push_back((
                            sender.next_nonce,
                            raw.clone(),
                            hash.clone(),
                        ));
                        sender.next_nonce += 1;
                        sent.push(hash);
                        batch.push(raw);
                    }
                    submit(live[turn % live.len()], &batch);
                }
                if last_check.elapsed() >= Duration::from_millis(500) && !live.is_empty() {
                    last_check = Instant::now();
                    resubmissions += confirm(&mut senders, &live, turn);
                    let settled = senders.iter().all(|s| s.unconfirmed.is_empty());
                    match stopping_since {
                        Some(_) if settled => break,
                        Some(since) => assert!(
                            since.elapsed() < Duration::from_secs(120),
                            "transactions still unconfirmed 120 s after the load stopped"
                        ),
                        None => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            LoadOutcome {
                sent,
                recipient,
                resubmissions,
            }
        });
        Self { stop, thread }
    }

    /// Stops sending and waits until every transaction sent is in a block.
    pub fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the load thread")
    }
}

fn submit(node: SocketAddr, raws: &[String]) {
    let calls: Vec<Value> = raws
        .iter()
        .enumerate()
        .map(|(id, raw)| {
            json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": [raw]})
        })
        .collect();
    // Refusals (a full pool, a transaction already known) and a dying node are all answered by
    // submitting again later if the transaction is not confirmed.
    let _ = try_post(node, &Value::Array(calls));
}

/// Drops each sender's transactions that are in blocks; submits again those of a sender stuck
/// for 3 s. Returns how many senders were stuck.
fn confirm(senders: &mut [Sender], live: &[SocketAddr], turn: usize) -> usize {
    let calls: Vec<Value> = senders
        .iter()
        .enumerate()
        .map(|(id, s)| {
            json!({"jsonrpc": "2.0", "id": id, "method": "eth_getTransactionCount",
                   "params": [s.key.address(), "latest"]})
        })
        .collect();
    let node = live[turn % live.len()];
    let Some(Value::Array(answers)) = try_post(node, &Value::Array(calls)) else {
        return 0;
    };
    let mut stuck = 0;
    for answer in answers {
        let (Some(id), Some(count)) = (answer["id"].as_u64(), answer.get("result")) else {
            continue;
        };
        let sender = &mut senders[id as usize];
        let confirmed = hex_u64(count);
        let before = sender.unconfirmed.len();
        while sender
            .unconfirmed
            .front()
            .is_some_and(|(nonce, _, _)| *nonce < confirmed)
        {
            sender.unconfirmed.pop_front();
        }
        if sender.unconfirmed.len() != before {
            sender.since = Instant::now();
        }
        if !sender.unconfirmed.is_empty() && sender.since.elapsed() > Duration::from_secs(3) {
            stuck += 1;
            sender.since = Instant::now();
            let raws: Vec<String> = sender
                .unconfirmed
                .iter()
                .map(|(_, r, _)| r.clone())
                .collect();
            submit(live[(turn + 1 + id as usize) % live.len()], &raws);
        }
    }
    stuck
}

/// Asserts that every node holds the same block hash and state root at every height up to
/// `height`.
pub fn assert_same_chain(nodes: &[&NodeProcess], height: u64) {
    for h in 1..=height {
        let block = |node: &NodeProcess| {
            node.call("eth_getBlockByNumber", json!([format!("{h:#x}"), false]))
        };
        let reference = block(nodes[0]);
        for (i, node) in nodes.iter().enumerate().skip(1) {
            let other = block(node);
            assert_eq!(other["hash"], reference["hash"], "node {i}, block {h}");
            assert_eq!(
                other["stateRoot"], reference["stateRoot"],
                "node {i}, block {h}"
            );
        }
    }
}
