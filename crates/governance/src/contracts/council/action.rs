//! What a proposal does once it passes, decoded from its `ITrellisActions` call and carried out
//! with checks, so a passed proposal changes the rules exactly as it said or not at all.

use super::records::{Council, Records};
use crate::contracts::{
    abi::ITrellisActions::{self, ITrellisActionsCalls},
    error::{ActionError, MAX_WEIGHT},
    proposal::{ProposalId, Thresholds},
    registry::compromise_report,
};
use crate::{
    AccountStatus, ChainParams, IdentityId, LimitHolder, Limits, NewValidator, NodeRole, OrgId,
    Registry, RegistryError, RegistryWriter, Role, ValidatorCompromise, Window,
};
use alloy_primitives::{Address, B256, Bytes, Selector, U256};
use alloy_sol_types::{SolCall, SolInterface};
use std::net::SocketAddr;
use trellis_state::StateReader;
use trellis_types::{Epoch, Height, ValidatorId};

/// A change to the consortium's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    AddOrganisation {
        id: OrgId,
        name: String,
    },
    AddIdentity {
        id: IdentityId,
        organisation: OrgId,
        window: Window,
    },
    AddAccount {
        account: Address,
        identity: IdentityId,
        window: Window,
    },
    /// Ending the window removes the member from then on (its records stay).
    SetIdentityWindow {
        identity: IdentityId,
        window: Window,
    },
    SetAccountWindow {
        account: Address,
        window: Window,
    },
    GrantRole {
        identity: IdentityId,
        role: Role,
    },
    RevokeRole {
        identity: IdentityId,
        role: Role,
    },
    SetAccountStatus {
        account: Address,
        status: AccountStatus,
    },
    /// For a holder who lost `account`'s key: its registration moves to `successor`.
    RotateAccount {
        account: Address,
        successor: Address,
        proof: Bytes,
    },
    /// `account`'s key retired for good; compromised if `compromised_since` is set.
    RetireAccount {
        account: Address,
        compromised_since: Option<Height>,
    },
    SetGovernorWeight {
        identity: IdentityId,
        weight: u64,
    },
    SetThresholds(Thresholds),
    /// All `None`: lifts them.
    SetLimits {
        holder: LimitHolder,
        limits: Limits,
    },
    /// `role: None` lifts the restriction.
    RestrictMethod {
        contract: Address,
        selector: Selector,
        role: Option<Role>,
    },
    /// From the next epoch on.
    AddValidator {
        key: ValidatorId,
        p2p: SocketAddr,
        operator: Option<IdentityId>,
    },
    /// From the next epoch on.
    RemoveValidator {
        key: ValidatorId,
    },
    /// From the next epoch on.
    AddFullNode {
        key: ValidatorId,
        p2p: SocketAddr,
        operator: Option<IdentityId>,
    },
    /// From the next epoch on.
    RemoveFullNode {
        key: ValidatorId,
    },
    /// A node key's term ends before epoch `until` (at or after the next epoch).
    ExpireNodeKey {
        key: ValidatorId,
        until: Epoch,
    },
    /// Reported leaked: out from the next epoch on, its seat maybe handed to a successor.
    CompromiseValidator(ValidatorCompromise),
    /// From the next block on.
    SetChainParams(ChainParams),
}

fn limits(per_transaction: U256, per_day: U256, hold_above: U256) -> Limits {
    let set = |value: U256| (!value.is_zero()).then_some(value);
    Limits {
        per_transaction: set(per_transaction),
        per_day: set(per_day),
        hold_above: set(hold_above),
    }
}

fn window(from: u64, until: u64) -> Window {
    Window {
        from: Height(from),
        until: (until != 0).then_some(Height(until)),
    }
}

fn until(window: Window) -> u64 {
    window.until.map_or(0, Height::get)
}

