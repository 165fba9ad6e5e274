//! The permission each API method needs, and which callers hold it.
//!
//! | permission | methods | held by |
//! |---|---|---|
//! | `read:chain` | chain facts (id, height, gas price, fee history), blocks with their transactions' hashes, block filters, `newHeads`, validators' equivocation evidence (`trellis_getEvidence`) | everyone when the node serves `public = "blocks"`, members otherwise |
//! | `read:state` | balances, nonces, code, storage, calls, estimates, proofs, histories | members |
//! | `read:transactions` | transactions and receipts by hash or position, logs (`eth_getLogs`, log filters, `logs` subscriptions): a member's own (from or to an account of its identity; logs naming one in a topic; calls and logs of the contracts they deployed) | members |
//! | `read:all-state` | balances, nonces, proofs and histories of accounts without code that are not the caller's identity's (contracts' state is shared: any member reads it) | auditors |
//! | `read:all-transactions` | everyone's: blocks with full transactions, block receipts, pending transactions, and others' transactions and logs | auditors |
//! | `send:transactions` | `eth_sendRawTransaction` | members (the chain's own rules then decide what each account may do) |
//! | `read:audit` | `trellis_keyActivity`, `trellis_alarms` | auditors |
//!
//! A member is a registered account, not frozen or abolished, inside its registration's and
//! its identity's validity; an auditor is a member whose identity holds the `auditor` role. A
//! method this table does not name needs `read:audit`: a method added later is closed until
//! it is classed.

use serde_json::Value;
use std::fmt;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    Chain,
    State,
    /// A caller's own transactions (the API narrows the answers to them).
    Transactions,
    AllTransactions,
    /// Others' accounts' balances, nonces, proofs and histories (the API refuses a member
    /// them; no method needs it as a whole).
    AllState,
    Send,
    Audit,
}

impl Permission {
    /// Its name, as refusals and the README give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chain => "read:chain",
            Self::State => "read:state",
            Self::Transactions => "read:transactions",
            Self::AllTransactions => "read:all-transactions",
            Self::AllState => "read:all-state",
            Self::Send => "send:transactions",
            Self::Audit => "read:audit",
        }
    }

    /// The permission `method` needs when called with `params` (the raw JSON parameters; a
    /// block asked with full transactions, or a subscription other than `newHeads`, needs
    /// `read:all-transactions`). A method the table does not class needs `read:audit`.
    pub fn of(method: &str, params: Option<&str>) -> Self {
        Self::classed(method, params).unwrap_or(Self::Audit)
    }

    /// The permission the table gives `method`, if it classes it.
    pub fn classed(method: &str, params: Option<&str>) -> Option<Self> {
        Some(match method {
            "web3_clientVersion"
            | "web3_sha3"
            | "net_version"
            | "net_listening"
            | "net_peerCount"
            | "eth_chainId"
            | "eth_syncing"
            | "eth_blockNumber"
            | "eth_accounts"
            | "eth_gasPrice"
            | "eth_maxPriorityFeePerGas"
            | "eth_feeHistory"
            | "eth_getBlockTransactionCountByHash"
            | "eth_getBlockTransactionCountByNumber"
            | "eth_newBlockFilter"
            | "eth_getFilterChanges"
            | "eth_uninstallFilter"
            | "eth_unsubscribe"
            // Which validator broke the protocol is every member's business.
            | "trellis_getEvidence" => Self::Chain,
            // Ids of filters and subscriptions are random: a caller polls only its own.
            "eth_getBlockByNumber" | "eth_getBlockByHash" => {
                if param(params, 1).as_ref().and_then(Value::as_bool) == Some(true) {
                    Self::AllTransactions
                } else {
                    Self::Chain
                }
            }
            "eth_subscribe" => match param(params, 0).as_ref().and_then(Value::as_str) {
                Some("newHeads") => Self::Chain,
                Some("logs") => Self::Transactions,
                _ => Self::AllTransactions,
            },
            "eth_getBalance"
            | "eth_getTransactionCount"
            | "eth_getCode"
            | "eth_getStorageAt"
            | "eth_call"
            | "eth_estimateGas"
            | "trellis_getProof"
            | "trellis_getHistory" => Self::State,
            "eth_getTransactionByHash"
            | "eth_getTransactionByBlockHashAndIndex"
            | "eth_getTransactionByBlockNumberAndIndex"
            | "eth_getTransactionReceipt"
            | "eth_getLogs"
            | "eth_newFilter"
            | "eth_getFilterLogs" => Self::Transactions,
            "eth_getBlockReceipts" | "eth_newPendingTransactionFilter" => Self::AllTransactions,
            "eth_sendRawTransaction" => Self::Send,
            "trellis_keyActivity" | "trellis_alarms" => Self::Audit,
            _ => return None,
        })
    }
}

