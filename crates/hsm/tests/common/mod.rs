//! SoftHSM2 in a temporary directory, for one test at a time.
//!
//! SoftHSM2 reads its configuration (where tokens live) from `SOFTHSM2_CONF` when the module is
//! initialised, once per process. A test therefore re-runs itself in a child process whose
//! environment names a fresh token directory; the child does the work, the parent checks that
//! it passed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};
use trellis_hsm::{Pin, SOFTHSM2_MODULE, Token};

const MARK: &str = "TRELLIS_TEST_SOFTHSM_DIR";
pub const PIN: &str = "4321";
pub const TOKEN: &str = "trellis-test";

/// The token directory of the running child.
pub struct SoftHsm {
    pub dir: PathBuf,
}

impl SoftHsm {
    pub fn module(&self) -> &Path {
        Path::new(SOFTHSM2_MODULE)
    }

    /// Opens the test token with the right PIN.
    pub fn token(&self) -> std::sync::Arc<Token> {
        Token::open(self.module(), TOKEN, Pin::new(PIN)).expect("open the test token")
    }

    /// A PIN file holding `pin`.
    pub fn pin_file(&self, name: &str, pin: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{pin}\n")).unwrap();
        path
    }
}

/// Runs `body` in a child process with a fresh SoftHSM2 holding one token, [`TOKEN`] with
/// user PIN [`PIN`]. `test` is the test function's name, so the child runs only it.
pub fn in_softhsm(test: &str, body: impl FnOnce(&SoftHsm)) {
    if let Ok(dir) = std::env::var(MARK) {
        body(&SoftHsm { dir: dir.into() });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--pin", PIN, "--so-pin", "87654321"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util runs (scripts/setup installs softhsm2)");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(MARK, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&child.stderr));
    assert!(
        child.status.success(),
        "the test's body failed in its SoftHSM2 child process"
    );
    // A misspelt name would run nothing and pass: the child must have run exactly this test.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child ran no test named {test}"
    );
}
