//! `trellis gov`: the consortium's governance from the command line, through a node's JSON-RPC.

use alloy_primitives::{Selector, U256, keccak256};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::{net::SocketAddr, path::PathBuf};
use trellis_client::{GovernanceClient, GovernanceEvent, Node, open_signer};
use trellis_governance::{
    AccountStatus, ChainParams, IdentityId, LimitHolder, Limits, OrgId, Role, ValidatorCompromise,
    Window,
    contracts::{Action, Proposal, ProposalId, Thresholds},
};
use trellis_types::{Address, Height, ValidatorId};

#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Put a change of the rules to the governors (your identity approves it at once).
    Propose {
        #[command(flatten)]
        signer: Signer,
        /// How many blocks the proposal stays open for votes.
        #[arg(long, default_value_t = 1_000)]
        voting_blocks: u64,
        #[command(subcommand)]
        action: ActionCommand,
    },
    /// Approve (or with --reject, reject) proposal ID with your identity's weight.
    Vote {
        #[command(flatten)]
        signer: Signer,
        id: u64,
        #[arg(long)]
        reject: bool,
    },
    /// One proposal: what it does, its votes and status.
    Show {
        #[command(flatten)]
        node: NodeArg,
        id: u64,
    },
    /// Every proposal, newest first.
    List {
        #[command(flatten)]
        node: NodeArg,
    },
}