impl Action {
    /// Decodes an action strictly: a known function, canonical ABI encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, ActionError> {
        use ITrellisActionsCalls as Call;
        if bytes.len() > super::records::MAX_ACTION {
            return Err(ActionError::TooLong {
                length: bytes.len(),
                max: super::records::MAX_ACTION,
            });
        }
        let call = Call::abi_decode_validate(bytes)
            .map_err(|error| ActionError::Malformed(error.to_string()))?;
        Ok(match call {
            Call::addOrganisation(c) => Self::AddOrganisation {
                id: OrgId(c.id),
                name: c.name,
            },
            Call::addIdentity(c) => Self::AddIdentity {
                id: IdentityId(c.id),
                organisation: OrgId(c.organisation),
                window: window(c.validFrom, c.validUntil),
            },
            Call::addAccount(c) => Self::AddAccount {
                account: c.account,
                identity: IdentityId(c.identity),
                window: window(c.validFrom, c.validUntil),
            },
            Call::setIdentityValidity(c) => Self::SetIdentityWindow {
                identity: IdentityId(c.identity),
                window: window(c.validFrom, c.validUntil),
            },
            Call::setAccountValidity(c) => Self::SetAccountWindow {
                account: c.account,
                window: window(c.validFrom, c.validUntil),
            },
            Call::grantRole(c) => Self::GrantRole {
                identity: IdentityId(c.identity),
                role: Role(c.role),
            },
            Call::revokeRole(c) => Self::RevokeRole {
                identity: IdentityId(c.identity),
                role: Role(c.role),
            },
            Call::setAccountStatus(c) => {
                let status = AccountStatus::from_code(c.status)
                    .ok_or(ActionError::UnknownStatus(c.status))?;
                // A key's retirement records more than a status: its own actions set it.
                if status.is_final() && status != AccountStatus::Abolished {
                    return Err(ActionError::RetirementNeedsItsAction(status));
                }
                Self::SetAccountStatus {
                    account: c.account,
                    status,
                }
            }
            Call::rotateAccount(c) => Self::RotateAccount {
                account: c.account,
                successor: c.successor,
                proof: c.proof,
            },
            Call::retireAccount(c) => Self::RetireAccount {
                account: c.account,
                compromised_since: c.compromised.then_some(Height(c.suspectedFrom)),
            },
            Call::setGovernorWeight(c) => Self::SetGovernorWeight {
                identity: IdentityId(c.identity),
                weight: c.weight,
            },
            Call::setThresholds(c) => Self::SetThresholds(Thresholds {
                participation_bps: c.participationBps,
                approval_bps: c.approvalBps,
            }),
            Call::setIdentityLimits(c) => Self::SetLimits {
                holder: LimitHolder::Identity(IdentityId(c.identity)),
                limits: limits(c.perTransaction, c.perDay, c.holdAbove),
            },
            Call::setRoleLimits(c) => Self::SetLimits {
                holder: LimitHolder::Role(Role(c.role)),
                limits: limits(c.perTransaction, c.perDay, c.holdAbove),
            },
            Call::restrictMethod(c) => Self::RestrictMethod {
                contract: c.target,
                selector: c.selector,
                role: (!c.role.is_zero()).then_some(Role(c.role)),
            },
            Call::addValidator(c) => Self::AddValidator {
                key: ValidatorId(c.key.0),
                p2p: c.p2p.parse().map_err(|_| ActionError::BadAddress(c.p2p))?,
                operator: (c.operator != 0).then_some(IdentityId(c.operator)),
            },
            Call::removeValidator(c) => Self::RemoveValidator {
                key: ValidatorId(c.key.0),
            },
            Call::addFullNode(c) => Self::AddFullNode {
                key: ValidatorId(c.key.0),
                p2p: c.p2p.parse().map_err(|_| ActionError::BadAddress(c.p2p))?,
                operator: (c.operator != 0).then_some(IdentityId(c.operator)),
            },
            Call::removeFullNode(c) => Self::RemoveFullNode {
                key: ValidatorId(c.key.0),
            },
            Call::setNodeKeyExpiry(c) => Self::ExpireNodeKey {
                key: ValidatorId(c.key.0),
                until: Epoch(c.untilEpoch),
            },
            Call::compromiseValidator(c) => Self::CompromiseValidator(compromise_report(
                c.key,
                c.suspectedFrom,
                c.successor,
                &c.p2p,
                &c.successorSignature,
            )?),
            Call::setChainParameters(c) => Self::SetChainParams(ChainParams {
                block_gas_limit: c.blockGasLimit,
                base_fee_per_gas: c.baseFeePerGas,
            }),
        })
    }

    /// The ABI encoding a proposal carries.
    pub fn encode(&self) -> Bytes {
        use ITrellisActions as A;
        let bytes = match self {
            Self::AddOrganisation { id, name } => A::addOrganisationCall {
                id: id.0,
                name: name.clone(),
            }
            .abi_encode(),
            Self::AddIdentity {
                id,
                organisation,
                window,
            } => A::addIdentityCall {
                id: id.0,
                organisation: organisation.0,
                validFrom: window.from.get(),
                validUntil: until(*window),
            }
            .abi_encode(),
            Self::AddAccount {
                account,
                identity,
                window,
            } => A::addAccountCall {
                account: *account,
                identity: identity.0,
                validFrom: window.from.get(),
                validUntil: until(*window),
            }
            .abi_encode(),
            Self::SetIdentityWindow { identity, window } => A::setIdentityValidityCall {
                identity: identity.0,
                validFrom: window.from.get(),
                validUntil: until(*window),
            }
            .abi_encode(),
            Self::SetAccountWindow { account, window } => A::setAccountValidityCall {
                account: *account,
                validFrom: window.from.get(),
                validUntil: until(*window),
            }
            .abi_encode(),
            Self::GrantRole { identity, role } => A::grantRoleCall {
                identity: identity.0,
                role: role.0,
            }
            .abi_encode(),
            Self::RevokeRole { identity, role } => A::revokeRoleCall {
                identity: identity.0,
                role: role.0,
            }
            .abi_encode(),
            Self::SetAccountStatus { account, status } => A::setAccountStatusCall {
                account: *account,
                status: status.code(),
            }
            .abi_encode(),
            Self::RotateAccount {
                account,
                successor,
                proof,
            } => A::rotateAccountCall {
                account: *account,
                successor: *successor,
                proof: proof.clone(),
            }
            .abi_encode(),
            Self::RetireAccount {
                account,
                compromised_since,
            } => A::retireAccountCall {
                account: *account,
                compromised: compromised_since.is_some(),
                suspectedFrom: compromised_since.map_or(0, Height::get),
            }
            .abi_encode(),
            Self::SetGovernorWeight { identity, weight } => A::setGovernorWeightCall {
                identity: identity.0,
                weight: *weight,
            }
            .abi_encode(),
            Self::SetThresholds(t) => A::setThresholdsCall {
                participationBps: t.participation_bps,
                approvalBps: t.approval_bps,
            }
            .abi_encode(),
            Self::SetLimits {
                holder: LimitHolder::Identity(identity),
                limits,
            } => A::setIdentityLimitsCall {
                identity: identity.0,
                perTransaction: limits.per_transaction.unwrap_or_default(),
                perDay: limits.per_day.unwrap_or_default(),
                holdAbove: limits.hold_above.unwrap_or_default(),
            }
            .abi_encode(),
            Self::SetLimits {
                holder: LimitHolder::Role(role),
                limits,
            } => A::setRoleLimitsCall {
                role: role.0,
                perTransaction: limits.per_transaction.unwrap_or_default(),
                perDay: limits.per_day.unwrap_or_default(),
                holdAbove: limits.hold_above.unwrap_or_default(),
            }
            .abi_encode(),
            Self::RestrictMethod {
                contract,
                selector,
                role,
            } => A::restrictMethodCall {
                target: *contract,
                selector: *selector,
                role: role.map_or(alloy_primitives::B256::ZERO, |r| r.0),
            }
            .abi_encode(),
            Self::AddValidator { key, p2p, operator } => A::addValidatorCall {
                key: key.0.into(),
                p2p: p2p.to_string(),
                operator: operator.map_or(0, |operator| operator.0),
            }
            .abi_encode(),
            Self::RemoveValidator { key } => {
                A::removeValidatorCall { key: key.0.into() }.abi_encode()
            }
            Self::AddFullNode { key, p2p, operator } => A::addFullNodeCall {
                key: key.0.into(),
                p2p: p2p.to_string(),
                operator: operator.map_or(0, |operator| operator.0),
            }
            .abi_encode(),
            Self::RemoveFullNode { key } => {
                A::removeFullNodeCall { key: key.0.into() }.abi_encode()
            }
            Self::ExpireNodeKey { key, until } => A::setNodeKeyExpiryCall {
                key: key.0.into(),
                untilEpoch: until.0,
            }
            .abi_encode(),
            Self::CompromiseValidator(report) => {
                let successor = report.successor.as_ref();
                A::compromiseValidatorCall {
                    key: report.key.0.into(),
                    suspectedFrom: report.since.get(),
                    successor: successor.map_or(B256::ZERO, |s| s.key.0.into()),
                    p2p: successor.map_or(String::new(), |s| s.p2p.to_string()),
                    successorSignature: successor
                        .map_or(Bytes::new(), |s| s.signature.clone().into()),
                }
                .abi_encode()
            }
            Self::SetChainParams(params) => A::setChainParametersCall {
                blockGasLimit: params.block_gas_limit,
                baseFeePerGas: params.base_fee_per_gas,
            }
            .abi_encode(),
        };
        bytes.into()
    }

    /// Carries the action out on `writer`, as proposal `by` passing in block `height`; on an
    /// error the writer may hold part of it, so callers apply it to a scratch writer first.
    pub(crate) fn apply<R: StateReader + ?Sized>(
        &self,
        writer: &mut RegistryWriter<'_, R>,
        height: Height,
        by: ProposalId,
    ) -> Result<(), ActionError> {
        match self {
            Self::AddOrganisation { id, name } => writer.add_organisation(*id, name)?,
            Self::AddIdentity {
                id,
                organisation,
                window,
            } => writer.add_identity(*id, *organisation, *window)?,
            Self::AddAccount {
                account,
                identity,
                window,
            } => writer.add_account(*account, *identity, *window)?,
            Self::SetIdentityWindow { identity, window } => {
                writer.set_identity_window(*identity, *window)?;
            }
            Self::SetAccountWindow { account, window } => {
                writer.set_account_window(*account, *window)?;
            }
            Self::GrantRole { identity, role } => grant(writer, *identity, *role)?,
            Self::RotateAccount {
                account,
                successor,
                proof,
            } => {
                crate::check_rotation_proof(account, successor, proof)?;
                writer.rotate_account(*account, *successor, height, by.0)?;
            }
            Self::RetireAccount {
                account,
                compromised_since,
            } => writer.retire_account(*account, height, by.0, *compromised_since)?,
            Self::RevokeRole { identity, role } => revoke(writer, *identity, *role)?,
            Self::SetAccountStatus { account, status } => {
                let current = Registry::new(writer.overlay())
                    .account(account)?
                    .ok_or(RegistryError::NoAccount(*account))?;
                if current.status == *status {
                    return Err(ActionError::SameStatus {
                        account: *account,
                        status: *status,
                    });
                }
                writer.set_status(*account, *status, height, by.0)?;
            }
            Self::SetGovernorWeight { identity, weight } => {
                set_weight(writer, *identity, *weight)?;
            }
            Self::SetThresholds(thresholds) => {
                if !thresholds.is_valid() {
                    return Err(ActionError::BadThresholds(*thresholds));
                }
                Records::new(writer.overlay_mut()).set_thresholds(*thresholds);
            }
            Self::SetLimits { holder, limits } => {
                if let LimitHolder::Identity(identity) = holder
                    && Registry::new(writer.overlay())
                        .identity(*identity)?
                        .is_none()
                {
                    return Err(RegistryError::NoIdentity(*identity).into());
                }
                writer.set_limits(*holder, *limits)?;
            }
            Self::RestrictMethod {
                contract,
                selector,
                role,
            } => {
                let held = Registry::new(writer.overlay()).method_role(contract, selector)?;
                if held == *role {
                    return Err(ActionError::SameMethodRole {
                        contract: *contract,
                        selector: *selector,
                    });
                }
                writer.restrict_method(*contract, *selector, *role);
            }
            Self::AddValidator { key, p2p, operator } => {
                let from = next_epoch(writer, height)?;
                let validator = NewValidator {
                    key: *key,
                    p2p: Some(*p2p),
                    identity: *operator,
                };
                writer.add_validator(validator, from)?;
            }
            Self::RemoveValidator { key } => {
                let from = next_epoch(writer, height)?;
                writer.retire_validator(*key, from)?;
            }
            Self::AddFullNode { key, p2p, operator } => {
                let from = next_epoch(writer, height)?;
                let node = NewValidator {
                    key: *key,
                    p2p: Some(*p2p),
                    identity: *operator,
                };
                writer.add_node(NodeRole::FullNode, node, from)?;
            }
            Self::RemoveFullNode { key } => {
                let from = next_epoch(writer, height)?;
                writer.retire_node(NodeRole::FullNode, *key, from)?;
            }
            Self::ExpireNodeKey { key, until } => {
                let next = next_epoch(writer, height)?;
                if *until < next {
                    return Err(ActionError::ExpiryNotAhead {
                        until: until.0,
                        next: next.0,
                    });
                }
                let record = Registry::new(writer.overlay())
                    .validator(key)?
                    .ok_or(RegistryError::UnknownValidator(*key))?;
                writer.retire_node(record.role, *key, *until)?;
            }
            Self::CompromiseValidator(report) => {
                let from = next_epoch(writer, height)?;
                writer.report_validator_compromised(report, height, from, by.0)?;
            }
            Self::SetChainParams(params) => writer.set_chain_params(*params)?,
        }
        Ok(())
    }
}

