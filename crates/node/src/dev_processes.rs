//! `trellis dev --processes`: a dev chain whose validators each run as a `trellis node` child
//! process, as a consortium's members do on their own hosts.
//!
//! ```text
//! DIR/node-<i>/node.toml   validator i's configuration (rewritten at each start: the RPC port)
//! DIR/node-<i>/node.log    its output (appended)
//! DIR/node-<i>/data/       its blocks, state and consensus journal
//! ```
//!
//! The supervisor restarts nothing by itself: a validator that dies is reported and stays down,
//! which is what fault tests and operators exploring failures want. SIGINT or SIGTERM to the
//! supervisor stops every child (SIGTERM, then SIGKILL after 10 s); the children also end if
//! the supervisor is killed (`supervised.rs`).

use crate::{
    NodeError,
    dev::{DEV_KEK_FILE, DEV_STATE_CACHE_MIB, DevChain, node_folder},
    node_config::{NodeFileText, Role},
    supervised::SUPERVISOR_PID,
};
use rustix::process::{Pid, Signal, kill_process};
use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};
use tokio::signal::unix::{SignalKind, signal};

/// How long a child may take to open its chain and serve RPC.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long children get to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The line `trellis node` prints once its RPC server listens.
const READY_PREFIX: &str = "JSON-RPC listening on http://";

/// One running validator process.
#[derive(Clone, Debug)]
pub struct ChildNode {
    pub index: usize,
    pub pid: u32,
    pub rpc: SocketAddr,
    pub log: PathBuf,
}

struct Running {
    info: ChildNode,
    child: Child,
    exited: Option<ExitStatus>,
}

/// Writes validator `i`'s node.toml, serving RPC on `rpc`.
fn write_config(
    dir: &Path,
    i: usize,
    rpc: SocketAddr,
    encrypted: bool,
    risk: (Option<&Path>, Option<alloy_primitives::Address>),
) -> Result<PathBuf, NodeError> {
    let (risk_rules, operator) = risk;
    let folder = node_folder(dir, i);
    let io = |e: std::io::Error| NodeError::DataDir {
        path: folder.display().to_string(),
        problem: e.into(),
    };
    std::fs::create_dir_all(&folder).map_err(io)?;
    let kek_file = format!("../{DEV_KEK_FILE}");
    let text = NodeFileText {
        passphrase_file: None,
        genesis: "../genesis.toml",
        role: Role::Validator,
        key: &format!("../validator-{i}.json"),
        data_dir: "data",
        rpc_addr: rpc,
        state_cache_mib: Some(DEV_STATE_CACHE_MIB),
        kek_file: encrypted.then_some(&kek_file),
        risk_rules: risk_rules.as_ref().and_then(|p| p.to_str()),
        risk_operator: operator.map(|account| ("../dev-accounts.json", account)),
    }
    .render();
    let path = folder.join("node.toml");
    std::fs::write(&path, text).map_err(io)?;
    Ok(path)
}

/// Validator `i`'s RPC address: the ports after `first`'s (or any free port if it is 0).
fn rpc_addr(first: SocketAddr, i: usize) -> Result<SocketAddr, NodeError> {
    if first.port() == 0 {
        return Ok(first);
    }
    let port = u16::try_from(usize::from(first.port()) + i).map_err(|_| NodeError::RpcPort {
        addr: first,
        source: std::io::Error::other("the ports after it run past 65535"),
    })?;
    Ok(SocketAddr::new(first.ip(), port))
}

/// Starts validator `i`'s process (its node.toml written) with its output appended to its log.
fn spawn(
    exe: &Path,
    dir: &Path,
    i: usize,
) -> Result<(Child, PathBuf, mpsc::Receiver<SocketAddr>), NodeError> {
    let config = node_folder(dir, i).join("node.toml");
    let log = node_folder(dir, i).join("node.log");
    let log_error = |e: std::io::Error| NodeError::DataDir {
        path: log.display().to_string(),
        problem: e.into(),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(log_error)?;
    let mut out = file.try_clone().map_err(log_error)?;
    let mut child = Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(&config)
        .env(SUPERVISOR_PID, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(file)
        .spawn()
        .map_err(|source| NodeError::Spawn {
            exe: exe.display().to_string(),
            source,
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready, readiness) = mpsc::channel();
    // The child's few stdout lines go to its log; the RPC address is also handed over.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix(READY_PREFIX).and_then(|a| a.parse().ok()) {
                let _ = ready.send(addr);
            }
            let _ = writeln!(out, "{line}");
        }
    });
    Ok((child, log, readiness))
}