#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node's JSON-RPC address.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// The API token to present, for a node that asks callers for one (`trellis api token`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TRELLIS_API_TOKEN",
        hide_env_values = true
    )]
    api_token: Option<String>,
    /// For an https:// node: the authority that issued its certificate (PEM).
    #[arg(long, value_name = "FILE", env = "TRELLIS_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: your certificate (PEM), issued by the consortium's members' authority and
    /// naming your account; with --tls-key.
    #[arg(long, value_name = "FILE", env = "TRELLIS_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "TRELLIS_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Signer {
    #[command(flatten)]
    node: NodeArg,
    /// The signing account's key: a key file (a `trellis keys new` bundle, or a list of
    /// accounts such as `dev-accounts.json` with --from), or a key on an HSM token,
    /// `pkcs11:token=LABEL;object=KEY?module-path=LIB&pin-source=file:PIN`.
    #[arg(long, alias = "signer", value_name = "FILE|PKCS11-URI")]
    key: String,
    /// Which account of the key file signs.
    #[arg(long, value_name = "ADDRESS")]
    from: Option<Address>,
    /// The file whose first line opens a sealed key file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// What a proposal does once it passes.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Stop every transaction of ACCOUNT until it is unfrozen.
    Freeze {
        account: Address,
    },
    /// Let a frozen ACCOUNT transact again.
    Unfreeze {
        account: Address,
    },
    /// Stop ACCOUNT for good.
    Abolish {
        account: Address,
    },
    AddOrganisation {
        id: u64,
        name: String,
    },
    AddIdentity {
        id: u64,
        #[arg(long)]
        organisation: u64,
        #[command(flatten)]
        window: WindowArgs,
    },
    AddAccount {
        account: Address,
        #[arg(long)]
        identity: u64,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// When IDENTITY is valid: --valid-until ends it (the member is removed from that block on;
    /// its records stay).
    SetIdentityValidity {
        identity: u64,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// When ACCOUNT is valid (its identity and status stay).
    SetAccountValidity {
        account: Address,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Hand ACCOUNT's registration (identity, roles, limits) to SUCCESSOR, for a holder who
    /// lost ACCOUNT's key; PROOF from `trellis keys rotation-proof` signed by SUCCESSOR.
    RotateAccount {
        account: Address,
        successor: Address,
        proof: alloy_primitives::Bytes,
    },
    /// Retire ACCOUNT's key for good (revoked), or with --compromised-since report it leaked.
    RetireAccount {
        account: Address,
        /// The first block the key is suspected of having been misused in.
        #[arg(long, value_name = "BLOCK")]
        compromised_since: Option<u64>,
    },
    /// Grant ROLE (a built-in name such as transactor, or an application's own) to IDENTITY.
    GrantRole {
        identity: u64,
        role: String,
    },
    RevokeRole {
        identity: u64,
        role: String,
    },
    /// Give governor IDENTITY a voting weight.
    SetWeight {
        identity: u64,
        weight: u64,
    },
    /// Participation and approval a proposal needs, in basis points (6666 = 66.66 %).
    SetThresholds {
        participation_bps: u16,
        approval_bps: u16,
    },
    /// Only transactions whose signer holds ROLE may call FUNCTION of CONTRACT, directly or
    /// through other contracts. FUNCTION: a selector (0xa9059cbb) or a signature
    /// (`transfer(address,uint256)`).
    RestrictMethod {
        contract: Address,
        #[arg(value_parser = parse_selector)]
        function: Selector,
        role: String,
    },
    /// Value limits of IDENTITY's accounts, in wei (leave one out for no limit of that kind;
    /// both out lifts them).
    SetLimits {
        identity: u64,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// The same for every identity holding ROLE (the strictest limit applies).
    SetRoleLimits {
        role: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Let anyone call FUNCTION of CONTRACT again.
    UnrestrictMethod {
        contract: Address,
        #[arg(value_parser = parse_selector)]
        function: Selector,
    },
    /// Add a validator from the next epoch on: its ed25519 public key (`trellis keys new`) and
    /// the p2p address (IP:PORT) where the other nodes reach it.
    AddValidator {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
        p2p: SocketAddr,
        /// The identity operating it (holding the validator-operator role).
        #[arg(long)]
        operator: Option<u64>,
    },
    /// The block gas limit and the base fee (wei per gas; 0 makes gas free) from the next
    /// block on.
    SetChainParams {
        #[arg(long)]
        gas_limit: u64,
        #[arg(long, value_name = "WEI")]
        base_fee: u64,
    },
    /// Remove a validator from the next epoch on.
    RemoveValidator {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
    },
    /// Let a full node follow the chain from the next epoch on: the validators accept links
    /// from its transport key PUBLIC_KEY, reached at P2P.
    AddFullNode {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
        p2p: SocketAddr,
        /// The identity operating it (holding the validator-operator role).
        #[arg(long)]
        operator: Option<u64>,
    },
    /// Cut a full node off from the next epoch on.
    RemoveFullNode {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
    },
    /// Make node key PUBLIC_KEY (a validator's or a full node's) expire: its term ends before
    /// --epoch, so its operator must rotate it by then (the node warns at each epoch before).
    ExpireNodeKey {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
        /// The first epoch the key no longer serves in.
        #[arg(long)]
        epoch: u64,
    },
    /// Report validator PUBLIC_KEY leaked, suspected of misuse from --compromised-since: it
    /// leaves the set at the next epoch; --new hands its seat to a successor key (which signs
    /// its consent here).
    CompromiseValidator {
        #[arg(value_parser = parse_validator_key)]
        public_key: ValidatorId,
        /// The first block the key is suspected of having been misused in.
        #[arg(long, value_name = "BLOCK")]
        compromised_since: u64,
        #[command(flatten)]
        successor: crate::seat::SuccessorArgs,
    },
}

/// An ed25519 public key as 0x and 64 hex digits.
pub(crate) fn parse_validator_key(text: &str) -> Result<ValidatorId, String> {
    let key = text
        .parse::<alloy_primitives::B256>()
        .map_err(|_| format!("{text:?} is not a validator's public key (0x and 64 hex digits)"))?;
    let id = ValidatorId(key.0);
    if !trellis_crypto::is_valid_validator_id(&id) {
        return Err(format!("{text:?} is not an ed25519 public key"));
    }
    Ok(id)
}

/// A 4-byte selector, given as hex or as the function's signature.
fn parse_selector(text: &str) -> Result<Selector, String> {
    if text.starts_with("0x") {
        return text
            .parse::<Selector>()
            .map_err(|_| format!("{text:?} is not a 4-byte selector (0x and 8 hex digits)"));
    }
    if !text.contains('(') || !text.ends_with(')') || text.contains(' ') {
        return Err(format!(
            "{text:?} is neither a selector (0xa9059cbb) nor a signature without spaces (transfer(address,uint256))"
        ));
    }
    Ok(Selector::from_slice(&keccak256(text.as_bytes())[..4]))
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// The most one transaction may send.
    #[arg(long, value_name = "WEI")]
    per_transaction: Option<U256>,
    /// The most one identity may send in a UTC day (of the blocks' time).
    #[arg(long, value_name = "WEI")]
    per_day: Option<U256>,
    /// Transfers above this wait in escrow until an approver of another identity co-signs.
    #[arg(long, value_name = "WEI")]
    hold_above: Option<U256>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            per_transaction: self.per_transaction.filter(|v| !v.is_zero()),
            per_day: self.per_day.filter(|v| !v.is_zero()),
            hold_above: self.hold_above.filter(|v| !v.is_zero()),
        }
    }
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// The first block at which it is valid.
    #[arg(long, default_value_t = 0)]
    valid_from: u64,
    /// The block from which it is no longer valid (default: never expires).
    #[arg(long)]
    valid_until: Option<u64>,
}

impl WindowArgs {
    fn window(&self) -> Window {
        Window {
            from: Height(self.valid_from),
            until: self.valid_until.map(Height),
        }
    }
}

impl ActionCommand {
    /// The action; a successor key named in it signs with `passphrase` opening its file.
    fn action(&self, passphrase: Option<&trellis_crypto::Passphrase>) -> Result<Action> {
        let status = |account: &Address, status| Action::SetAccountStatus {
            account: *account,
            status,
        };
        Ok(match self {
            Self::Freeze { account } => status(account, AccountStatus::Frozen),
            Self::Unfreeze { account } => status(account, AccountStatus::Normal),
            Self::Abolish { account } => status(account, AccountStatus::Abolished),
            Self::AddOrganisation { id, name } => Action::AddOrganisation {
                id: OrgId(*id),
                name: name.clone(),
            },
            Self::AddIdentity {
                id,
                organisation,
                window,
            } => Action::AddIdentity {
                id: IdentityId(*id),
                organisation: OrgId(*organisation),
                window: window.window(),
            },
            Self::AddAccount {
                account,
                identity,
                window,
            } => Action::AddAccount {
                account: *account,
                identity: IdentityId(*identity),
                window: window.window(),
            },
            Self::SetIdentityValidity { identity, window } => Action::SetIdentityWindow {
                identity: IdentityId(*identity),
                window: window.window(),
            },
            Self::SetAccountValidity { account, window } => Action::SetAccountWindow {
                account: *account,
                window: window.window(),
            },
            Self::RotateAccount {
                account,
                successor,
                proof,
            } => Action::RotateAccount {
                account: *account,
                successor: *successor,
                proof: proof.clone(),
            },
            Self::RetireAccount {
                account,
                compromised_since,
            } => Action::RetireAccount {
                account: *account,
                compromised_since: compromised_since.map(trellis_types::Height),
            },
            Self::GrantRole { identity, role } => Action::GrantRole {
                identity: IdentityId(*identity),
                role: Role::named(role),
            },
            Self::RevokeRole { identity, role } => Action::RevokeRole {
                identity: IdentityId(*identity),
                role: Role::named(role),
            },
            Self::SetWeight { identity, weight } => Action::SetGovernorWeight {
                identity: IdentityId(*identity),
                weight: *weight,
            },
            Self::SetThresholds {
                participation_bps,
                approval_bps,
            } => Action::SetThresholds(Thresholds {
                participation_bps: *participation_bps,
                approval_bps: *approval_bps,
            }),
            Self::RestrictMethod {
                contract,
                function,
                role,
            } => Action::RestrictMethod {
                contract: *contract,
                selector: *function,
                role: Some(Role::named(role)),
            },
            Self::SetLimits { identity, limits } => Action::SetLimits {
                holder: LimitHolder::Identity(IdentityId(*identity)),
                limits: limits.limits(),
            },
            Self::SetRoleLimits { role, limits } => Action::SetLimits {
                holder: LimitHolder::Role(Role::named(role)),
                limits: limits.limits(),
            },
            Self::UnrestrictMethod { contract, function } => Action::RestrictMethod {
                contract: *contract,
                selector: *function,
                role: None,
            },
            Self::AddValidator {
                public_key,
                p2p,
                operator,
            } => Action::AddValidator {
                key: *public_key,
                p2p: *p2p,
                operator: operator.map(IdentityId),
            },
            Self::RemoveValidator { public_key } => Action::RemoveValidator { key: *public_key },
            Self::AddFullNode {
                public_key,
                p2p,
                operator,
            } => Action::AddFullNode {
                key: *public_key,
                p2p: *p2p,
                operator: operator.map(IdentityId),
            },
            Self::RemoveFullNode { public_key } => Action::RemoveFullNode { key: *public_key },
            Self::ExpireNodeKey { public_key, epoch } => Action::ExpireNodeKey {
                key: *public_key,
                until: trellis_types::Epoch(*epoch),
            },
            Self::SetChainParams {
                gas_limit,
                base_fee,
            } => Action::SetChainParams(ChainParams {
                block_gas_limit: *gas_limit,
                base_fee_per_gas: *base_fee,
            }),
            Self::CompromiseValidator {
                public_key,
                compromised_since,
                successor,
            } => Action::CompromiseValidator(ValidatorCompromise {
                key: *public_key,
                since: Height(*compromised_since),
                successor: successor.open(public_key, passphrase)?,
            }),
        })
    }
}

pub fn run(command: GovCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client's runtime")?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: GovCommand) -> Result<()> {
    match command {
        GovCommand::Propose {
            signer,
            voting_blocks,
            action,
        } => {
            let (node, key) = signer.open()?;
            let action = action.action(signer.passphrase()?.as_ref())?;
            let decided = GovernanceClient::new(&node)
                .propose(key.as_ref(), &action, voting_blocks)
                .await
                .context("proposal not made")?;
            print_decided(&decided);
        }
        GovCommand::Vote { signer, id, reject } => {
            let (node, key) = signer.open()?;
            let decided = GovernanceClient::new(&node)
                .vote(key.as_ref(), ProposalId(id), !reject)
                .await
                .context("vote not cast")?;
            print_decided(&decided);
        }
        GovCommand::Show { node, id } => {
            let node = node.open()?;
            let proposal = GovernanceClient::new(&node)
                .proposal(ProposalId(id))
                .await
                .with_context(|| format!("reading proposal {id}"))?;
            print_proposal(&proposal);
        }
        GovCommand::List { node } => {
            let node = node.open()?;
            let proposals = GovernanceClient::new(&node)
                .list()
                .await
                .context("listing proposals")?;
            if proposals.is_empty() {
                println!("no proposals yet");
            }
            for proposal in &proposals {
                print_proposal(proposal);
            }
        }
    }
    Ok(())
}

impl NodeArg {
    pub(crate) fn open(&self) -> Result<Node> {
        let tls = self.tls_ca.clone().map(|ca| trellis_client::ClientTls {
            ca,
            identity: self.tls_cert.clone().zip(self.tls_key.clone()),
        });
        Ok(Node::with_credentials(
            &self.rpc,
            self.api_token.as_deref(),
            tls.as_ref(),
        )?)
    }
}

impl Signer {
    /// The passphrase of --passphrase-file, if given.
    pub(crate) fn passphrase(&self) -> Result<Option<trellis_crypto::Passphrase>> {
        Ok(self
            .passphrase_file
            .as_deref()
            .map(trellis_crypto::Passphrase::from_file)
            .transpose()?)
    }

    /// The node and the signing key; warns on stderr if the key's registration ends soon.
    pub(crate) fn open(&self) -> Result<(Node, Box<dyn trellis_crypto::TxSigner>)> {
        let passphrase = self.passphrase()?;
        let key = open_signer(&self.key, self.from, passphrase.as_ref())?;
        // A client of its own: its connections live and die with the check's runtime.
        warn_if_expiring(&self.node.open()?, key.address())?;
        Ok((self.node.open()?, key))
    }
}

/// Blocks before a key's registration ends from which the CLI warns: about a day of blocks a
/// second.
pub(crate) const EXPIRY_WARNING_BLOCKS: u64 = 86_400;

/// A warning on stderr if `account`'s registration ends within [`EXPIRY_WARNING_BLOCKS`].
/// Asked on a thread of its own: some commands open their signer inside their runtime, which
/// cannot block on another one (the CLI does one thing at a time, so waiting costs nothing).
fn warn_if_expiring(node: &Node, account: Address) -> Result<()> {
    let end = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<_> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(node.registration_end(account))?)
            })
            .join()
            .expect("the registration check does not panic")
    })?;
    if let Some(end) = end.filter(|end| end.blocks_left <= EXPIRY_WARNING_BLOCKS) {
        eprintln!(
            "warning: the registration of {account} ends at block {} ({} blocks from now); from then on its transactions are refused, unless governance extends it (`trellis gov propose set-account-validity`)",
            end.until, end.blocks_left
        );
    }
    Ok(())
}

