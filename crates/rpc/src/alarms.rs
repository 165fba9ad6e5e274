//! `trellis_alarms({after, limit}?)`: the alarms this node's risk rules raised, oldest first,
//! each with its evidence. The node plugs its risk control in (as it does its certificates);
//! a node that runs no rules says so.

use crate::error::{Answer, rejected};
use std::{future::Future, pin::Pin, sync::Arc};
use trellis_risk::Alarm;

/// Most alarms one call returns.
pub const MAX_ALARMS: usize = 1_000;

/// A reader of the alarms a node raised.
pub trait AlarmSource: Send + Sync + 'static {
    /// Up to `limit` alarms whose ids are above `after`, oldest first; `None` if risk control
    /// has stopped.
    fn alarms(
        &self,
        after: u64,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<Alarm>>> + Send + '_>>;
}

/// The node's alarms, as the server holds them.
#[derive(Clone)]
pub struct Alarms(pub Arc<dyn AlarmSource>);

impl std::fmt::Debug for Alarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Alarms")
    }
}

/// The answer to `trellis_alarms`.
pub async fn alarms(source: Option<&Alarms>, after: u64, limit: usize) -> Answer<Vec<Alarm>> {
    let Some(Alarms(source)) = source else {
        return Err(rejected(
            "this node runs no risk rules: name a rules file as risk_rules in its node.toml (or `trellis dev --risk-rules FILE`)",
        ));
    };
    source
        .alarms(after, limit)
        .await
        .ok_or_else(|| crate::error::internal("risk control has stopped"))
}
