//! Sensitive fields kept off the ledger in clear, on a real dev chain: an insurer seals a
//! claim's diagnosis to itself, a clinic and an auditor (`trellis field seal`) and records the
//! commitment and the envelope in the SealedRecords contract. Nothing on the chain or in the
//! node's files holds the diagnosis in clear; each recipient opens the envelope from the
//! transaction alone, an outsider cannot; the auditor checks the opening against the
//! transaction, and the contract's own hash agrees; an altered opening is refused, saying why.
//! ethers.js (clients/ethers/lib/fields.js) reads and writes the same fields.

mod support;

use alloy_primitives::{B256, Bytes, TxKind};
use alloy_sol_types::{SolCall, sol};
use serde_json::{Value, json};
use std::{path::Path, process::Command, time::Duration};
use support::{
    DevNode,
    clients::{npm_ethers, run},
    dev_accounts, hex_u64,
};
use trellis_crypto::AccountKey;

const DIAGNOSIS: &str = "fractured left wrist, surgery on 2026-11-30";
const LABEL: &str = "claim.diagnosis";

sol! {
    function record(bytes32 id, bytes32 commitment, bytes envelope) external;
    function opens(bytes32 id, string label, bytes32 salt, bytes value) external view returns (bool);
}

/// `trellis ARGS`: whether it succeeded, its stdout and its stderr.
fn trellis(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .env_remove("TRELLIS_API_TOKEN")
        .output()
        .expect("run trellis");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn trellis_ok(args: &[&str]) -> (String, String) {
    let (ok, stdout, stderr) = trellis(args);
    assert!(ok, "trellis {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn deploy_sealed_records(node: &DevNode, key: &AccountKey) -> alloy_primitives::Address {
    let artifact: Value = serde_json::from_str(include_str!(
        "../../../contracts/artifacts/SealedRecords.json"
    ))
    .unwrap();
    let code = alloy_primitives::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    let receipt = node.execute(key, 0, TxKind::Create, code.into());
    receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether any file under `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return any_file_holds(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        bytes.windows(needle.len()).any(|window| window == needle)
    })
}

#[test]
fn a_sealed_field_is_read_by_its_recipients_and_proven_to_an_auditor() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    // In clear on disk, so that what the chain stores can be searched for the value.
    let node = DevNode::dev(dir.path(), &["--accounts", "4", "--plaintext"]);
    let keys = dev_accounts(dir.path());
    let (insurer, clinic, auditor, outsider) = (&keys[0], &keys[1], &keys[2], &keys[3]);
    let key_file = dir.path().join("dev-accounts.json");
    let key_file = key_file.to_str().unwrap();
    let rpc = format!("http://{}", node.rpc);

    // Each recipient hands out its public key.
    let public_key = |key: &AccountKey| {
        let from = key.address().to_string();
        let (stdout, stderr) =
            trellis_ok(&["field", "public-key", "--key", key_file, "--from", &from]);
        assert!(stderr.contains("public key of account"), "{stderr}");
        let printed = stdout.trim().to_owned();
        assert_eq!(printed, key.public_key().to_string());
        printed
    };
    let recipients = [insurer, clinic, auditor].map(public_key);

    // The insurer seals the diagnosis and keeps its own opening.
    let own_opening = secrets.path().join("insurer-opening.json");
    let (stdout, stderr) = trellis_ok(&[
        "field",
        "seal",
        "--label",
        LABEL,
        "--value",
        DIAGNOSIS,
        "--to",
        &recipients[0],
        "--to",
        &recipients[1],
        "--to",
        &recipients[2],
        "--opening-out",
        own_opening.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("sealed field claim.diagnosis to 3 recipients"),
        "{stderr}"
    );
    let sealed: Value = serde_json::from_str(&stdout).unwrap();
    let commitment: B256 = sealed["commitment"].as_str().unwrap().parse().unwrap();
    let envelope = alloy_primitives::hex::decode(sealed["envelope"].as_str().unwrap()).unwrap();

    // It records the commitment and the envelope on chain.
    let records = deploy_sealed_records(&node, insurer);
    let claim = B256::repeat_byte(0x42);
    let input = recordCall {
        id: claim,
        commitment,
        envelope: envelope.into(),
    }
    .abi_encode();
    let receipt = node.execute(insurer, 1, TxKind::Call(records), input.into());
    let tx = receipt["transactionHash"].as_str().unwrap().to_owned();

    // Nothing the chain holds, nor any file of the node, has the diagnosis in clear.
    let transaction = node.call("eth_getTransactionByHash", json!([tx]));
    let clear_hex = alloy_primitives::hex::encode(DIAGNOSIS);
    assert!(!transaction.to_string().contains(&clear_hex));
    assert!(!receipt.to_string().contains(&clear_hex));
    node.wait_for_height(
        hex_u64(&receipt["blockNumber"]) + 2,
        Duration::from_secs(30),
    );
    assert!(
        any_file_holds(dir.path(), commitment.as_slice()),
        "the search sees what the chain stores"
    );
    assert!(!any_file_holds(dir.path(), DIAGNOSIS.as_bytes()));
    assert!(!any_file_holds(dir.path(), b"fractured"));

    // Each recipient opens the envelope from the transaction alone; an outsider cannot.
    let open = |key: &AccountKey| {
        let from = key.address().to_string();
        trellis(&[
            "field", "open", "--key", key_file, "--from", &from, "--tx", &tx, "--rpc", &rpc,
        ])
    };
    for key in [clinic, auditor] {
        let (ok, stdout, stderr) = open(key);
        assert!(ok, "{stderr}");
        assert!(stderr.contains(DIAGNOSIS), "{stderr}");
        let opening: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(opening["label"], LABEL);
        assert_eq!(opening["value"], format!("0x{clear_hex}"));
    }
    let (ok, _, stderr) = open(outsider);
    assert!(!ok);
    assert!(
        stderr.contains("carries no envelope addressed to account"),
        "{stderr}"
    );

    // The auditor, handed the clinic's opening, checks it against the transaction.
    let clinic_opening = secrets.path().join("clinic-opening.json");
    let from = clinic.address().to_string();
    trellis_ok(&[
        "field",
        "open",
        "--key",
        key_file,
        "--from",
        &from,
        "--tx",
        &tx,
        "--rpc",
        &rpc,
        "--out",
        clinic_opening.to_str().unwrap(),
    ]);
    let verify = |opening: &Path| {
        trellis(&[
            "field",
            "verify",
            "--opening",
            opening.to_str().unwrap(),
            "--tx",
            &tx,
            "--rpc",
            &rpc,
        ])
    };
    let (ok, stdout, stderr) = verify(&clinic_opening);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("is what transaction {tx} recorded in block")),
        "{stdout}"
    );
    assert!(stdout.contains(DIAGNOSIS), "{stdout}");
    let (ok, _, stderr) = verify(&own_opening);
    assert!(ok, "the insurer's own copy proves the same: {stderr}");

    // ethers.js, with the same format (clients/ethers/lib/fields.js), opens the CLI's envelope,
    // and seals a field of its own that the CLI opens.
    let js_tx = secrets.path().join("js-tx");
    let mut command = npm_ethers(
        &node,
        &["run", "test:fields", "--silent"],
        &clinic.secret_hex(),
    );
    command
        .env("TRELLIS_INSURER_KEY", insurer.secret_hex())
        .env("TRELLIS_AUDITOR_PUBLIC", &recipients[2])
        .env("TRELLIS_RECORDS", records.to_string())
        .env("TRELLIS_TX", &tx)
        .env("TRELLIS_VALUE", DIAGNOSIS)
        .env("TRELLIS_OUT", &js_tx);
    run("ethers.js sealed fields", command);
    let js_tx = std::fs::read_to_string(&js_tx).unwrap();
    let from = auditor.address().to_string();
    let (stdout, stderr) = trellis_ok(&[
        "field", "open", "--key", key_file, "--from", &from, "--tx", &js_tx, "--rpc", &rpc,
    ]);
    assert!(
        stderr.contains("field claim.amount: \"12500 EUR\""),
        "{stderr}"
    );
    assert!(stdout.contains("claim.amount"), "{stdout}");

    // The contract computes the same commitment: an opening checks on chain by eth_call.
    let opening: Value =
        serde_json::from_str(&std::fs::read_to_string(&clinic_opening).unwrap()).unwrap();
    let salt: B256 = opening["salt"].as_str().unwrap().parse().unwrap();
    let ask = |value: &str| {
        let data = opensCall {
            id: claim,
            label: LABEL.into(),
            salt,
            value: value.as_bytes().to_vec().into(),
        }
        .abi_encode();
        let call = json!({"to": records, "data": Bytes::from(data)});
        let answer = node.call("eth_call", json!([call, "latest"]));
        let bytes = alloy_primitives::hex::decode(answer.as_str().unwrap()).unwrap();
        opensCall::abi_decode_returns(&bytes).unwrap()
    };
    assert!(ask(DIAGNOSIS));
    assert!(!ask("sprained wrist"));

    // An altered opening is refused, saying what does not match.
    let altered = secrets.path().join("altered.json");
    let mut forged = opening.clone();
    forged["value"] = json!(format!(
        "0x{}",
        alloy_primitives::hex::encode("sprained wrist")
    ));
    std::fs::write(&altered, forged.to_string()).unwrap();
    let (ok, _, stderr) = verify(&altered);
    assert!(!ok);
    assert!(stderr.contains("does not record commitment"), "{stderr}");
    let (ok, _, stderr) = trellis(&[
        "field",
        "verify",
        "--opening",
        altered.to_str().unwrap(),
        "--commitment",
        &commitment.to_string(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("does not match commitment {commitment}")),
        "{stderr}"
    );
    assert!(!node.logged("panicked"), "the node panicked");
}
