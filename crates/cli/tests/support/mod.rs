//! Helpers for tests that run the `trellis` binary: a dev chain in a child process and a
//! minimal JSON-RPC client over plain HTTP on loopback.

#![allow(dead_code)]

pub mod clients;
pub mod equivocator;
pub mod hostile;
pub mod network;
pub mod operator;
pub mod relay;
pub mod seats;
pub mod softhsm;

use serde_json::{Value, json};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// A `trellis dev` or `trellis node` process; killed when dropped.
pub struct NodeProcess {
    child: Child,
    pub rpc: SocketAddr,
    /// Where it serves `GET /metrics`, if it said so.
    pub metrics: Option<SocketAddr>,
    /// Every line the process wrote to stderr (its log) so far.
    log: Arc<Mutex<Vec<String>>>,
}

/// The dev chain's process.
pub type DevNode = NodeProcess;

impl NodeProcess {
    /// Starts `trellis dev` on `dir` with the given extra arguments and waits until its RPC
    /// server listens.
    pub fn dev(dir: &Path, args: &[&str]) -> Self {
        let mut all: Vec<String> = vec!["dev".into(), "--data-dir".into()];
        all.push(dir.display().to_string());
        all.extend(["--rpc-addr".into(), "127.0.0.1:0".into()]);
        all.extend(["--metrics-addr".into(), "127.0.0.1:0".into()]);
        all.extend(args.iter().map(|a| a.to_string()));
        Self::start(&all)
    }

    /// Starts `trellis ARGS` and waits until its RPC server listens.
    pub fn start(args: &[String]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start trellis");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                lines.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        let metrics = Arc::new(Mutex::new(None));
        let metrics_seen = metrics.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Printed before the JSON-RPC line.
                if let Some(url) = line.strip_prefix("Metrics at http://") {
                    let addr = url
                        .trim_end_matches("/metrics")
                        .parse::<SocketAddr>()
                        .unwrap();
                    *metrics_seen.lock().unwrap() = Some(addr);
                }
                if let Some(addr) = line.strip_prefix("JSON-RPC listening on http://") {
                    let _ = sender.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let rpc = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(rpc) => rpc,
            Err(error) => {
                // Not left running behind the failed test.
                let _ = child.kill();
                let status = child.wait();
                let lines = log.lock().unwrap().clone();
                let last = &lines[lines.len().saturating_sub(5)..];
                match error {
                    mpsc::RecvTimeoutError::Timeout => {
                        panic!(
                            "trellis did not start its RPC server within 60 s; log ends: {last:#?}"
                        )
                    }
                    mpsc::RecvTimeoutError::Disconnected => {
                        panic!(
                            "trellis ended ({status:?}) before its RPC server started; log ends: {last:#?}"
                        )
                    }
                }
            }
        };
        let metrics = *metrics.lock().unwrap();
        Self {
            child,
            rpc,
            metrics,
            log,
        }
    }

    /// Whether a line of the process's log contains `text`, waiting up to 5 s for it (the log
    /// is read on another thread).
    pub fn logged(&self, text: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(text))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether one line of the process's log contains every one of `parts`, waiting up to 5 s.
    /// The lines logged so far, without their terminal colours (so fields read `key=value`).
    pub fn plain_log(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(|l| plain(l)).collect()
    }

