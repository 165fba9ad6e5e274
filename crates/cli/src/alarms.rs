//! `trellis alarms`: the alarms a node's risk rules raised, with the evidence that traces each
//! to its source.

use crate::{gov::NodeArg, lifecycle::runtime};
use anyhow::{Context, Result};
use clap::Args;
use trellis_risk::Alarm;

#[derive(Debug, Args)]
pub struct AlarmsArgs {
    #[command(flatten)]
    node: NodeArg,
    /// Only alarms with ids above this (the last one you saw).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    after: u64,
    /// At most this many.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print the node's JSON as it is.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AlarmsArgs) -> Result<()> {
    let node = args.node.open()?;
    let alarms = runtime()?
        .block_on(node.alarms(args.after, args.limit))
        .context("asking the node for its alarms")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&alarms)?);
        return Ok(());
    }
    if alarms.is_empty() {
        println!("no alarms after id {}", args.after);
    }
    for alarm in &alarms {
        print_alarm(alarm);
    }
    Ok(())
}

fn print_alarm(alarm: &Alarm) {
    println!("{alarm}, raised at {} ms", alarm.raised_at_ms);
    if !alarm.actions.is_empty() {
        println!("  actions: {}", alarm.actions.join(", "));
    }
    let evidence = &alarm.evidence;
    if let Some(value) = evidence.value {
        println!("  value moved in the window: {value} wei");
    }
    for hash in &evidence.transactions {
        println!("  transaction {hash}");
    }
    for source in &evidence.sources {
        println!("  source: {source}");
    }
}
