//! An account key's lifecycle on a consortium's chain, through the `trellis` CLI against a
//! running node: a member rotates its key to one generated inside SoftHSM2 (no vote needed),
//! the old key is refused at admission and the new one pays with the member's roles; another
//! member reports its key compromised and is refused with the block it is suspected from; a
//! governor's rotation proof for a vote is printed by `keys rotation-proof`.

mod support;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::json;
use std::process::Output;
use support::{NodeProcess, network::TestNetwork, softhsm::SoftHsm};
use trellis_crypto::AccountKey;

const CHAIN_ID: u64 = 6161;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Why the node refuses a raw transfer from `key` with `nonce` (empty if it took it).
fn refusal(node: &NodeProcess, key: &AccountKey, nonce: u64) -> String {
    let raw = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x55)),
        value: U256::from(1),
        ..TxEip1559::default()
    });
    let answer = node.request("eth_sendRawTransaction", json!([format!("{raw}")]));
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `trellis COMMAND --rpc RPC --key accounts.json --from WHO EXTRA…`, signed by a member's
/// account of the network's key file.
struct Member<'a> {
    hsm: &'a SoftHsm,
    rpc: String,
    accounts: String,
}

impl Member<'_> {
    fn run(&self, who: &AccountKey, command: &[&str], extra: &[&str]) -> Output {
        let from = who.address().to_string();
        let mut args = command.to_vec();
        args.extend(["--rpc", &self.rpc, "--key", &self.accounts, "--from", &from]);
        args.extend(extra);
        self.hsm.trellis(&args)
    }
}

#[test]
fn a_member_rotates_its_key_into_an_hsm_and_another_reports_its_key_compromised() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    hsm.init_token("bank");
    let network = TestNetwork::governed(dir.path(), CHAIN_ID, (1, 0), 5, 1_000);
    let node = network.start(0);
    let rpc = format!("http://{}", node.rpc);
    let member = Member {
        hsm: &hsm,
        rpc: rpc.clone(),
        accounts: network.dir.join("accounts.json").display().to_string(),
    };
    let [teller, clerk] = [&network.accounts[3], &network.accounts[4]];

    // The teller's successor is generated inside the token; the teller hands over to it.
    let successor_uri = hsm.uri("bank", "teller-2");
    let out = hsm.trellis(&["keys", "new", "--hsm", &successor_uri, "--kind", "account"]);
    assert!(out.status.success(), "{}", text(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let successor: Address = made["address"].as_str().unwrap().parse().unwrap();
    // Balances stay with accounts: the teller funds its successor first.
    let fund = [
        "--to",
        &successor.to_string(),
        "--value",
        "1000000000000000000",
    ]
    .map(String::from);
    let fund: Vec<&str> = fund.iter().map(String::as_str).collect();
    let out = member.run(teller, &["tx", "send"], &fund);
    assert!(out.status.success(), "{}", text(&out));
    let out = member.run(teller, &["keys", "rotate"], &["--new", &successor_uri]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("handed its registration to {successor}")),
        "{said}"
    );

    // The old key is refused at admission, naming why; the successor pays with its roles.
    let refused = refusal(&node, teller, 2);
    assert!(
        refused.contains("rotated to a successor key") && refused.contains("by its own key"),
        "{refused}"
    );
    let clerk_address = clerk.address().to_string();
    let out = hsm.trellis(&[
        "tx",
        "send",
        "--rpc",
        &rpc,
        "--signer",
        &successor_uri,
        "--to",
        &clerk_address,
        "--value",
        "7",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The clerk pays once, then reports its key leaked from the next block on: refused from
    // then on, with that block.
    let out = member.run(
        clerk,
        &["tx", "send"],
        &["--to", &clerk_address, "--value", "1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Suspected from the block after the payment's, once that block exists.
    let tip = || support::hex_u64(&node.call("eth_blockNumber", json!([])));
    let paid = tip();
    while tip() <= paid {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let suspected = (paid + 1).to_string();
    let out = member.run(
        clerk,
        &["keys", "revoke"],
        &["--compromised-since", &suspected],
    );
    assert!(out.status.success(), "{}", text(&out));
    let refused = refusal(&node, clerk, 2);
    assert!(
        refused.contains("reported compromised")
            && refused.contains(&format!("suspected of misuse from block {suspected}")),
        "{refused}"
    );

    // What the clerk's key signed, split at that block, each write proven.
    let activity = |key: &str| {
        let out = hsm.trellis(&["keys", "activity", key, "--rpc", &rpc]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let said = activity(&clerk_address);
    for expected in [
        format!("suspected of misuse from block {suspected}"),
        "before: 1 transaction(s) signed".to_string(),
        "after: 1 transaction(s) signed".to_string(),
        "write(s) of those transactions are proven against state root".to_string(),
        "every node refuses its transactions".to_string(),
    ] {
        assert!(said.contains(&expected), "{expected:?} in {said}");
    }
    // The teller's: its two transactions, its rotation, and where its registration went.
    let said = activity(&teller.address().to_string());
    assert!(said.contains("before: 2 transaction(s) signed"), "{said}");
    assert!(said.contains(&format!("moved to {successor}")), "{said}");
    let out = hsm.trellis(&["keys", "activity", "0x1234", "--rpc", &rpc]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is neither"), "{}", text(&out));
    // A retired key cannot be retired again: the CLI says why.
    let out = member.run(clerk, &["keys", "revoke"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("reported compromised"),
        "{}",
        text(&out)
    );

    // Governance ends governor 2's registration soon: the CLI warns each time it signs.
    let (governor, ends) = (&network.accounts[2], tip() + 1_000);
    let action = [
        "set-account-validity".to_string(),
        governor.address().to_string(),
        "--valid-until".into(),
        ends.to_string(),
    ];
    let action: Vec<&str> = action.iter().map(String::as_str).collect();
    let out = member.run(&network.accounts[0], &["gov", "propose"], &action);
    assert!(out.status.success(), "{}", text(&out));
    let out = member.run(&network.accounts[1], &["gov", "vote"], &["1"]);
    assert!(text(&out).contains("passed"), "{}", text(&out));
    let out = member.run(
        governor,
        &["tx", "send"],
        &["--to", &clerk_address, "--value", "1"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "registration of {} ends at block {ends}",
            governor.address()
        )),
        "{said}"
    );

    // For a holder who lost its key: the successor's proof, for a governance vote.
    let out = hsm.trellis(&[
        "keys",
        "rotation-proof",
        "--old",
        &clerk_address,
        "--new",
        &successor_uri,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let proof = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(proof.len(), 2 + 130, "{proof}");
}
