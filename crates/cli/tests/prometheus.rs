//! A real Prometheus (Debian's, installed by scripts/setup) scrapes four `trellis node`
//! processes with the alert rules the project ships (deploy/prometheus/trellis.rules.yml):
//! every node is up and no alert fires while the network is healthy; a validator SIGKILLed
//! raises TrellisNodeDown naming that member and no other alert, while the three left keep
//! finalizing and answering.

mod support;

use serde_json::Value;
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{free_ports, hex_u64, network::TestNetwork, seats::wait_until};

/// A Prometheus process, stopped when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on `dir` scraping `targets` (member name, metrics address) every
    /// second with the shipped rules, evaluated every second.
    fn start(dir: &Path, targets: &[(String, SocketAddr)]) -> Self {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/prometheus/trellis.rules.yml")
            .canonicalize()
            .expect("the shipped rules");
        let listed: String = targets
            .iter()
            .map(|(member, addr)| {
                format!(
                    "      - targets: [\"{addr}\"]\n        labels: {{ member: \"{member}\" }}\n"
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: trellis\n    static_configs:\n{listed}",
            rules.display()
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_ports(1)).parse().unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (scripts/setup installs it)");
        let prometheus = Self { child, addr };
        wait_until("Prometheus answers", Duration::from_secs(60), || {
            TcpStream::connect(addr).is_ok()
        });
        prometheus
    }

    /// `GET path` of Prometheus's HTTP API, as JSON; `None` until it answers.
    fn api(&self, path: &str) -> Option<Value> {
        let mut stream = TcpStream::connect(self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        // HTTP/1.0: the answer comes whole, never chunked.
        write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }

    /// The value of the instant query `promql`, if it has exactly one sample.
    fn scalar(&self, promql: &str) -> Option<f64> {
        let answer = self.api(&format!("/api/v1/query?query={}", encode(promql)))?;
        match answer["data"]["result"].as_array()?.as_slice() {
            [sample] => sample["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The alerts firing now: (name, the `member` label).
    fn firing(&self) -> Vec<(String, String)> {
        let Some(answer) = self.api("/api/v1/alerts") else {
            return Vec::new();
        };
        let alerts = answer["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        alerts
            .iter()
            .filter(|alert| alert["state"] == "firing")
            .map(|alert| {
                let label = |name: &str| alert["labels"][name].as_str().unwrap_or("").to_owned();
                (label("alertname"), label("member"))
            })
            .collect()
    }
}

/// `text` percent-encoded for a URL's query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_raises_node_down_when_a_validator_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let net = TestNetwork::init(dir.path(), 4244, 4, 2);
    let base = free_ports(4);
    let mut targets = Vec::new();
    for (i, config) in net.configs.iter().enumerate() {
        let addr: SocketAddr = format!("127.0.0.1:{}", base + i as u16).parse().unwrap();
        let mut text = std::fs::read_to_string(config).unwrap();
        text.push_str(&format!("metrics_addr = \"{addr}\"\n"));
        std::fs::write(config, text).unwrap();
        targets.push((format!("member-{i}"), addr));
    }
    let mut nodes: Vec<_> = (0..4).map(|i| Some(net.start(i))).collect();
    for (node, (_, addr)) in nodes.iter().zip(&targets) {
        assert_eq!(
            node.as_ref().unwrap().metrics,
            Some(*addr),
            "each node says where"
        );
    }
    let prometheus_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prometheus_dir).unwrap();
    let prometheus = Prometheus::start(&prometheus_dir, &targets);

    wait_until(
        "Prometheus scrapes all four",
        Duration::from_secs(60),
        || prometheus.scalar("sum(up{job=\"trellis\"})") == Some(4.0),
    );
    let height = "min(trellis_chain_finalized_height)";
    wait_until(
        "every node's height is scraped",
        Duration::from_secs(60),
        || prometheus.scalar(height).is_some_and(|h| h >= 5.0),
    );
    // Healthy: give the rules some evaluations; none fires.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        prometheus.firing(),
        Vec::new(),
        "alerts on a healthy network"
    );

    nodes[2].take().unwrap().kill();
    let killed = Instant::now();
    let live: Vec<_> = nodes.iter().flatten().collect();
    let mut last = hex_u64(&live[0].call("eth_blockNumber", serde_json::json!([])));
    let mut fired = Vec::new();
    wait_until("TrellisNodeDown fires", Duration::from_secs(120), || {
        // The three left keep answering and finalizing meanwhile.
        for node in &live {
            let now = hex_u64(&node.call("eth_blockNumber", serde_json::json!([])));
            last = last.max(now);
        }
        fired = prometheus.firing();
        !fired.is_empty()
    });
    let after = killed.elapsed();
    assert_eq!(
        fired,
        vec![("TrellisNodeDown".to_owned(), "member-2".to_owned())],
        "only the killed member's alert"
    );
    let before = last;
    wait_until(
        "the three left keep finalizing",
        Duration::from_secs(30),
        || hex_u64(&live[0].call("eth_blockNumber", serde_json::json!([]))) > before + 3,
    );
    println!(
        "TrellisNodeDown fired {:.1} s after the SIGKILL (the rule waits 30 s)",
        after.as_secs_f64()
    );
    assert!(after >= Duration::from_secs(30), "fired before its `for`");
}
