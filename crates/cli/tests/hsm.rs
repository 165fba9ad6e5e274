//! Keys in an HSM (SoftHSM2, through PKCS#11) in a network of `trellis node` processes: one
//! member's validator key moved onto a token signs its votes, blocks and p2p handshakes there,
//! and the chain finalizes with it; an account key on a token signs a transfer from
//! `trellis tx send`. Wrong PINs and labels stop a node at start with the reason.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{
    NodeProcess, hex_u64, hex_u128,
    network::{TestNetwork, assert_same_chain},
    softhsm::SoftHsm,
};

const CHAIN_ID: u64 = 5151;
/// The member whose validator key moves onto a token.
const HSM_MEMBER: usize = 3;

fn height(node: &NodeProcess) -> u64 {
    hex_u64(&node.call("eth_blockNumber", json!([])))
}

/// Rewrites a member's node.toml to name its key on the token instead of its key file.
fn use_token(config: &std::path::Path, token: &str, pin_file: &std::path::Path) {
    let text = std::fs::read_to_string(config).unwrap();
    // Drop the key file's line, and the table an earlier call appended.
    let before_table = text.split("\n[validator_key]").next().unwrap();
    let kept: Vec<&str> = before_table
        .lines()
        .filter(|line| !line.starts_with("validator_key"))
        .collect();
    let table = format!(
        "\n[validator_key]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken = \"{token}\"\n\
         label = \"validator\"\npin_file = {:?}\n",
        pin_file.display().to_string()
    );
    std::fs::write(config, kept.join("\n") + &table).unwrap();
}

fn start_failing(config: &std::path::Path, hsm: &SoftHsm) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["node", "--config", config.to_str().unwrap()])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node started: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_validator_and_an_account_sign_inside_softhsm2() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    let token = format!("member-{HSM_MEMBER}");
    hsm.init_token(&token);
    let network = TestNetwork::init(dir.path(), CHAIN_ID, 4, 2);
    let member = network.configs[HSM_MEMBER].parent().unwrap().to_path_buf();

    // The member's validator key moves onto its token; the file goes.
    let key_file = member.join("validator.json");
    let validator_uri = hsm.uri(&token, "validator");
    let out = hsm.trellis(&[
        "keys",
        "import",
        "--kind",
        "validator",
        "--file",
        key_file.to_str().unwrap(),
        "--hsm",
        &validator_uri,
    ]);
    assert!(out.status.success(), "{out:?}");
    let moved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let config = &network.configs[HSM_MEMBER];

    // Mistakes stop the node before it writes anything, each with its reason.
    let wrong_pin = dir.path().join("wrong.pin");
    std::fs::write(&wrong_pin, "000000\n").unwrap();
    use_token(config, &token, &wrong_pin);
    let error = start_failing(config, &hsm);
    assert!(error.contains("PIN") && error.contains("wrong"), "{error}");
    use_token(config, "no-such-token", &hsm.pin_file);
    let error = start_failing(config, &hsm);
    assert!(
        error.contains("no token labelled \"no-such-token\""),
        "{error}"
    );
    assert!(
        !member.join("data").exists(),
        "a node that refused to start wrote its data dir"
    );

    use_token(config, &token, &hsm.pin_file);
    let members: Vec<NodeProcess> = (0..4)
        .map(|i| {
            let args = [
                "node".to_string(),
                "--config".into(),
                network.configs[i].display().to_string(),
            ];
            NodeProcess::start_with_env(&args, &hsm.env())
        })
        .collect();

    // An account key on the token pays a transfer through `trellis tx send`.
    let payer = &network.accounts[0];
    let payee = network.accounts[1].address();
    let account_uri = hsm.uri(&token, "treasury");
    let out = hsm.trellis(&[
        "keys",
        "import",
        "--kind",
        "account",
        "--file",
        network.dir.join("accounts.json").to_str().unwrap(),
        "--from",
        &payer.address().to_string(),
        "--hsm",
        &account_uri,
    ]);
    assert!(out.status.success(), "{out:?}");
    // Read where the transfer is sent: that node has its block when `tx send` returns (another
    // may be a block behind).
    let before = hex_u128(&members[1].call("eth_getBalance", json!([payee, "latest"])));
    let rpc = format!("http://{}", members[1].rpc);
    let out = hsm.trellis(&[
        "tx",
        "send",
        "--rpc",
        &rpc,
        "--signer",
        &account_uri,
        "--to",
        &payee.to_string(),
        "--value",
        "123456789",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains(&payer.address().to_string()), "{text}");
    let after = hex_u128(&members[1].call("eth_getBalance", json!([payee, "latest"])));
    assert_eq!(after - before, 123_456_789);

    // The chain finalizes with the HSM member among the proposers: its key signed blocks, and
    // its p2p handshakes (signed on the token) let it in.
    let coinbase = {
        let id_hex = moved["public_key"].as_str().unwrap();
        let bytes: [u8; 32] = hex::decode(&id_hex[2..]).unwrap().try_into().unwrap();
        trellis_types::ValidatorId(bytes)
            .coinbase()
            .to_string()
            .to_lowercase()
    };
    let start = Instant::now();
    let led = loop {
        let top = height(&members[0]);
        let miners: Vec<String> = (1..=top)
            .map(|h| {
                let block =
                    members[0].call("eth_getBlockByNumber", json!([format!("{h:#x}"), false]));
                block["miner"].as_str().unwrap().to_lowercase()
            })
            .collect();
        if miners.contains(&coinbase) && top >= 8 {
            break top;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the HSM member led no block by height {top}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    members[HSM_MEMBER].wait_for_height(led, Duration::from_secs(30));
    let nodes: Vec<&NodeProcess> = members.iter().collect();
    assert_same_chain(&nodes, led);
}
