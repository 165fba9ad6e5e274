//! Risk control in a node: the operator's rules (`risk_rules` in node.toml) weighed against
//! what the node sees, by one owner task on a thread of its own.
//!
//! The owner holds the rules engine, the alarm log and the host sampler; nothing else touches
//! them. Parts of the node report to it without waiting: admission hands over each batch it
//! offered to the pool (`AdmissionWatch`), consensus its faults; a full inbox drops the event
//! and counts it (`trellis_risk_events_dropped_total`), so risk control never slows the chain.
//! What the owner decides flows back the same way: the senders it throttles are published as
//! a snapshot admission reads (a `watch`), alarms are logged, counted by rule
//! (`trellis_risk_alarms_total`), appended to the alarm log (`log.rs`) and posted to their
//! rule's webhook (`webhook.rs`); the governance proposals a rule asks for (a freeze, a
//! validator's removal) are made by `proposals.rs`; `trellis_alarms` asks the owner for them.
//!
//! The rules file is read again when it changes (checked every [`RELOAD_EVERY`]) or on SIGHUP;
//! a file that does not read keeps the rules in force, and the log names the line at fault.

mod host;
mod log;
mod proposals;
mod webhook;

use crate::{FileProblem, NodeError, audit::Audit};
use alloy_primitives::Address;
use commonware_runtime::{
    Clock as _, Metrics as _, Spawner as _, Supervisor as _,
    telemetry::metrics::{Counter, CounterFamily, EncodeLabelSet, Gauge, MetricsExt as _, raw},
    tokio,
};
use serde_json::json;
use std::{
    collections::HashMap,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime},
};
use trellis_chain::watch::{AdmissionWatch, Offer};
use trellis_crypto::TxSigner;
use trellis_risk::{Action, Alarm, Engine, Event, Measure, Party, Rules};
use trellis_types::ValidatorId;

/// Events that may wait for the owner; beyond that they are dropped and counted.
const INBOX: usize = 1_024;
/// Parties each rule tracks at most (some tens of MiB at worst); more active in one window
/// is an alarm of its own.
const CAPACITY: usize = 20_000;
/// How often throttles are lifted when they end.
const TICK: Duration = Duration::from_secs(1);
/// How often the host's load is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(15);
/// How often the rules file is checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

pub use log::FILE as ALARM_LOG;

/// Reads and checks the rules file at `path`.
pub fn load_rules(path: &Path) -> Result<Rules, NodeError> {
    let problem = |problem: FileProblem| NodeError::Config {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.into()))?;
    Rules::parse(&text).map_err(|e| problem(FileProblem::Rules(e)))
}

/// Accounts throttled, and until when (milliseconds since the Unix epoch).
type Throttled = Arc<HashMap<Address, u64>>;

/// What the owner is asked.
enum Query {
    Alarms {
        after: u64,
        limit: usize,
        reply: ::tokio::sync::oneshot::Sender<Vec<Alarm>>,
    },
}

/// What risk control starts from.
pub struct RiskSetup {
    /// The rules file (reloaded when it changes).
    pub rules_file: PathBuf,
    /// The governor account that signs the proposals rules ask for, if any.
    pub operator: Option<Arc<dyn TxSigner>>,
}

/// A handle on the node's risk control. Cheap to clone.
#[derive(Clone)]
pub struct Risk {
    /// Where the node's JSON-RPC server answers, once it listens (proposals go there).
    api: Arc<OnceLock<proposals::OwnApi>>,
    events: ::tokio::sync::mpsc::Sender<Event>,
    queries: ::tokio::sync::mpsc::Sender<Query>,
    throttled: ::tokio::sync::watch::Receiver<Throttled>,
    clock: Arc<tokio::Context>,
    metrics: Arc<RiskMetrics>,
}

