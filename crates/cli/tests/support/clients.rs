//! Running the real clients' suites (clients/ethers, clients/web3py) against a node, each
//! bounded in time and echoing its output.

use super::NodeProcess;
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Where the client suites live.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients")
}

/// How long a client suite may run: a suite that hangs (a handle left open) fails instead.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs a client suite to the end, echoing its output; panics with it if the suite fails or
/// outlives [`SUITE_TIMEOUT`].
pub fn run(what: &str, mut command: Command) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the {what} suite: {e} (run ./scripts/setup)"));
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("{stdout}\n{stderr}");
    match status {
        Some(status) => assert!(
            status.success(),
            "the {what} suite failed ({status}):\n{stdout}\n{stderr}"
        ),
        None => panic!("the {what} suite ran past {SUITE_TIMEOUT:?}:\n{stdout}\n{stderr}"),
    }
}

/// `npm ARGS` in clients/ethers, pointed at `node`, signing with `key`.
pub fn npm_ethers(node: &NodeProcess, args: &[&str], key: &str) -> Command {
    let dir = clients_dir().join("ethers");
    assert!(
        dir.join("node_modules/ethers").is_dir(),
        "ethers is not installed in {}: run ./scripts/setup",
        dir.display()
    );
    let mut command = Command::new("npm");
    command
        .args(args)
        .current_dir(dir)
        .env("TRELLIS_HTTP", format!("http://{}", node.rpc))
        .env("TRELLIS_WS", format!("ws://{}", node.rpc))
        .env("TRELLIS_KEY", key);
    command
}

/// `python SCRIPT` of clients/web3py, in its environment, pointed at `node`, signing with
/// `key`.
pub fn web3py(node: &NodeProcess, script: &str, key: &str) -> Command {
    let dir = clients_dir().join("web3py");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "web3.py's environment {} is missing: run ./scripts/setup",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg(script)
        .current_dir(dir)
        .env("TRELLIS_HTTP", format!("http://{}", node.rpc))
        .env("TRELLIS_KEY", key);
    command
}