fn print_decided(decided: &trellis_client::Decided) {
    println!("transaction {} in block {}", decided.tx, decided.block);
    for event in &decided.events {
        match event {
            GovernanceEvent::Proposed { id, expires } => {
                println!("proposal {id} made, open for votes until block {expires}");
            }
            GovernanceEvent::Voted {
                id,
                voter,
                identity,
                approve,
                weight,
            } => println!(
                "{voter} (identity {identity}) {} proposal {id} with weight {weight}",
                if *approve { "approved" } else { "rejected" }
            ),
            GovernanceEvent::Executed(id) => println!("proposal {id} passed and was carried out"),
            GovernanceEvent::Rejected(id) => println!("proposal {id} can no longer pass: rejected"),
            GovernanceEvent::Failed { id, reason } => {
                println!("proposal {id} passed but could not be carried out: {reason}");
            }
        }
    }
}

fn print_proposal(p: &Proposal) {
    let action =
        Action::decode(&p.action).map_or_else(|e| format!("(undecodable: {e})"), |a| a.to_string());
    println!(
        "proposal {}: {} — {action}\n  by {} (identity {}) at block {}, open until block {}; approvals {}, rejections {}",
        p.id,
        p.status,
        p.proposer,
        p.proposer_identity,
        p.created,
        p.expires,
        p.tally.approvals,
        p.tally.rejections
    );
}