impl Risk {
    /// Starts risk control under `context` with the rules in `setup`'s file (checked: a bad
    /// file refuses to start), its alarm log in `data_dir`.
    pub fn start(
        context: &tokio::Context,
        setup: RiskSetup,
        data_dir: &Path,
        audit: Audit,
    ) -> Result<Self, NodeError> {
        let RiskSetup {
            rules_file,
            operator,
        } = setup;
        let rules = load_rules(&rules_file)?;
        let log = log::AlarmLog::open(data_dir).map_err(|e| NodeError::DataDir {
            path: data_dir.join(log::FILE).display().to_string(),
            problem: e.into(),
        })?;
        let context = context.child("risk");
        let metrics = Arc::new(RiskMetrics::register(&context));
        metrics.rules.set(rules.rules.len() as i64);
        warn_of_unsupported(&rules, operator.is_some());
        audit.record(
            "risk_rules_loaded",
            json!({ "file": rules_file.display().to_string(), "rules": rule_names(&rules) }),
        );
        tracing::info!(
            file = %rules_file.display(),
            rules = rules.rules.len(),
            alarms = %log.path().display(),
            "risk rules in force"
        );
        let (events, inbox) = ::tokio::sync::mpsc::channel(INBOX);
        let (queries, asked) = ::tokio::sync::mpsc::channel(64);
        let (publish, throttled) = ::tokio::sync::watch::channel(Throttled::default());
        let webhooks = webhook::Webhooks::start(
            context.child("webhook"),
            metrics.webhook_failures.clone(),
            metrics.webhook_dropped.clone(),
        );
        let api = Arc::new(OnceLock::new());
        let proposals = proposals::Proposals::start(
            context.child("proposals"),
            operator.clone(),
            api.clone(),
            audit.clone(),
            proposals::ProposalMetrics {
                proposed: metrics.proposals_made.clone(),
                failed: metrics.proposal_failures.clone(),
                dropped: metrics.proposals_dropped.clone(),
            },
        );
        let owner = Owner {
            audit,
            proposals,
            operator: operator.is_some(),
            engine: Engine::new(rules, CAPACITY, log.next_id()),
            rules_file,
            rules_modified: None,
            log,
            host: host::Host::new(data_dir.to_path_buf()),
            publish,
            webhooks,
            metrics: metrics.clone(),
        };
        context
            .child("owner")
            .dedicated()
            .spawn(move |context| owner.run(context, inbox, asked));
        Ok(Self {
            api,
            events,
            queries,
            throttled,
            clock: Arc::new(context),
            metrics,
        })
    }

    /// Reports `event` without waiting: dropped (and counted) if the owner is behind.
    pub fn report(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            self.metrics.dropped.inc();
        }
    }

    /// Tells risk control where this node's JSON-RPC server answers, for chain `chain_id`.
    pub fn serving_at(&self, addr: std::net::SocketAddr, chain_id: u64) {
        let _ = self.api.set(proposals::OwnApi {
            url: format!("http://{addr}"),
            chain_id,
        });
    }

    /// The server's view of the alarms.
    pub fn alarms(&self) -> trellis_rpc::alarms::Alarms {
        trellis_rpc::alarms::Alarms(Arc::new(self.clone()))
    }

    fn now_ms(&self) -> u64 {
        millis(self.clock.current())
    }
}

impl AdmissionWatch for Risk {
    fn offered(&self, offers: Vec<Offer>) {
        if !offers.is_empty() {
            self.report(Event::Offered(offers));
        }
    }

    fn throttled(&self, sender: &Address) -> Option<Duration> {
        let until = *self.throttled.borrow().get(sender)?;
        let now = self.now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }
}

impl trellis_consensus::FaultSink for Risk {
    /// Weighs only evidence that verifies on its own: a rule may propose the validator's
    /// removal, so the accusation must be what anyone can check (`trellis verify-evidence`).
    fn fault(&self, evidence: &trellis_consensus::Evidence) {
        match evidence.verify() {
            Ok(validator) => self.report(Event::ConsensusFault {
                validator: validator.to_string(),
                kind: evidence.kind().name().to_owned(),
            }),
            Err(error) => {
                tracing::error!(%error, %evidence, "consensus reported a fault whose evidence does not verify: not weighed");
            }
        }
    }
}

impl trellis_rpc::alarms::AlarmSource for Risk {
    fn alarms(
        &self,
        after: u64,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<Alarm>>> + Send + '_>> {
        Box::pin(async move {
            let (reply, answer) = ::tokio::sync::oneshot::channel();
            let query = Query::Alarms {
                after,
                limit,
                reply,
            };
            self.queries.send(query).await.ok()?;
            answer.await.ok()
        })
    }
}

