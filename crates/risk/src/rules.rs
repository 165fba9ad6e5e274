//! The rules file: what each rule measures, over which window, above what, and what it does.
//!
//! ```toml
//! [[rule]]
//! name = "sender-burst"
//! measure = "sender_transactions"
//! window = "1m"
//! above = 100
//! actions = ["throttle"]
//! ```
//!
//! Every rule crossed raises an alarm (log, metric, alarm record, and a POST to `webhook` if
//! it names one); `actions` adds `throttle` (the sender or caller is slowed) or
//! `propose_freeze` (a freeze of the sender's account is proposed through governance) or, for
//! `consensus_faults`, `propose_removal` (removing the validator that signed conflicting votes
//! is proposed through governance).

use serde::Deserialize;
use std::{collections::BTreeSet, ops::Range, time::Duration};
use toml::Spanned;

/// What a rule measures. Per-party measures count for each sender (an account) or caller (an
/// API identity) on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Transactions a sender offers in the window.
    SenderTransactions,
    /// Value (wei) a sender's transactions move in the window.
    SenderValue,
    /// Transactions refused from a sender in the window.
    RefusedTransactions,
    /// Failed authentications of an API caller in the window.
    FailedAuthentication,
    /// Peers not in the network's set trying to connect in the window.
    UnknownPeers,
    /// Conflicting votes (equivocation) seen in the window.
    ConsensusFaults,
    /// The host's CPU use, percent, sustained over the window.
    HostCpuPercent,
    /// The host's memory use, percent, sustained over the window.
    HostMemoryPercent,
    /// The data directory's filesystem use, percent.
    HostDiskPercent,
    /// Records an API caller reads (blocks, transactions, state) in the window.
    CallerReads,
}

impl Measure {
    const ALL: [(&'static str, Self); 10] = [
        ("sender_transactions", Self::SenderTransactions),
        ("sender_value", Self::SenderValue),
        ("refused_transactions", Self::RefusedTransactions),
        ("failed_authentication", Self::FailedAuthentication),
        ("unknown_peers", Self::UnknownPeers),
        ("consensus_faults", Self::ConsensusFaults),
        ("host_cpu_percent", Self::HostCpuPercent),
        ("host_memory_percent", Self::HostMemoryPercent),
        ("host_disk_percent", Self::HostDiskPercent),
        ("caller_reads", Self::CallerReads),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The measure's name in a rules file.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(name, _)| name)
    }

    fn names() -> String {
        Self::ALL.map(|(name, _)| name).join(", ")
    }

    /// Whether the measure is kept per sender or caller (who can be throttled).
    pub fn per_party(self) -> bool {
        matches!(
            self,
            Self::SenderTransactions
                | Self::SenderValue
                | Self::RefusedTransactions
                | Self::FailedAuthentication
                | Self::CallerReads
        )
    }

    /// Whether the party is an account (whose freeze governance can be asked for).
    pub fn per_account(self) -> bool {
        matches!(
            self,
            Self::SenderTransactions | Self::SenderValue | Self::RefusedTransactions
        )
    }

    /// Whether the alarm names a validator (whose removal governance can be asked for).
    pub fn names_validator(self) -> bool {
        self == Self::ConsensusFaults
    }

    fn unit(self) -> Unit {
        match self {
            Self::SenderValue => Unit::Wei,
            Self::HostCpuPercent | Self::HostMemoryPercent | Self::HostDiskPercent => Unit::Percent,
            _ => Unit::Count,
        }
    }
}

/// What a threshold is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Count,
    Wei,
    Percent,
}

/// A rule's threshold, in its measure's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    Count(u64),
    Wei(u128),
    Percent(u8),
}

impl Threshold {
    /// The threshold as a number in its unit (events, wei, percent).
    pub fn amount(self) -> u128 {
        match self {
            Self::Count(n) => u128::from(n),
            Self::Wei(n) => n,
            Self::Percent(n) => u128::from(n),
        }
    }
}

/// What a crossed rule does besides raising its alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Throttle,
    ProposeFreeze,
    ProposeRemoval,
}

impl Action {
    /// The action's name in a rules file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::ProposeFreeze => "propose_freeze",
            Self::ProposeRemoval => "propose_removal",
        }
    }
}

/// A rule's name, unique in its file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleName(pub String);

/// How far back a rule looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Duration);

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: RuleName,
    pub measure: Measure,
    pub window: Window,
    pub above: Threshold,
    pub actions: Vec<Action>,
    /// Where the alarm is POSTed (JSON): https, or http on the operator's own network.
    pub webhook: Option<String>,
}