    pub fn logged_all(&self, parts: &[&str]) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| parts.iter().all(|part| line.contains(part)));
            if found {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits up to `timeout` for the process to end on its own.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process abruptly (SIGKILL): nothing is flushed on the way out.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends one JSON-RPC request and returns the whole response object.
    pub fn request(&self, method: &str, params: Value) -> Value {
        rpc_request(self.rpc, method, params)
    }

    /// The `result` of a call that must succeed.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// Signs a transaction of `key` for this node's chain (no fee: dev chains charge none),
    /// sends it and waits for its successful receipt.
    pub fn execute(
        &self,
        key: &trellis_crypto::AccountKey,
        nonce: u64,
        to: alloy_primitives::TxKind,
        input: alloy_primitives::Bytes,
    ) -> Value {
        let raw = key.sign_transaction(alloy_consensus::TxEip1559 {
            chain_id: hex_u64(&self.call("eth_chainId", json!([]))),
            nonce,
            gas_limit: 3_000_000,
            to,
            input,
            ..Default::default()
        });
        let hash = self.call("eth_sendRawTransaction", json!([format!("{raw}")]));
        let receipt = self.wait_for_receipt(hash.as_str().unwrap(), Duration::from_secs(30));
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        receipt
    }

    /// Waits up to `timeout` for the receipt of `hash`.
    pub fn wait_for_receipt(&self, hash: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(
                start.elapsed() < timeout,
                "no receipt for {hash} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 POST of `body` with `Connection: close`: the status line and the body.
pub fn post(addr: SocketAddr, body: &str) -> (String, String) {
    post_as(addr, None, body)
}

/// [`post`] presenting API token `token` (`Authorization: Bearer`), if any.
pub fn post_as(addr: SocketAddr, token: Option<&str>, body: &str) -> (String, String) {
    post_to(addr, "/", token, body)
}

/// [`post_as`] to `path` (a query may carry the token instead).
pub fn post_to(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the RPC server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server may answer (413) and close before reading a body it refuses.
    let _ = stream.write_all(body.as_bytes());
    response(stream)
}

/// The status line and body of the response `stream` carries.
fn response(mut stream: TcpStream) -> (String, String) {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// `GET path` over HTTP/1.1: the status line and the body.
pub fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    response(stream)
}

/// One JSON-RPC request over HTTP; the whole response object.
pub fn rpc_request(addr: SocketAddr, method: &str, params: Value) -> Value {
    rpc_request_as(addr, None, method, params)
}

/// [`rpc_request`] presenting API token `token`, if any.
pub fn rpc_request_as(addr: SocketAddr, token: Option<&str>, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (status, body) = post_as(addr, token, &body);
    assert!(status.starts_with("HTTP/1.1 200"), "HTTP error: {status}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON {body:?}: {e}"))
}

/// The funded accounts `trellis dev` wrote to `dir/dev-accounts.json`, each checked to match
/// its address.
pub fn dev_accounts(dir: &Path) -> Vec<trellis_crypto::AccountKey> {
    let text = std::fs::read_to_string(dir.join("dev-accounts.json")).unwrap();
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    entries
        .iter()
        .map(|e| {
            let key =
                trellis_crypto::AccountKey::from_hex(e["private_key"].as_str().unwrap()).unwrap();
            assert_eq!(
                key.address().to_checksum(None),
                e["address"].as_str().unwrap()
            );
            key
        })
        .collect()
}

/// The value of the first sample of metric `name` (its name ends so) whose labels include
/// `labels`, in a `/metrics` scrape.
pub fn sample_with(scrape: &str, name: &str, labels: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.rsplit_once(' ')?;
            let bare = metric.split('{').next()?;
            (bare.ends_with(name) && metric.contains(labels)).then(|| value.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} with {labels} in the scrape"))
}

pub fn hex_u64(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

pub fn hex_u128(value: &Value) -> u128 {
    let text = value.as_str().expect("a hex quantity");
    u128::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

/// Watches a node's finalized blocks from a thread, recording when each block and each
/// transaction first became visible over RPC.
pub struct BlockWatcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Seen>,
}

/// What a [`BlockWatcher`] saw.
#[derive(Default)]
pub struct Seen {
    /// Transaction hash → when its block was first seen.
    pub transactions: std::collections::HashMap<String, Instant>,
    /// Height → when the block was first seen.
    pub blocks: Vec<(u64, Instant)>,
}

impl BlockWatcher {
    pub fn start(rpc: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let mut next = hex_u64(&rpc_request(rpc, "eth_blockNumber", json!([]))["result"]) + 1;
            while !flag.load(Ordering::Relaxed) {
                let latest = hex_u64(&rpc_request(rpc, "eth_blockNumber", json!([]))["result"]);
                let now = Instant::now();
                while next <= latest {
                    let block = rpc_request(
                        rpc,
                        "eth_getBlockByNumber",
                        json!([format!("{next:#x}"), false]),
                    );
                    for hash in block["result"]["transactions"].as_array().unwrap() {
                        seen.transactions
                            .insert(hash.as_str().unwrap().to_string(), now);
                    }
                    seen.blocks.push((next, now));
                    next += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        });
        Self { stop, thread }
    }

    pub fn finish(self) -> Seen {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// p50 and p99 of `durations`.
pub fn percentiles(mut durations: Vec<Duration>) -> (Duration, Duration) {
    durations.sort();
    let at = |p: usize| durations[(durations.len() * p / 100).min(durations.len() - 1)];
    (at(50), at(99))
}

impl NodeProcess {
    /// Waits until the node has finalized `height`.
    pub fn wait_for_height(&self, height: u64, timeout: Duration) {
        let start = Instant::now();
        while hex_u64(&self.call("eth_blockNumber", json!([]))) < height {
            assert!(
                start.elapsed() < timeout,
                "height {height} not reached in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The first of `count` consecutive ports nothing listens on now, for nodes' configurations,
/// below the kernel's ephemeral range (32768–60999): outgoing connections (these tests' own
/// clients among them) take their local ports from that range, so a port picked there by
/// binding port 0 could be taken by one of them before the node binds it (seen once in CI as
/// "Address already in use"). Each test process walks its own stretch of 20000–31999.
pub fn free_ports(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test binaries started together have neighbouring pids: spread them apart.
    let offset = std::process::id().wrapping_mul(997) % 12_000;
    loop {
        let step = NEXT.fetch_add(u32::from(count), Ordering::Relaxed);
        let base = 20_000 + ((offset + step) % 12_000) as u16;
        if base + count > 32_000 {
            continue;
        }
        if (base..base + count).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        {
            return base;
        }
    }
}

/// Copies directory `from` (recursively) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.metadata().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `line` without ANSI escape sequences (ESC, then up to and including a letter).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}
