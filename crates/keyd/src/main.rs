//! `trellis-keyd`: the key manager's own binary (see the library's documentation).

use clap::Parser;
use trellis_keyd::cli::KeydArgs;

#[derive(Debug, Parser)]
#[command(name = "trellis-keyd", version)]
struct Cli {
    #[command(flatten)]
    args: KeydArgs,
}

fn main() -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    trellis_keyd::cli::run(Cli::parse().args)
}