/// A whole rules file, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// Why a rules file was refused; `line` is 1-based.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: unknown measure {found:?}; one of: {known}")]
    UnknownMeasure {
        line: usize,
        found: String,
        known: String,
    },
    #[error(
        "line {line}: window {found:?} is not a duration: a number and s, m, h or d (\"30s\", \"5m\", \"1h\")"
    )]
    BadWindow { line: usize, found: String },
    #[error("line {line}: threshold {found} does not fit {measure}: {expected}")]
    BadThreshold {
        line: usize,
        found: String,
        measure: &'static str,
        expected: &'static str,
    },
    #[error(
        "line {line}: unknown action {found:?}; one of: throttle, propose_freeze, propose_removal"
    )]
    UnknownAction { line: usize, found: String },
    #[error("line {line}: {action} needs a measure kept per {party}, not {measure}")]
    ActionDoesNotFit {
        line: usize,
        action: &'static str,
        party: &'static str,
        measure: &'static str,
    },
    #[error("line {line}: webhook {found:?} is not an http:// or https:// URL")]
    BadWebhook { line: usize, found: String },
    #[error("line {line}: a second rule named {name:?}; names must be unique")]
    DuplicateName { line: usize, name: String },
}

/// The file as written, with where each field is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    measure: Spanned<String>,
    window: Spanned<String>,
    above: Spanned<toml::Value>,
    #[serde(default)]
    actions: Vec<Spanned<String>>,
    webhook: Option<Spanned<String>>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

impl Rules {
    /// Parses and checks a rules file's `text`; the first fault refuses it whole.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|error| RulesError::Syntax {
            line: error.span().map_or(1, |span| line_of(text, span.start)),
            message: error.message().to_owned(),
        })?;
        let at = |span: Range<usize>| line_of(text, span.start);
        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(raw.rule.len());
        for spanned in raw.rule {
            let line = at(spanned.span());
            let raw = spanned.into_inner();
            let rule = check(raw, &at)?;
            if !names.insert(rule.name.clone()) {
                return Err(RulesError::DuplicateName {
                    line,
                    name: rule.name.0,
                });
            }
            rules.push(rule);
        }
        Ok(Self { rules })
    }
}

fn check(raw: RawRule, at: &impl Fn(Range<usize>) -> usize) -> Result<Rule, RulesError> {
    let measure =
        Measure::parse(raw.measure.get_ref()).ok_or_else(|| RulesError::UnknownMeasure {
            line: at(raw.measure.span()),
            found: raw.measure.get_ref().clone(),
            known: Measure::names(),
        })?;
    let measure_name = measure.name();
    let window = parse_window(raw.window.get_ref()).ok_or_else(|| RulesError::BadWindow {
        line: at(raw.window.span()),
        found: raw.window.get_ref().clone(),
    })?;
    let above = threshold(measure, raw.above.get_ref()).ok_or_else(|| {
        let expected = match measure.unit() {
            Unit::Count => "a whole number of events",
            Unit::Wei => "a value: wei as a whole number, or \"N ether\" / \"N gwei\"",
            Unit::Percent => "a whole percentage from 1 to 100",
        };
        RulesError::BadThreshold {
            line: at(raw.above.span()),
            found: raw.above.get_ref().to_string(),
            measure: measure_name,
            expected,
        }
    })?;
    let mut actions = Vec::new();
    for action in &raw.actions {
        let line = at(action.span());
        let (parsed, fits, name, party) = match action.get_ref().as_str() {
            "throttle" => (
                Action::Throttle,
                measure.per_party(),
                "throttle",
                "sender or caller",
            ),
            "propose_freeze" => (
                Action::ProposeFreeze,
                measure.per_account(),
                "propose_freeze",
                "account",
            ),
            "propose_removal" => (
                Action::ProposeRemoval,
                measure.names_validator(),
                "propose_removal",
                "validator",
            ),
            other => {
                return Err(RulesError::UnknownAction {
                    line,
                    found: other.to_owned(),
                });
            }
        };
        if !fits {
            return Err(RulesError::ActionDoesNotFit {
                line,
                action: name,
                party,
                measure: measure_name,
            });
        }
        actions.push(parsed);
    }
    actions.sort();
    actions.dedup();
    let webhook = match raw.webhook {
        Some(url) if !is_http_url(url.get_ref()) => {
            return Err(RulesError::BadWebhook {
                line: at(url.span()),
                found: url.into_inner(),
            });
        }
        other => other.map(Spanned::into_inner),
    };
    Ok(Rule {
        name: RuleName(raw.name.into_inner()),
        measure,
        window,
        above,
        actions,
        webhook,
    })
}

/// "30s", "5m", "1h", "1d".
fn parse_window(text: &str) -> Option<Window> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: u64 = text[..text.len() - unit.len_utf8()].trim().parse().ok()?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60)?,
        'h' => number.checked_mul(3_600)?,
        'd' => number.checked_mul(86_400)?,
        _ => return None,
    };
    (seconds > 0).then(|| Window(Duration::from_secs(seconds)))
}

fn threshold(measure: Measure, value: &toml::Value) -> Option<Threshold> {
    match (measure.unit(), value) {
        (Unit::Count, toml::Value::Integer(n)) => u64::try_from(*n).ok().map(Threshold::Count),
        (Unit::Percent, toml::Value::Integer(n)) => u8::try_from(*n)
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Threshold::Percent),
        (Unit::Wei, toml::Value::Integer(n)) => u128::try_from(*n).ok().map(Threshold::Wei),
        (Unit::Wei, toml::Value::String(text)) => parse_value(text).map(Threshold::Wei),
        _ => None,
    }
}

