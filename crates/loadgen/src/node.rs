//! The node under load: `trellis dev` started as a process of its own, so that its CPU and
//! memory are measured apart from the generator's, on a fresh data directory. With
//! `--processes` each validator is a process of its own, as on a consortium's hosts; their
//! CPU and memory are added up.

use crate::client::{Client, ClientError};
use crate::process::{Process, ProcessGroup};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use trellis_crypto::AccountKey;

/// How long the node may take to open and answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Why the node could not be started or read.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot prepare {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the node exited during start-up ({status}); its log ends:\n{log}")]
    Exited { status: String, log: String },
    #[error("the node did not answer JSON-RPC within {START_TIMEOUT:?}; its log is {log}")]
    NoAnswer { log: PathBuf },
    #[error("softhsm2-util could not create the benchmark's token: {0}")]
    SoftHsm(String),
    #[error("cannot read the dev accounts in {path}: {detail}")]
    Accounts { path: PathBuf, detail: String },
}

/// One validator process of a `trellis dev --processes` chain.
#[derive(Clone, Copy, Debug)]
pub struct ValidatorProcess {
    pub pid: u32,
    pub rpc: SocketAddr,
}

/// A running `trellis dev`. Killed (and its directory removed unless kept) when dropped.
pub struct DevNode {
    child: Child,
    pub rpc: SocketAddr,
    pub dir: PathBuf,
    keep: bool,
    /// With `--processes`: each validator's process, in order.
    pub validators: Vec<ValidatorProcess>,
}

/// How the dev chain is made: a consortium's or not, its epochs, where its validator keys are.
#[derive(Clone, Debug)]
pub struct ChainFlags {
    pub governed: bool,
    pub epoch_length: Option<u64>,
    /// Validator keys generated on a SoftHSM2 token of the run's own (signing in the HSM).
    pub softhsm: bool,
    /// Store the chain's data in clear (`trellis dev --plaintext`) instead of encrypted.
    pub plaintext: bool,
    /// The risk rules the node watches (`trellis dev --risk-rules`).
    pub risk_rules: Option<PathBuf>,
    /// The node asks callers for API tokens (`trellis dev --api-tokens`), with a rate no
    /// caller of the run reaches: what access control costs, not its limits.
    pub api_tokens: bool,
}

/// Calls a second each caller may make when the node asks for tokens.
const UNREACHED_RATE: &str = "100000000";