/// The epoch a change made at `height` takes effect in.
fn next_epoch<R: StateReader + ?Sized>(
    writer: &RegistryWriter<'_, R>,
    height: Height,
) -> Result<Epoch, ActionError> {
    let length = Registry::new(writer.overlay()).epoch_length()?;
    Ok(length.ok_or(ActionError::NoEpochs)?.next_epoch(height))
}

fn grant<R: StateReader + ?Sized>(
    writer: &mut RegistryWriter<'_, R>,
    identity: IdentityId,
    role: Role,
) -> Result<(), ActionError> {
    if Registry::new(writer.overlay()).holds(identity, &role)? {
        return Err(ActionError::RoleHeld { identity, role });
    }
    writer.grant(identity, role)?;
    if role == Role::governor() {
        let total = Council::new(writer.overlay()).total_weight()?;
        let mut records = Records::new(writer.overlay_mut());
        records.set_weight(identity, 1);
        records.set_total_weight(total + 1);
    }
    Ok(())
}

fn revoke<R: StateReader + ?Sized>(
    writer: &mut RegistryWriter<'_, R>,
    identity: IdentityId,
    role: Role,
) -> Result<(), ActionError> {
    if !Registry::new(writer.overlay()).holds(identity, &role)? {
        return Err(ActionError::RoleNotHeld { identity, role });
    }
    if role == Role::governor() {
        let council = Council::new(writer.overlay());
        let (weight, total) = (council.weight(identity)?, council.total_weight()?);
        if total <= weight {
            return Err(ActionError::LastGovernor(identity));
        }
        let mut records = Records::new(writer.overlay_mut());
        records.set_weight(identity, 0);
        records.set_total_weight(total - weight);
    }
    writer.revoke(identity, role);
    Ok(())
}

fn set_weight<R: StateReader + ?Sized>(
    writer: &mut RegistryWriter<'_, R>,
    identity: IdentityId,
    weight: u64,
) -> Result<(), ActionError> {
    if !(1..=MAX_WEIGHT).contains(&weight) {
        return Err(ActionError::BadWeight(weight));
    }
    let governor = Role::governor();
    if !Registry::new(writer.overlay()).holds(identity, &governor)? {
        return Err(ActionError::RoleNotHeld {
            identity,
            role: governor,
        });
    }
    let council = Council::new(writer.overlay());
    let (old, total) = (council.weight(identity)?, council.total_weight()?);
    let mut records = Records::new(writer.overlay_mut());
    records.set_weight(identity, weight);
    records.set_total_weight(total - old + weight);
    Ok(())
}