/// "1000 ether", "5 gwei", "12 wei" (whole numbers).
fn parse_value(text: &str) -> Option<u128> {
    let (number, unit) = text.trim().split_once(' ')?;
    let number: u128 = number.parse().ok()?;
    let scale: u128 = match unit.trim() {
        "ether" => 1_000_000_000_000_000_000,
        "gwei" => 1_000_000_000,
        "wei" => 1,
        _ => return None,
    };
    number.checked_mul(scale)
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[rule]]
name = "sender-burst"
measure = "sender_transactions"
window = "1m"
above = 100
actions = ["throttle"]

[[rule]]
name = "large-value"
measure = "sender_value"
window = "1h"
above = "1000 ether"
actions = ["propose_freeze", "throttle"]
webhook = "http://10.0.0.5:8080/alarms"

[[rule]]
name = "cpu"
measure = "host_cpu_percent"
window = "5m"
above = 90
"#;

    #[test]
    fn a_good_file_reads_whole() {
        let rules = Rules::parse(GOOD).unwrap();
        assert_eq!(rules.rules.len(), 3);
        let burst = &rules.rules[0];
        assert_eq!(burst.measure, Measure::SenderTransactions);
        assert_eq!(burst.window, Window(Duration::from_secs(60)));
        assert_eq!(burst.above, Threshold::Count(100));
        assert_eq!(burst.actions, vec![Action::Throttle]);
        let value = &rules.rules[1];
        assert_eq!(value.above, Threshold::Wei(1_000 * 10u128.pow(18)));
        assert_eq!(value.actions, vec![Action::Throttle, Action::ProposeFreeze]);
        assert_eq!(
            value.webhook.as_deref(),
            Some("http://10.0.0.5:8080/alarms")
        );
        assert_eq!(rules.rules[2].above, Threshold::Percent(90));
        assert!(rules.rules[2].actions.is_empty(), "an alarm only");
        assert_eq!(Rules::parse("").unwrap(), Rules::default());
    }

    /// `propose_removal` fits the one measure whose alarm names a validator, and no other.
    #[test]
    fn a_removal_is_proposed_only_for_a_validator_caught_equivocating() {
        let rule = |measure: &str| {
            format!(
                "[[rule]]\nname = \"r\"\nmeasure = \"{measure}\"\nwindow = \"1h\"\nabove = 0\nactions = [\"propose_removal\"]\n"
            )
        };
        let rules = Rules::parse(&rule("consensus_faults")).unwrap();
        assert_eq!(rules.rules[0].actions, vec![Action::ProposeRemoval]);
        let refused = Rules::parse(&rule("sender_transactions")).unwrap_err();
        assert!(
            matches!(
                refused,
                RulesError::ActionDoesNotFit {
                    line: 6,
                    action: "propose_removal",
                    party: "validator",
                    ..
                }
            ),
            "{refused}"
        );
    }

    /// Each fault is named with the line it is on.
    #[test]
    fn a_bad_file_is_refused_with_the_line_at_fault() {
        let case = |from: &str, to: &str| Rules::parse(&GOOD.replacen(from, to, 1)).unwrap_err();
        assert!(matches!(
            case("measure = \"sender_value\"", "measure = \"sender_vale\""),
            RulesError::UnknownMeasure { line: 11, .. }
        ));
        assert!(matches!(
            case("window = \"1h\"", "window = \"an hour\""),
            RulesError::BadWindow { line: 12, .. }
        ));
        assert!(matches!(
            case("above = \"1000 ether\"", "above = \"1000 eth\""),
            RulesError::BadThreshold { line: 13, .. }
        ));
        assert!(matches!(
            case("above = 90", "above = 190"),
            RulesError::BadThreshold { line: 21, .. }
        ));
        assert!(matches!(
            case("actions = [\"throttle\"]", "actions = [\"ban\"]"),
            RulesError::UnknownAction { line: 7, .. }
        ));
        assert!(matches!(
            case("above = 90", "above = 90\nactions = [\"throttle\"]"),
            RulesError::ActionDoesNotFit { line: 22, .. }
        ));
        assert!(matches!(
            case("http://10.0.0.5", "ftp://10.0.0.5"),
            RulesError::BadWebhook { line: 15, .. }
        ));
        assert!(matches!(
            case("name = \"cpu\"", "name = \"sender-burst\""),
            RulesError::DuplicateName { line: 17, .. }
        ));
        let syntax = case("above = 100", "above = = 100");
        assert!(
            matches!(syntax, RulesError::Syntax { line: 6, .. }),
            "{syntax}"
        );
        let unknown = case("window = \"1m\"", "window = \"1m\"\nwindw = \"1m\"");
        assert!(
            matches!(unknown, RulesError::Syntax { line: 6, .. }),
            "{unknown}"
        );
        assert!(
            case("\"sender_value\"", "\"value\"")
                .to_string()
                .starts_with("line 11: "),
            "every message starts with its line"
        );
    }
}
