//! Runs the real `trellis` binary as a user would.

use std::process::Command;

fn trellis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
}

const PASSPHRASE: &str = "seven words of a long enough passphrase";

fn keys_new_out(path: &std::path::Path) -> std::process::Output {
    let passphrase =
        std::env::temp_dir().join(format!("trellis-test-passphrase-{}", std::process::id()));
    std::fs::write(&passphrase, format!("{PASSPHRASE}\n")).unwrap();
    trellis()
        .args(["keys", "new", "--out"])
        .arg(path)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .output()
        .unwrap()
}

fn open(path: &std::path::Path) -> trellis_crypto::KeyBundle {
    let sealed: trellis_crypto::SealedKey =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let opened = sealed
        .open(&trellis_crypto::Passphrase::new(PASSPHRASE))
        .unwrap();
    serde_json::from_slice(&opened).unwrap()
}

#[test]
fn version_names_the_crate_version() {
    let out = trellis().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("trellis {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn keys_new_prints_json_and_writes_owner_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.json");
    let out = keys_new_out(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Printed: the public halves only. Stored: sealed, never the private keys in clear.
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let stored = open(&path);
    assert!(!text.contains(&stored.account.private_key[2..]), "{text}");
    assert!(!text.contains(&stored.validator.private_key[2..]), "{text}");
    assert!(
        printed.to_string().find("private_key").is_none(),
        "{printed}"
    );
    assert_eq!(printed["account"]["address"], stored.account.address);
    assert_eq!(
        printed["validator"]["public_key"],
        stored.validator.public_key
    );
    stored.keys().expect("public halves match private halves");
    assert!(stored.account.address.starts_with("0x") && stored.account.address.len() == 42);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second run must not clobber the first key file.
    let again = keys_new_out(&path);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(open(&path), stored);
}

#[test]
fn two_runs_give_different_keys() {
    let a = trellis().args(["keys", "new"]).output().unwrap();
    let b = trellis().args(["keys", "new"]).output().unwrap();
    assert_ne!(a.stdout, b.stdout);
}

#[test]
fn a_plaintext_key_file_is_sealed_in_place_and_a_wrong_passphrase_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let plain = trellis().args(["keys", "new"]).output().unwrap();
    let bundle: trellis_crypto::KeyBundle = serde_json::from_slice(&plain.stdout).unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, &plain.stdout).unwrap();
    let passphrase = dir.path().join("passphrase");
    std::fs::write(&passphrase, format!("{PASSPHRASE}\n")).unwrap();
    let out = trellis()
        .args(["keys", "seal"])
        .arg(&path)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(open(&path), bundle);
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(&bundle.account.private_key[2..])
    );

    // Sealing twice is refused; a wrong passphrase is named as such where the key is used.
    let again = trellis()
        .args(["keys", "seal"])
        .arg(&path)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("sealed already"),
        "{again:?}"
    );
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not it\n").unwrap();
    let out = trellis()
        .args([
            "tx",
            "send",
            "--rpc",
            "http://127.0.0.1:9",
            "--to",
            &bundle.account.address,
        ])
        .arg("--key")
        .arg(&path)
        .arg("--passphrase-file")
        .arg(&wrong)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("passphrase does not open"),
        "{stderr}"
    );
    let out = trellis()
        .args(["keys", "new", "--out"])
        .arg(dir.path().join("x.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--passphrase-file"),
        "{stderr}"
    );
}

#[test]
fn unwritable_out_path_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("keys.json");
    let out = keys_new_out(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write key file"), "{stderr}");
    assert!(stderr.contains("no-such-dir"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no key is printed when it could not be stored"
    );
}