/// A rule asks for what this node may not do: say so at load, rather than let the rule seem
/// to watch.
fn warn_of_unsupported(rules: &Rules, operator: bool) {
    for rule in &rules.rules {
        if matches!(
            rule.measure,
            Measure::FailedAuthentication | Measure::CallerReads
        ) {
            tracing::info!(
                rule = %rule.name.0, measure = rule.measure.name(),
                "this rule weighs API callers: it fires on a node that asks them for API tokens (api_access = \"tokens\" in node.toml), never on an anonymous API"
            );
        }
        if rule.actions.contains(&Action::ProposeFreeze) && !operator {
            tracing::warn!(
                rule = %rule.name.0,
                "propose_freeze: node.toml names no risk_operator_key, so this node proposes no freeze; its alarms name the account for a governor to propose (`trellis gov propose freeze ACCOUNT`)"
            );
        }
        if rule.actions.contains(&Action::ProposeRemoval) && !operator {
            tracing::warn!(
                rule = %rule.name.0,
                "propose_removal: node.toml names no risk_operator_key, so this node proposes no removal; its alarms name the validator for a governor to propose (`trellis gov propose remove-validator KEY`)"
            );
        }
    }
}

fn millis(time: SystemTime) -> u64 {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

struct RiskMetrics {
    alarms: CounterFamily<RuleLabel>,
    dropped: Counter,
    rules: Gauge,
    throttled: Gauge,
    reload_failures: Counter,
    log_failures: Counter,
    webhook_failures: Counter,
    webhook_dropped: Counter,
    proposals_made: Counter,
    proposal_failures: Counter,
    proposals_dropped: Counter,
}

impl RiskMetrics {
    fn register(context: &tokio::Context) -> Self {
        Self {
            alarms: context.register(
                "alarms",
                "Alarms raised by the risk rules, by rule",
                raw::Family::default(),
            ),
            dropped: context.counter(
                "events_dropped",
                "Events risk control could not weigh because it was behind (its inbox was full)",
            ),
            rules: context.gauge("rules", "Risk rules in force"),
            throttled: context.gauge("throttled", "Senders and callers throttled now"),
            reload_failures: context.counter(
                "reload_failures",
                "Rules files that did not read when reloaded (the rules in force were kept)",
            ),
            log_failures: context.counter(
                "log_failures",
                "Alarms that could not be appended to the alarm log",
            ),
            webhook_failures: context.counter(
                "webhook_failures",
                "Alarm posts that did not reach their webhook",
            ),
            webhook_dropped: context.counter(
                "webhook_dropped",
                "Alarm posts dropped because too many were waiting",
            ),
            proposals_made: context.counter(
                "proposals_made",
                "Governance proposals this node made for a rule (freezes, validator removals)",
            ),
            proposal_failures: context.counter(
                "proposal_failures",
                "Proposals a rule asked for that could not be made (refused, or no receipt)",
            ),
            proposals_dropped: context.counter(
                "proposals_dropped",
                "Proposals a rule asked for, dropped because too many were waiting",
            ),
        }
    }
}

/// The owner of the engine, the alarm log and the host sampler.
struct Owner {
    audit: Audit,
    engine: Engine,
    rules_file: PathBuf,
    rules_modified: Option<SystemTime>,
    log: log::AlarmLog,
    host: host::Host,
    publish: ::tokio::sync::watch::Sender<Throttled>,
    webhooks: webhook::Webhooks,
    proposals: proposals::Proposals,
    /// Whether proposals are made (for the warning at reload).
    operator: bool,
    metrics: Arc<RiskMetrics>,
}

impl Owner {
    async fn run(
        mut self,
        context: tokio::Context,
        mut inbox: ::tokio::sync::mpsc::Receiver<Event>,
        mut asked: ::tokio::sync::mpsc::Receiver<Query>,
    ) {
        self.rules_modified = modified(&self.rules_file);
        let mut hangup =
            ::tokio::signal::unix::signal(::tokio::signal::unix::SignalKind::hangup()).ok();
        let start = context.current();
        let (mut next_tick, mut next_sample, mut next_reload) =
            (start + TICK, start + SAMPLE_EVERY, start + RELOAD_EVERY);
        loop {
            let deadline = next_tick.min(next_sample).min(next_reload);
            let hung_up = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            ::tokio::select! {
                event = inbox.recv() => match event {
                    Some(event) => self.weigh(context.current(), &event),
                    None => return,
                },
                query = asked.recv() => match query {
                    Some(query) => self.answer(query),
                    None => return,
                },
                _ = hung_up => self.reload("SIGHUP"),
                _ = context.sleep_until(deadline) => {
                    let now = context.current();
                    if now >= next_tick {
                        next_tick = now + TICK;
                        if self.engine.expire(since_epoch(now)) {
                            self.publish_throttles();
                        }
                    }
                    if now >= next_sample {
                        next_sample = now + SAMPLE_EVERY;
                        let load = self.host.sample();
                        self.weigh(now, &Event::Host(load));
                    }
                    if now >= next_reload {
                        next_reload = now + RELOAD_EVERY;
                        let seen = modified(&self.rules_file);
                        if seen != self.rules_modified {
                            self.rules_modified = seen;
                            self.reload("the file changed");
                        }
                    }
                }
            }
        }
    }

    fn weigh(&mut self, now: SystemTime, event: &Event) {
        let outcome = self.engine.observe(since_epoch(now), event);
        if outcome.throttles_changed {
            self.publish_throttles();
        }
        if !outcome.alarms.is_empty() {
            self.raise(&outcome.alarms);
        }
    }

    /// Logs, counts, records and posts `alarms`.
    fn raise(&mut self, alarms: &[Alarm]) {
        for alarm in alarms {
            let evidence = serde_json::to_string(&alarm.evidence).unwrap_or_default();
            tracing::warn!(
                id = alarm.id,
                rule = %alarm.rule,
                party = %alarm.party,
                %evidence,
                actions = ?alarm.actions,
                "ALARM {alarm}"
            );
            self.audit.record(
                "alarm",
                json!({
                    "id": alarm.id,
                    "rule": alarm.rule,
                    "party": alarm.party,
                    "observed": alarm.observed,
                    "actions": alarm.actions,
                }),
            );
            let label = RuleLabel {
                rule: alarm.rule.clone(),
            };
            self.metrics.alarms.get_or_create(&label).inc();
        }
        if let Err(error) = self.log.append(alarms) {
            self.metrics.log_failures.inc_by(alarms.len() as u64);
            tracing::error!(path = %self.log.path().display(), %error, "cannot record alarms");
        }
        for alarm in alarms {
            let webhook = self
                .engine
                .rules()
                .find(|rule| rule.name.0 == alarm.rule)
                .and_then(|rule| rule.webhook.as_deref());
            if let Some(url) = webhook {
                self.webhooks.post(url, alarm);
            }
            if let Some(motion) = motion(alarm) {
                self.proposals.propose(motion);
            }
        }
    }

    fn publish_throttles(&self) {
        let accounts: HashMap<Address, u64> = self
            .engine
            .throttled()
            .iter()
            .filter_map(|(party, until)| match party {
                Party::Account(address) => Some((*address, millis_of(*until))),
                _ => None,
            })
            .collect();
        self.metrics
            .throttled
            .set(self.engine.throttled().len() as i64);
        self.publish.send_replace(Arc::new(accounts));
    }

    fn answer(&self, query: Query) {
        match query {
            Query::Alarms {
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.log.after(after, limit));
            }
        }
    }

    /// Reads the rules file again; one that does not read leaves the rules in force.
    fn reload(&mut self, why: &str) {
        match load_rules(&self.rules_file) {
            Ok(rules) => {
                let count = rules.rules.len();
                warn_of_unsupported(&rules, self.operator);
                let detail = json!({ "why": why, "rules": rule_names(&rules) });
                self.audit.record("risk_rules_reloaded", detail);
                self.engine.replace_rules(rules);
                self.metrics.rules.set(count as i64);
                tracing::info!(file = %self.rules_file.display(), rules = count, "risk rules reloaded ({why})");
            }
            Err(error) => {
                let detail = json!({ "why": why, "error": error.to_string() });
                self.audit.record("risk_rules_refused", detail);
                self.metrics.reload_failures.inc();
                tracing::error!(%error, "risk rules not reloaded ({why}): the rules in force stay");
            }
        }
    }
}

/// The proposal `alarm`'s rule asks for, if any.
fn motion(alarm: &Alarm) -> Option<proposals::Motion> {
    let asks = |action: Action| alarm.actions.iter().any(|a| a == action.name());
    match &alarm.party {
        Party::Account(account) if asks(Action::ProposeFreeze) => {
            Some(proposals::Motion::Freeze(*account))
        }
        // The party is the validator a verified piece of evidence named (`fault`).
        Party::Validator(key) if asks(Action::ProposeRemoval) => {
            match key.parse::<alloy_primitives::B256>() {
                Ok(key) => Some(proposals::Motion::RemoveValidator(ValidatorId(key.0))),
                Err(_) => {
                    tracing::error!(%key, "an alarm names a validator by no key: no removal proposed");
                    None
                }
            }
        }
        _ => None,
    }
}

fn rule_names(rules: &Rules) -> Vec<&str> {
    rules
        .rules
        .iter()
        .map(|rule| rule.name.0.as_str())
        .collect()
}

fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

fn millis_of(time: Duration) -> u64 {
    u64::try_from(time.as_millis()).unwrap_or(u64::MAX)
}

/// When the file at `path` was last modified, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
