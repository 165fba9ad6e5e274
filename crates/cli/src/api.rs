//! `trellis api token`: an API token for a node that asks callers for one (`api_access =
//! "tokens"`), signed by an account's key (a key file or an HSM) the way a wallet signs text.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::{path::PathBuf, time::Duration};
use trellis_client::{api_token, open_signer};
use trellis_types::Address;

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Print an API token: send it as `Authorization: Bearer <token>`, or as `?token=<token>`
    /// at the end of the node's URL (a wallet's RPC URL, `--rpc` of this CLI).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The account's key: a key file (with --from if it holds several accounts), or a key on
    /// an HSM token, `pkcs11:token=LABEL;object=KEY?module-path=LIB&pin-source=file:PIN`.
    #[arg(long, value_name = "FILE|PKCS11-URI")]
    key: String,
    /// Which account of the key file.
    #[arg(long, value_name = "ADDRESS")]
    from: Option<Address>,
    /// The file whose first line opens a sealed key file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// The chain the token is for (`eth_chainId`; a token is refused by any other chain).
    #[arg(long, value_name = "ID")]
    chain_id: u64,
    /// How long it stays valid: a number followed by s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    valid_for: Duration,
}

pub fn run(command: ApiCommand) -> Result<()> {
    match command {
        ApiCommand::Token(args) => token(&args),
    }
}

fn token(args: &TokenArgs) -> Result<()> {
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(trellis_crypto::Passphrase::from_file)
        .transpose()?;
    let key = open_signer(&args.key, args.from, passphrase.as_ref())?;
    let (claims, token) =
        api_token(key.as_ref(), args.chain_id, args.valid_for).context("signing the token")?;
    println!("{token}");
    eprintln!(
        "API token of account {} for chain {}, valid until {} (seconds since 1970)",
        claims.account.to_checksum(None),
        claims.chain_id,
        claims.expires
    );
    Ok(())
}

/// `30d`, `12h`, `90m`, `3600s`.
fn parse_duration(text: &str) -> Result<Duration> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?}: expected a number followed by s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => bail!("{text:?}: expected a number followed by s, m, h or d"),
    };
    if number == 0 {
        bail!("{text:?}: a token must be valid for some time");
    }
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5_400));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
    }
}