/// What a log says last, for an error message: the error a child exited with (without the
/// backtrace that follows it when RUST_BACKTRACE is set), or else its last lines.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = match lines.iter().rposition(|l| l.starts_with("Error: ")) {
        Some(error) => error,
        None => lines.len().saturating_sub(5),
    };
    lines[from..]
        .iter()
        .take_while(|l| !l.starts_with("Stack backtrace:"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

fn signal_child(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // The child may have exited already; there is nothing else to do then.
        let _ = kill_process(pid, signal);
    }
}

/// Runs the dev chain's validators as child processes of `exe` until SIGINT or SIGTERM, or
/// until every child has exited. `ready` gets the children once each serves RPC.
pub fn run(
    chain: &DevChain,
    dir: &Path,
    exe: &Path,
    first_rpc: SocketAddr,
    ready: impl FnOnce(&[ChildNode]),
) -> Result<(), NodeError> {
    let addresses = (0..chain.validator_keys.len())
        .map(|i| rpc_addr(first_rpc, i))
        .collect::<Result<Vec<_>, _>>()?;
    for addr in addresses.iter().filter(|a| a.port() != 0) {
        crate::check_rpc_port(*addr)?;
    }
    // Made here, once: each child only reads it.
    if let Some(kek) = &chain.kek {
        kek.make_ready()?;
    }
    for (i, addr) in addresses.iter().enumerate() {
        write_config(
            dir,
            i,
            *addr,
            chain.kek.is_some(),
            (chain.risk_rules.as_deref(), chain.risk_operator()),
        )?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NodeError::Supervision)?;
    // On this (the main) thread: a child's parent-death signal follows the thread that
    // spawned it.
    runtime.block_on(supervise(dir, exe, &addresses, ready))
}

async fn supervise(
    dir: &Path,
    exe: &Path,
    addresses: &[SocketAddr],
    ready: impl FnOnce(&[ChildNode]),
) -> Result<(), NodeError> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(NodeError::Supervision)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(NodeError::Supervision)?;
    let mut running: Vec<Running> = Vec::new();
    let started = start_all(
        dir,
        exe,
        addresses,
        &mut running,
        &mut interrupt,
        &mut terminate,
    )
    .await;
    match started {
        Ok(Some(())) => {}
        Ok(None) => {
            stop_all(&mut running).await;
            return Ok(());
        }
        Err(error) => {
            stop_all(&mut running).await;
            return Err(error);
        }
    }
    ready(&running.iter().map(|r| r.info.clone()).collect::<Vec<_>>());
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                report_exits(&mut running);
                if running.iter().all(|r| r.exited.is_some()) {
                    return Err(NodeError::AllChildrenExited);
                }
            }
        }
    }
    stop_all(&mut running).await;
    Ok(())
}

/// Starts every child and waits until each serves RPC; `None` if interrupted meanwhile.
async fn start_all(
    dir: &Path,
    exe: &Path,
    addresses: &[SocketAddr],
    running: &mut Vec<Running>,
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> Result<Option<()>, NodeError> {
    for (index, addr) in addresses.iter().enumerate() {
        let (child, log, readiness) = spawn(exe, dir, index)?;
        let pid = child.id();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut entry = Running {
            info: ChildNode {
                index,
                pid,
                rpc: *addr,
                log: log.clone(),
            },
            child,
            exited: None,
        };
        let rpc = loop {
            if let Ok(rpc) = readiness.try_recv() {
                break rpc;
            }
            if let Ok(Some(status)) = entry.child.try_wait() {
                return Err(NodeError::ChildFailed {
                    index,
                    status,
                    log: log.display().to_string(),
                    tail: tail(&log),
                });
            }
            if Instant::now() > deadline {
                running.push(entry);
                return Err(NodeError::ChildNotReady {
                    index,
                    log: log.display().to_string(),
                });
            }
            tokio::select! {
                _ = interrupt.recv() => { running.push(entry); return Ok(None) }
                _ = terminate.recv() => { running.push(entry); return Ok(None) }
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        };
        entry.info.rpc = rpc;
        running.push(entry);
    }
    Ok(Some(()))
}

/// Reports each child that exited since the last look; none is restarted.
fn report_exits(running: &mut [Running]) {
    for entry in running.iter_mut().filter(|r| r.exited.is_none()) {
        if let Ok(Some(status)) = entry.child.try_wait() {
            entry.exited = Some(status);
            tracing::warn!(
                validator = entry.info.index,
                pid = entry.info.pid,
                %status,
                log = %entry.info.log.display(),
                "a validator process exited; it is not restarted"
            );
        }
    }
}

/// SIGTERM to every child still running, then SIGKILL to any left after the timeout.
async fn stop_all(running: &mut [Running]) {
    for entry in running.iter().filter(|r| r.exited.is_none()) {
        signal_child(entry.info.pid, Signal::TERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if running
            .iter_mut()
            .all(|r| r.exited.is_some() || matches!(r.child.try_wait(), Ok(Some(_))))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for entry in running.iter_mut() {
        if let Ok(None) = entry.child.try_wait() {
            let _ = entry.child.kill();
            let _ = entry.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_childs_tail_is_its_error_without_the_backtrace() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        let error = "Error: running the node (data directory d)\n\nCaused by:\n    0: cannot \
                     listen for p2p on 127.0.0.1:41457: Address already in use (os error 98)";
        let text = format!("starting\n{error}\n\nStack backtrace:\n   0: anyhow\n   1: main\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(tail(&log), error);

        let lines: String = (0..8).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, lines).unwrap();
        assert_eq!(tail(&log), "line 3\nline 4\nline 5\nline 6\nline 7");
    }
}
