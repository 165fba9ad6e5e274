//! How a proposal's action reads to the governors voting on it.

use super::action::Action;
use crate::Window;
use alloy_primitives::{U256, hex};

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let window = |w: &Window| match w.until {
            Some(until) => format!("valid from block {} until block {until}", w.from),
            None => format!("valid from block {}", w.from),
        };
        match self {
            Self::AddOrganisation { id, name } => write!(f, "add organisation {id} {name:?}"),
            Self::AddIdentity {
                id,
                organisation,
                window: w,
            } => write!(
                f,
                "add identity {id} to organisation {organisation}, {}",
                window(w)
            ),
            Self::AddAccount {
                account,
                identity,
                window: w,
            } => write!(
                f,
                "add account {account} to identity {identity}, {}",
                window(w)
            ),
            Self::SetIdentityWindow {
                identity,
                window: w,
            } => write!(f, "make identity {identity} {}", window(w)),
            Self::SetAccountWindow { account, window: w } => {
                write!(f, "make account {account} {}", window(w))
            }
            Self::GrantRole { identity, role } => {
                write!(f, "grant the {role} role to identity {identity}")
            }
            Self::RevokeRole { identity, role } => {
                write!(f, "revoke the {role} role from identity {identity}")
            }
            Self::SetAccountStatus { account, status } => {
                write!(f, "make account {account} {status}")
            }
            Self::RotateAccount {
                account, successor, ..
            } => write!(f, "hand account {account}'s registration to {successor}"),
            Self::RetireAccount {
                account,
                compromised_since: None,
            } => write!(f, "revoke account {account}'s key"),
            Self::RetireAccount {
                account,
                compromised_since: Some(since),
            } => write!(
                f,
                "report account {account}'s key compromised, suspected from block {since}"
            ),
            Self::SetGovernorWeight { identity, weight } => {
                write!(f, "give governor identity {identity} weight {weight}")
            }
            Self::SetThresholds(thresholds) => write!(f, "require {thresholds}"),
            Self::SetLimits { holder, limits } => {
                let wei = |limit: Option<U256>| {
                    limit.map_or_else(|| "no limit".to_owned(), |v| format!("{v} wei"))
                };
                write!(
                    f,
                    "limit {holder} to {} per transaction and {} per day, holding transfers above {}",
                    wei(limits.per_transaction),
                    wei(limits.per_day),
                    wei(limits.hold_above)
                )
            }
            Self::RestrictMethod {
                contract,
                selector,
                role: Some(role),
            } => write!(
                f,
                "restrict function {selector} of {contract} to the {role} role"
            ),
            Self::RestrictMethod {
                contract,
                selector,
                role: None,
            } => write!(f, "let anyone call function {selector} of {contract}"),
            Self::AddValidator { key, p2p, operator } => {
                write!(f, "add validator 0x{} at {p2p}", hex::encode(key.0))?;
                match operator {
                    Some(operator) => write!(f, ", operated by identity {operator}"),
                    None => Ok(()),
                }
            }
            Self::AddFullNode { key, p2p, operator } => {
                write!(
                    f,
                    "let full node 0x{} at {p2p} follow the chain",
                    hex::encode(key.0)
                )?;
                match operator {
                    Some(operator) => write!(f, ", operated by identity {operator}"),
                    None => Ok(()),
                }
            }
            Self::RemoveFullNode { key } => {
                write!(f, "cut full node 0x{} off", hex::encode(key.0))
            }
            Self::ExpireNodeKey { key, until } => write!(
                f,
                "end node key 0x{}'s term before epoch {}",
                hex::encode(key.0),
                until.0
            ),
            Self::RemoveValidator { key } => {
                write!(f, "remove validator 0x{}", hex::encode(key.0))
            }
            Self::CompromiseValidator(report) => {
                write!(
                    f,
                    "report validator 0x{} compromised, suspected from block {}",
                    hex::encode(report.key.0),
                    report.since
                )?;
                match &report.successor {
                    Some(successor) => write!(
                        f,
                        ", its seat handed to 0x{} at {}",
                        hex::encode(successor.key.0),
                        successor.p2p
                    ),
                    None => write!(f, ", its seat removed"),
                }
            }
            Self::SetChainParams(params) => write!(f, "run blocks with {params}"),
        }
    }
}
