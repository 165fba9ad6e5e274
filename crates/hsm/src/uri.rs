//! PKCS#11 key URIs (a subset of RFC 7512): how the CLI and `node.toml` name a key on a token.
//!
//! `pkcs11:token=LABEL;object=KEY?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin`

use crate::HsmError;
use std::{fmt, path::PathBuf};

/// Debian's SoftHSM2 module, the default when a URI names none.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A key on a token: which module, which token, which key, and where its PIN is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUri {
    pub module: PathBuf,
    pub token: String,
    pub object: String,
    pub pin_file: PathBuf,
}

impl KeyUri {
    /// Parses `pkcs11:token=…;object=…?module-path=…&pin-source=file:…`.
    pub fn parse(uri: &str) -> Result<Self, HsmError> {
        let bad = |reason: String| HsmError::BadUri {
            uri: uri.to_string(),
            reason,
        };
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it does not start with pkcs11:".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin_file) = (None, None, None, None);
        let pairs = path.split(';').chain(query.split('&'));
        for pair in pairs.filter(|pair| !pair.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not name=value")))?;
            let value = percent_decode(value).map_err(bad)?;
            match name {
                "token" => token = Some(value),
                "object" => object = Some(value),
                "module-path" => module = Some(PathBuf::from(value)),
                "pin-source" => {
                    let path = value.strip_prefix("file:").unwrap_or(&value);
                    pin_file = Some(PathBuf::from(path));
                }
                "pin-value" => {
                    return Err(bad(
                        "a PIN in the URI would sit in shell histories and process lists; put it in a file and name it with pin-source=file:PATH".into(),
                    ));
                }
                other => return Err(bad(format!("unknown attribute {other:?}"))),
            }
        }
        Ok(Self {
            module: module.unwrap_or_else(|| PathBuf::from(SOFTHSM2_MODULE)),
            token: token.ok_or_else(|| bad("no token=LABEL".into()))?,
            object: object.ok_or_else(|| bad("no object=KEY-LABEL".into()))?,
            pin_file: pin_file.ok_or_else(|| bad("no pin-source=file:PATH".into()))?,
        })
    }
}

impl fmt::Display for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pkcs11:token={};object={}?module-path={}&pin-source=file:{}",
            percent_encode(&self.token),
            percent_encode(&self.object),
            percent_encode(&self.module.display().to_string()),
            percent_encode(&self.pin_file.display().to_string()),
        )
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at {:?}", &text[i..]))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} decodes to bytes that are not UTF-8"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let uri = KeyUri::parse(
            "pkcs11:token=bank%20a;object=alice?module-path=/opt/hsm/lib.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(uri.token, "bank a");
        assert_eq!(uri.object, "alice");
        assert_eq!(uri.module, PathBuf::from("/opt/hsm/lib.so"));
        assert_eq!(uri.pin_file, PathBuf::from("/run/pin"));
        assert_eq!(KeyUri::parse(&uri.to_string()).unwrap(), uri);
    }

    #[test]
    fn defaults_to_softhsm2_and_refuses_what_it_cannot_use() {
        let uri = KeyUri::parse("pkcs11:token=t;object=k?pin-source=/p").unwrap();
        assert_eq!(uri.module, PathBuf::from(SOFTHSM2_MODULE));
        for (text, expected) in [
            ("file:/x", "does not start with pkcs11:"),
            ("pkcs11:object=k?pin-source=/p", "no token"),
            ("pkcs11:token=t?pin-source=/p", "no object"),
            ("pkcs11:token=t;object=k", "no pin-source"),
            ("pkcs11:token=t;object=k?pin-value=1234", "put it in a file"),
            (
                "pkcs11:token=t;object=k;colour=red?pin-source=/p",
                "unknown attribute",
            ),
            (
                "pkcs11:token=%zz;object=k?pin-source=/p",
                "bad percent escape",
            ),
        ] {
            let error = KeyUri::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