impl Permission {
    /// Whether a call needing it reads data the public may not: state, transactions, the
    /// audit methods (what the audit log records of each caller).
    pub fn reads_protected_data(self) -> bool {
        matches!(
            self,
            Self::State | Self::Transactions | Self::AllTransactions | Self::AllState | Self::Audit
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `index`th parameter of a positional parameter list.
fn param(params: Option<&str>, index: usize) -> Option<Value> {
    let list: Vec<Value> = serde_json::from_str(params?).ok()?;
    list.into_iter().nth(index)
}

/// What a caller is to the API, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// No token, or the token's account is not (or no longer) a member.
    Public,
    Member,
    Auditor,
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "the public",
            Self::Member => "members",
            Self::Auditor => "auditors",
        })
    }
}

/// What callers without a token may read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublicReads {
    /// Nothing: every call needs a token.
    #[default]
    Nothing,
    /// `read:chain`: chain facts and blocks with their transactions' hashes.
    Blocks,
}

/// A node's access policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub public: PublicReads,
}

impl Policy {
    /// The lowest standing that holds `permission`.
    pub fn needs(&self, permission: Permission) -> Standing {
        match permission {
            Permission::Chain if self.public == PublicReads::Blocks => Standing::Public,
            Permission::Chain | Permission::State | Permission::Transactions | Permission::Send => {
                Standing::Member
            }
            Permission::AllTransactions | Permission::AllState | Permission::Audit => {
                Standing::Auditor
            }
        }
    }

    /// Whether a caller of `standing` may call with `permission`.
    pub fn allows(&self, standing: Standing, permission: Permission) -> bool {
        standing >= self.needs(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyones_transactions_are_the_auditors() {
        let cases = [
            (
                "eth_getBlockByNumber",
                Some(r#"["latest",false]"#),
                Permission::Chain,
            ),
            (
                "eth_getBlockByNumber",
                Some(r#"["latest"]"#),
                Permission::Chain,
            ),
            (
                "eth_getBlockByHash",
                Some(r#"["0x00",true]"#),
                Permission::AllTransactions,
            ),
            ("eth_subscribe", Some(r#"["newHeads"]"#), Permission::Chain),
            (
                "eth_subscribe",
                Some(r#"["logs",{}]"#),
                Permission::Transactions,
            ),
            (
                "eth_subscribe",
                Some(r#"["newPendingTransactions"]"#),
                Permission::AllTransactions,
            ),
            ("eth_newFilter", None, Permission::Transactions),
            ("eth_subscribe", None, Permission::AllTransactions),
            ("eth_getTransactionReceipt", None, Permission::Transactions),
            ("eth_getBlockReceipts", None, Permission::AllTransactions),
            ("eth_getBalance", None, Permission::State),
            ("eth_sendRawTransaction", None, Permission::Send),
            ("trellis_alarms", None, Permission::Audit),
            ("trellis_getEvidence", None, Permission::Chain),
            ("debug_traceTransaction", None, Permission::Audit),
        ];
        for (method, params, needs) in cases {
            assert_eq!(Permission::of(method, params), needs, "{method} {params:?}");
        }
        assert_eq!(Permission::classed("debug_traceTransaction", None), None);
    }

    #[test]
    fn standings_hold_what_the_policy_grants() {
        let closed = Policy::default();
        let open = Policy {
            public: PublicReads::Blocks,
        };
        assert!(!closed.allows(Standing::Public, Permission::Chain));
        assert!(open.allows(Standing::Public, Permission::Chain));
        assert!(!open.allows(Standing::Public, Permission::State));
        assert!(open.allows(Standing::Member, Permission::Send));
        assert!(!open.allows(Standing::Member, Permission::Audit));
        assert!(closed.allows(Standing::Auditor, Permission::Audit));
        assert!(closed.allows(Standing::Auditor, Permission::Transactions));
        assert!(!open.allows(Standing::Member, Permission::AllTransactions));
        assert!(!open.allows(Standing::Member, Permission::AllTransactions));
    }
}
