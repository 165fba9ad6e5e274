use crate::*;
use serde_json::json;
use std::io::Write as _;
use trellis_crypto::{ValidatorKey, ValidatorSigner};

fn signer() -> ValidatorSigner {
    ValidatorKey::generate().expect("a key").validator_signer()
}

/// A log of five records in `dir`, signed by `key`.
fn written(dir: &std::path::Path, key: &ValidatorSigner) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let mut log = AuditLog::open(&path, key.clone()).expect("opens");
    for n in 1..=5u64 {
        log.append(1_000 * n, "event", json!({ "n": n }))
            .expect("appends");
    }
    path
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &std::path::Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn check(
    path: &std::path::Path,
    trusted: &[trellis_types::ValidatorId],
) -> Result<Summary, Broken> {
    let file = std::fs::File::open(path).unwrap();
    verify(std::io::BufReader::new(file), trusted, |_| {})
}

#[test]
fn an_intact_log_verifies_and_goes_on_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let path = written(dir.path(), &key);
    let summary = check(&path, &[key.validator_id()]).expect("intact");
    assert_eq!(summary.records, 5);
    assert_eq!(summary.first_at_ms, Some(1_000));
    assert_eq!(summary.last_at_ms, Some(5_000));
    let mut log = AuditLog::open(&path, key.clone()).expect("reopens");
    let first = summary.first.expect("a first record");
    let fifth = summary.head.expect("a head").1;
    assert_eq!(
        log.head(),
        Some(Head {
            log: first,
            seq: 5,
            hash: fifth
        })
    );
    let sixth = log.append(6_000, "event", json!({"n": 6})).unwrap();
    assert_eq!(sixth.seq, 6);
    let summary = check(&path, &[]).expect("intact");
    assert_eq!(summary.head, Some((6, sixth.hash)));
    assert_eq!(summary.first, Some(first), "the log keeps its name");
    assert_eq!(
        log.head().map(|head| (head.log, head.seq)),
        Some((first, 6))
    );
}

#[test]
fn a_new_log_is_named_by_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(&dir.path().join("audit.jsonl"), signer()).unwrap();
    assert_eq!(log.head(), None);
    let record = log.append(1, "node_started", json!({})).unwrap();
    let head = log.head().unwrap();
    assert_eq!(
        (head.log, head.seq, head.hash),
        (record.hash, 1, record.hash)
    );
}

#[test]
fn an_edit_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let path = written(dir.path(), &key);
    let mut text = lines(&path);
    text[2] = text[2].replace(r#""n":3"#, r#""n":4"#);
    rewrite(&path, &text);
    let broken = check(&path, &[]).unwrap_err();
    assert_eq!((broken.line, broken.seq), (3, Some(3)));
    assert_eq!(broken.problem, Problem::Edited);
    assert!(broken.to_string().contains("line 3 (record 3)"), "{broken}");
}

#[test]
fn a_removed_or_moved_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let path = written(dir.path(), &key);
    let text = lines(&path);
    let mut removed = text.clone();
    removed.remove(1);
    rewrite(&path, &removed);
    let broken = check(&path, &[]).unwrap_err();
    assert_eq!(broken.line, 2);
    assert_eq!(
        broken.problem,
        Problem::OutOfSequence {
            expected: 2,
            found: 3
        }
    );
    let mut swapped = text.clone();
    swapped.swap(3, 4);
    rewrite(&path, &swapped);
    let broken = check(&path, &[]).unwrap_err();
    assert_eq!(broken.line, 4);
    assert!(matches!(broken.problem, Problem::OutOfSequence { .. }));
}

#[test]
fn a_renumbered_rechained_forgery_fails_its_signature() {
    // Someone who removes record 2 and recomputes the numbers and hashes after it still
    // cannot sign them with the node's key.
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let path = written(dir.path(), &key);
    let mut records: Vec<Record> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    records.remove(1);
    let mut prev = records[0].hash;
    for (i, record) in records.iter_mut().enumerate().skip(1) {
        record.seq = i as u64 + 1;
        record.prev = prev;
        record.hash = record.content_digest();
        prev = record.hash;
    }
    let text: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    rewrite(&path, &text);
    let broken = check(&path, &[]).unwrap_err();
    assert_eq!((broken.line, broken.problem), (2, Problem::BadSignature));
}

#[test]
fn another_key_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, other) = (signer(), signer());
    let path = written(dir.path(), &key);
    let broken = check(&path, &[other.validator_id()]).unwrap_err();
    assert_eq!(broken.problem, Problem::UntrustedKey(key.validator_id()));
}

#[test]
fn a_torn_last_line_is_cut_at_open_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = signer();
    let path = written(dir.path(), &key);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let torn = br#"{"seq":6,"atMs":"#;
    file.write_all(torn).unwrap();
    drop(file);
    assert_eq!(
        check(&path, &[]).unwrap_err().line,
        6,
        "verify sees the torn line"
    );
    let mut log = AuditLog::open(&path, key).expect("reopens");
    assert_eq!(log.cut(), Some(torn.len() as u64));
    log.append(7_000, "event", json!({"n": 6})).unwrap();
    assert_eq!(check(&path, &[]).expect("intact").records, 6);
}
