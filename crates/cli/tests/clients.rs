//! Real Ethereum clients against a real `trellis dev --validators 4`: the ethers.js v6 suite
//! (clients/ethers) and the web3.py suite (clients/web3py), each with a funded account of its
//! own. Their packages are installed by scripts/setup (which the test command runs first).

mod support;

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use support::{DevNode, dev_accounts};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients")
}

/// How long a client suite may run: a suite that hangs (a handle left open) fails instead.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs a client suite to the end, echoing its output; panics with it if the suite fails or
/// outlives [`SUITE_TIMEOUT`].
fn run(what: &str, mut command: Command) {
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

fn ethers(node: &DevNode, key: &str) -> Command {
    npm_ethers(node, &["test", "--silent"], key)
}

/// `npm ARGS` in clients/ethers, pointed at `node`, signing with `key`.
fn npm_ethers(node: &DevNode, args: &[&str], key: &str) -> Command {
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

fn web3py(node: &DevNode, key: &str) -> Command {
    let dir = clients_dir().join("web3py");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "web3.py's environment {} is missing: run ./scripts/setup",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg("test_trellis.py")
        .current_dir(dir)
        .env("TRELLIS_HTTP", format!("http://{}", node.rpc))
        .env("TRELLIS_KEY", key);
    command
}

#[test]
fn ethers_and_web3py_work_unchanged_against_four_validators() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--validators", "4", "--accounts", "2"]);
    let keys: Vec<String> = dev_accounts(dir.path())
        .iter()
        .map(|key| key.secret_hex())
        .collect();
    run("ethers.js", ethers(&node, &keys[0]));
    run("web3.py", web3py(&node, &keys[1]));
    assert!(
        !node.logged("panicked"),
        "the node panicked while serving the clients"
    );
}

/// ethers.js against a consortium's chain: governance through the system contracts' ABI, and
/// the rules' refusals as ethers reports them.
#[test]
fn ethers_governs_a_consortium_and_meets_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &["--accounts", "5", "--governed"]);
    let keys: Vec<String> = dev_accounts(dir.path())
        .iter()
        .map(|key| key.secret_hex())
        .collect();
    let mut command = npm_ethers(&node, &["run", "test:governance", "--silent"], &keys[0]);
    command.env("TRELLIS_KEYS", serde_json::to_string(&keys).unwrap());
    run("ethers.js governance", command);
    assert!(!node.logged("panicked"), "the node panicked");
}
