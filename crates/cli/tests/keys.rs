//! Runs the real `trellis` binary as a user would.

use std::process::Command;

fn trellis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
}

fn keys_new_out(path: &std::path::Path) -> std::process::Output {
    trellis()
        .args(["keys", "new", "--out"])
        .arg(path)
        .output()
        .unwrap()
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
    let printed: trellis_crypto::KeyBundle = serde_json::from_slice(&out.stdout).unwrap();
    let stored: trellis_crypto::KeyBundle =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(printed, stored);
    printed.keys().expect("public halves match private halves");
    assert!(printed.account.address.starts_with("0x") && printed.account.address.len() == 42);
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
    let still: trellis_crypto::KeyBundle =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(still, stored);
}

#[test]
fn two_runs_give_different_keys() {
    let a = trellis().args(["keys", "new"]).output().unwrap();
    let b = trellis().args(["keys", "new"]).output().unwrap();
    assert_ne!(a.stdout, b.stdout);
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
