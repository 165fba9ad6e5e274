//! `trellis dev --processes`: one `trellis node` child per validator, supervised but never
//! restarted, stopped together by Ctrl-C.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{dev_accounts, free_ports, hex_u64, hex_u128, rpc_request};

/// A running supervisor and what it printed about its children.
struct Supervisor {
    child: Child,
    /// (pid, RPC address) of each validator, in order.
    nodes: Vec<(u32, SocketAddr)>,
}

impl Supervisor {
    fn start(dir: &Path, first_rpc: u16) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(["dev", "--processes", "--validators", "4", "--data-dir"])
            .arg(dir)
            .args(["--rpc-addr", &format!("127.0.0.1:{first_rpc}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Passed on as it comes, and kept for the panic if the supervisor stops early.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let errors = std::thread::spawn(move || {
            let mut all = String::new();
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("{line}");
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut serving = false;
        let mut nodes = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("validator ") {
                // "validator 2: pid 123, JSON-RPC http://127.0.0.1:8547, log …"
                let pid = rest
                    .split("pid ")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap();
                let rpc = rest
                    .split("http://")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap();
                nodes.push((pid.parse().unwrap(), rpc.parse().unwrap()));
            }
            if line.starts_with("JSON-RPC listening on http://") {
                serving = true;
                break;
            }
        }
        if !serving {
            let status = child.wait().unwrap();
            let errors = errors.join().unwrap();
            panic!("the supervisor stopped before serving ({status}); it said:\n{errors}");
        }
        // Keep draining stdout so the supervisor never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, nodes }
    }

    fn height(&self, i: usize) -> u64 {
        hex_u64(&rpc_request(self.nodes[i].1, "eth_blockNumber", json!([]))["result"])
    }

    fn wait_for_height(&self, i: usize, height: u64) {
        let start = Instant::now();
        while self.height(i) < height {
            assert!(start.elapsed() < Duration::from_secs(60), "height {height}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn four_validator_processes_finalize_survive_a_death_and_stop_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let first_rpc = free_ports(4);
    let mut supervisor = Supervisor::start(dir.path(), first_rpc);
    let ports: Vec<u16> = supervisor.nodes.iter().map(|(_, a)| a.port()).collect();
    assert_eq!(ports, (first_rpc..first_rpc + 4).collect::<Vec<_>>());
    for (pid, _) in &supervisor.nodes {
        assert!(alive(*pid));
    }

    // A transfer sent to validator 0 is final on validator 3: one chain across processes.
    let account = &dev_accounts(dir.path())[0];
    let to = Address::repeat_byte(0x77);
    let raw = account.sign_transaction(TxEip1559 {
        chain_id: 1337,
        nonce: 0,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(9),
        ..TxEip1559::default()
    });
    let sent = rpc_request(
        supervisor.nodes[0].1,
        "eth_sendRawTransaction",
        json!([format!("{raw}")]),
    );
    let hash = sent["result"].clone();
    let start = Instant::now();
    while rpc_request(
        supervisor.nodes[3].1,
        "eth_getTransactionReceipt",
        json!([hash]),
    )["result"]
        .is_null()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no receipt");
        std::thread::sleep(Duration::from_millis(50));
    }
    let balance = rpc_request(
        supervisor.nodes[3].1,
        "eth_getBalance",
        json!([to, "latest"]),
    );
    assert_eq!(hex_u128(&balance["result"]), 9);

    // A validator killed stays down; the other three go on.
    let (victim, _) = supervisor.nodes[1];
    signal(victim, "KILL");
    // Gone once its threads leave the kernel (a busy disk holds a thread in fsync for a while)
    // and the supervisor has reaped it.
    let start = Instant::now();
    while alive(victim) {
        assert!(start.elapsed() < Duration::from_secs(30), "never reaped");
        std::thread::sleep(Duration::from_millis(50));
    }
    let height = supervisor.height(0);
    supervisor.wait_for_height(0, height + 3);
    let log = std::fs::read_to_string(dir.path().join("node-1/node.log")).unwrap();
    assert_eq!(
        log.matches("JSON-RPC listening on").count(),
        1,
        "not restarted: {log}"
    );
    assert!(
        supervisor.child.try_wait().unwrap().is_none(),
        "the supervisor outlives a child"
    );

    // Ctrl-C (SIGINT to the supervisor alone) stops every child, and the supervisor exits 0.
    signal(supervisor.child.id(), "INT");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = supervisor.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    for (pid, _) in &supervisor.nodes {
        assert!(!alive(*pid), "validator process {pid} left running");
    }
    let logs: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("node-{i}/node.log")))
        .collect();
    assert!(logs.iter().all(|l| l.exists()));

    // Started again, the chain goes on from where it stopped; the other mode is refused.
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["dev", "--validators", "4", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(error.contains("run with --processes"), "{error}");
    let supervisor = Supervisor::start(dir.path(), free_ports(4));
    let balance = rpc_request(
        supervisor.nodes[2].1,
        "eth_getBalance",
        json!([to, "latest"]),
    );
    assert_eq!(hex_u128(&balance["result"]), 9, "the chain was kept");
    let height = supervisor.height(0);
    supervisor.wait_for_height(1, height + 2);
}

#[test]
fn a_supervisor_killed_outright_takes_its_validators_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::start(dir.path(), free_ports(4));
    let pids: Vec<u32> = supervisor.nodes.iter().map(|(pid, _)| *pid).collect();
    supervisor.child.kill().unwrap();
    supervisor.child.wait().unwrap();
    let start = Instant::now();
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "orphaned validators"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
