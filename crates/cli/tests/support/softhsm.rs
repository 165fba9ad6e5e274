//! A SoftHSM2 of the test's own: its tokens in a temporary directory, named to the `trellis`
//! processes by `SOFTHSM2_CONF`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub const PIN: &str = "246810";

pub struct SoftHsm {
    pub conf: PathBuf,
    pub pin_file: PathBuf,
}

impl SoftHsm {
    /// A SoftHSM2 configuration under `dir`, with no token yet.
    pub fn new(dir: &Path) -> Self {
        let tokens = dir.join("softhsm-tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(&conf, text).unwrap();
        let pin_file = dir.join("hsm.pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Self { conf, pin_file }
    }

    /// Creates a token labelled `label` whose user PIN is [`PIN`].
    pub fn init_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label, "--pin", PIN])
            .args(["--so-pin", "13579111"])
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("softhsm2-util (scripts/setup installs softhsm2)");
        assert!(out.status.success(), "{out:?}");
    }

    /// The `pkcs11:` URI of key `object` on `token`, with the PIN file.
    pub fn uri(&self, token: &str, object: &str) -> String {
        format!(
            "pkcs11:token={token};object={object}?pin-source=file:{}",
            self.pin_file.display()
        )
    }

    pub fn env(&self) -> [(&str, &str); 1] {
        [("SOFTHSM2_CONF", self.conf.to_str().unwrap())]
    }

    /// Runs `trellis ARGS` with this SoftHSM2.
    pub fn trellis(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap()
    }
}
