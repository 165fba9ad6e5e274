//! Evidence of equivocation, checked offline by `trellis verify-evidence` and served by a
//! node's `trellis_getEvidence`. The pieces are what a byzantine validator's conflicting votes
//! gave in a simulated run (`trellis-simulate --seed 20 --evidence-out FILE`).

mod support;

use serde_json::json;
use support::{DevNode, operator::trellis};

const FIXTURE: &str = "../consensus/tests/fixtures/equivocation.hex";
/// The byzantine validator of that run (the simulator's validator 2).
const ACCUSED: &str = "0x424b957eaa9e80b8f7dba81d73a44f5e6f6742ab25717785966b5859b5fe461e";

fn fixture() -> String {
    std::fs::read_to_string(FIXTURE).expect("the fixture")
}

fn verify(path: &std::path::Path) -> (bool, String) {
    let out = trellis(&["verify-evidence", path.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn evidence_from_a_byzantine_validator_verifies_offline_and_names_it() {
    let (ok, out) = verify(std::path::Path::new(FIXTURE));
    assert!(ok, "{out}");
    assert_eq!(out.matches("valid: validator").count(), 4, "{out}");
    assert!(
        out.contains(&format!(
            "validator {ACCUSED} notarized two different blocks in view"
        )),
        "{out}"
    );
}

#[test]
fn altered_evidence_or_a_record_naming_another_validator_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let first = fixture().lines().next().unwrap().to_owned();

    // One signature byte changed (the last byte belongs to the second vote's signature).
    let mut altered = first.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let path = dir.path().join("altered.hex");
    std::fs::write(&path, format!("{altered}\n")).unwrap();
    let (ok, out) = verify(&path);
    assert!(!ok, "{out}");
    assert!(
        out.contains("INVALID piece 1: a signature does not verify"),
        "{out}"
    );

    // Genuine evidence whose record claims someone else did it.
    let innocent = format!("0x{}", "11".repeat(32));
    let record = json!([{
        "kind": "conflicting_notarize", "epoch": 0, "view": 1, "validator": innocent,
        "seenAtMs": 0, "evidence": first,
    }]);
    let path = dir.path().join("record.json");
    std::fs::write(&path, record.to_string()).unwrap();
    let (ok, out) = verify(&path);
    assert!(!ok, "{out}");
    assert!(
        out.contains("the record's validator is not what its evidence proves"),
        "{out}"
    );

    // The same record, truthful, verifies.
    let record = json!({
        "kind": "conflicting_notarize", "epoch": 0, "view": 1, "validator": ACCUSED,
        "seenAtMs": 0, "evidence": first,
    });
    std::fs::write(&path, record.to_string()).unwrap();
    let (ok, out) = verify(&path);
    assert!(ok, "{out}");
}

#[test]
fn a_validator_serves_the_evidence_it_kept_across_a_restart_and_an_honest_chain_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::dev(dir.path(), &[]);
    assert_eq!(node.call("trellis_getEvidence", json!([])), json!([]));
    let out = trellis(&["evidence", "--rpc", &format!("http://{}", node.rpc)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("no evidence"),
        "{text}"
    );
    node.kill();

    // What the node kept before it stopped (as it writes it), served after it starts again.
    let first = fixture().lines().next().unwrap().to_owned();
    let record = json!({
        "kind": "conflicting_notarize", "epoch": 0, "view": 1, "validator": ACCUSED,
        "seenAtMs": 1_700_000_000_000u64, "evidence": first,
    });
    // A dev chain keeps its data in DIR/storage.
    std::fs::write(
        dir.path().join("storage/evidence.jsonl"),
        format!("{record}\n"),
    )
    .unwrap();
    let node = DevNode::dev(dir.path(), &[]);
    assert_eq!(node.call("trellis_getEvidence", json!([])), json!([record]));
    let rpc = format!("http://{}", node.rpc);
    let out = trellis(&["evidence", "--rpc", &rpc]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("valid: validator {ACCUSED}")),
        "{text}"
    );

    // Its JSON, handed to someone else, verifies there.
    let out = trellis(&["evidence", "--rpc", &rpc, "--json"]);
    let saved = dir.path().join("handed-over.json");
    std::fs::write(&saved, &out.stdout).unwrap();
    let (ok, text) = verify(&saved);
    assert!(ok, "{text}");
}