/// The run's own SoftHSM2 (tokens under `dir/softhsm`) with one token: `--validator-token`'s
/// argument and the environment the dev process needs to find it.
fn softhsm_token(dir: &Path) -> Result<(String, PathBuf), NodeError> {
    let home = dir.join("softhsm");
    let tokens = home.join("tokens");
    let dir_error = |source| NodeError::Dir {
        path: home.clone(),
        source,
    };
    std::fs::create_dir_all(&tokens).map_err(dir_error)?;
    let conf = home.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(dir_error)?;
    let pin = home.join("pin");
    std::fs::write(&pin, "1234\n").map_err(dir_error)?;
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "12345678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .map_err(|source| NodeError::Spawn {
            exe: "softhsm2-util".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(NodeError::SoftHsm(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let uri = format!(
        "pkcs11:token=bench;object=validator?pin-source=file:{}",
        pin.display()
    );
    Ok((uri, conf))
}

impl DevNode {
    /// Starts `exe dev` with `validators` validators and `accounts` funded accounts in `dir`
    /// (which must not exist yet), and waits until it answers.
    pub async fn start(
        exe: &Path,
        validators: usize,
        accounts: usize,
        dir: &Path,
        keep: bool,
        processes: bool,
        flags: ChainFlags,
    ) -> Result<Self, NodeError> {
        let dir_error = |source| NodeError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir(dir).map_err(dir_error)?;
        let log = std::fs::File::create(dir.join("node.log")).map_err(dir_error)?;
        let err = log.try_clone().map_err(dir_error)?;
        let mut command = Command::new(exe);
        command.arg("dev");
        if flags.softhsm {
            let (uri, conf) = softhsm_token(dir)?;
            command
                .args(["--validator-token", &uri])
                .env("SOFTHSM2_CONF", conf);
        }
        let child = command
            .args(["--validators", &validators.to_string()])
            .args(["--accounts", &accounts.to_string()])
            .arg("--data-dir")
            .arg(dir.join("chain"))
            // Any free port, learnt from the node's output: one picked here and handed over could
            // be taken meanwhile by an outgoing connection.
            .args(["--rpc-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(processes.then_some("--processes"))
            .args(flags.governed.then_some("--governed"))
            .args(flags.plaintext.then_some("--plaintext"))
            .args(
                flags
                    .api_tokens
                    .then_some(["--api-tokens", "--api-rate", UNREACHED_RATE])
                    .into_iter()
                    .flatten(),
            )
            .args(
                flags
                    .risk_rules
                    .iter()
                    .flat_map(|rules| [std::ffi::OsStr::new("--risk-rules"), rules.as_os_str()]),
            )
            .args(
                flags
                    .epoch_length
                    .map(|length| ["--epoch-length".to_owned(), length.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|source| NodeError::Spawn {
                exe: exe.to_path_buf(),
                source,
            })?;
        let mut node = Self {
            child,
            rpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: dir.to_path_buf(),
            keep,
            validators: Vec::new(),
        };
        node.wait_until_answering().await?;
        if processes {
            node.validators = node.read_validators().await?;
        }
        Ok(node)
    }

    /// The validator processes the supervisor listed once all of them served RPC.
    async fn read_validators(&mut self) -> Result<Vec<ValidatorProcess>, NodeError> {
        let log = self.dir.join("node.log");
        let began = Instant::now();
        while began.elapsed() < START_TIMEOUT {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("JSON-RPC listening on") {
                return Ok(text.lines().filter_map(parse_validator_line).collect());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(NodeError::NoAnswer { log })
    }

    async fn wait_until_answering(&mut self) -> Result<(), NodeError> {
        let began = Instant::now();
        while began.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(NodeError::Exited {
                    status: status.to_string(),
                    log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                });
            }
            if let Some(rpc) = self.listening_at()
                && answers(rpc).await
            {
                self.rpc = rpc;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(NodeError::NoAnswer {
            log: self.dir.join("node.log"),
        })
    }

    /// Where the node said its JSON-RPC server listens (validator 0's, with --processes).
    fn listening_at(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        text.lines().find_map(|line| {
            line.strip_prefix("JSON-RPC listening on http://")?
                .parse()
                .ok()
        })
    }

    /// The processes that do the node's work: the validators', or the dev chain's one.
    pub fn processes(&self) -> ProcessGroup {
        if self.validators.is_empty() {
            return ProcessGroup(vec![Process(Some(self.child.id()))]);
        }
        ProcessGroup(
            self.validators
                .iter()
                .map(|v| Process(Some(v.pid)))
                .collect(),
        )
    }

    /// The configuration of validator `i` of a `--processes` chain, to run it again by hand.
    pub fn validator_config(&self, i: usize) -> PathBuf {
        self.dir
            .join("chain")
            .join(format!("node-{i}"))
            .join("node.toml")
    }

    /// The funded accounts the node wrote at start.
    pub fn keys(&self) -> Result<Vec<AccountKey>, NodeError> {
        let path = self.dir.join("chain").join("dev-accounts.json");
        let error = |detail: String| NodeError::Accounts {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| error(e.to_string()))?;
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
        entries
            .iter()
            .map(|entry| {
                let secret = entry["private_key"]
                    .as_str()
                    .ok_or_else(|| error("an entry without \"private_key\"".into()))?;
                AccountKey::from_hex(secret).map_err(|e| error(e.to_string()))
            })
            .collect()
    }

    /// Keeps the directory (and the node's log) when the node is stopped.
    pub fn keep_files(&mut self) {
        self.keep = true;
    }

    /// Whether the node is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn answers(rpc: SocketAddr) -> bool {
    let attempt = async {
        let mut client = Client::connect(rpc).await?;
        client
            .call("eth_blockNumber", serde_json::json!([]))
            .await?;
        Ok::<_, ClientError>(())
    };
    attempt.await.is_ok()
}

/// `validator 2: pid 123, JSON-RPC http://127.0.0.1:8547, log …` as the supervisor prints it.
fn parse_validator_line(line: &str) -> Option<ValidatorProcess> {
    let rest = line.strip_prefix("validator ")?;
    let pid = rest.split("pid ").nth(1)?.split(',').next()?.parse().ok()?;
    let rpc = rest
        .split("http://")
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    Some(ValidatorProcess { pid, rpc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_supervisors_lines() {
        let line =
            "validator 2: pid 123, JSON-RPC http://127.0.0.1:8547, log /tmp/x/node-2/node.log";
        let parsed = parse_validator_line(line).unwrap();
        assert_eq!(parsed.pid, 123);
        assert_eq!(parsed.rpc, "127.0.0.1:8547".parse().unwrap());
        assert!(parse_validator_line("JSON-RPC listening on http://127.0.0.1:8545").is_none());
    }
}
