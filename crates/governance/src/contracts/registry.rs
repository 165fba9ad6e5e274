//! The registry's functions ([`ITrellisRegistry`]): what contracts call to check an account's
//! roles, built-in or their own; and what a key does to itself (rotate, revoke), which needs no
//! vote: only the key's holder can send its transaction.

use crate::{
    AccountStatus, BY_ITS_OPERATOR, IdentityId, OrgId, REGISTRY_ADDRESS, Registry, RegistryError,
    RegistryWriter, Role, SeatSuccessor, ValidatorCompromise, ValidatorRotation,
    contracts::{
        abi::ITrellisRegistry::{self, ITrellisRegistryCalls},
        call::{Effects, SystemCall},
        error::{ActionError, GovernanceError, SystemError},
    },
};
use alloy_primitives::{Address, B256};
use alloy_sol_types::SolCall;
use trellis_state::StateReader;
use trellis_types::{Height, ValidatorId};

pub(crate) fn registry<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
) -> Result<Effects, SystemError> {
    use ITrellisRegistryCalls as Call;
    let registry = Registry::new(state);
    let output = match call.decode::<ITrellisRegistryCalls>()? {
        Call::rotateKey(c) => return rotate_key(state, call, c.successor, &c.proof),
        Call::revokeKey(c) => {
            let since = c.compromised.then_some(Height(c.suspectedFrom));
            return revoke_key(state, call, since);
        }
        Call::rotateValidator(c) => {
            let p2p = c
                .p2p
                .parse()
                .map_err(|_| action_error(ActionError::BadAddress(c.p2p.clone())))?;
            let rotation = ValidatorRotation {
                old: ValidatorId(c.key.0),
                new: ValidatorId(c.successor.0),
                p2p,
                old_signature: c.keySignature.to_vec(),
                new_signature: c.successorSignature.to_vec(),
            };
            return rotate_validator(state, call, &rotation);
        }
        Call::reportValidatorCompromised(c) => {
            let report = compromise_report(
                c.key,
                c.suspectedFrom,
                c.successor,
                &c.p2p,
                &c.successorSignature,
            )
            .map_err(action_error)?;
            return report_compromise(state, call, &report);
        }
        Call::validatorOf(c) => {
            let key = ValidatorId(c.key.0);
            let record = registry.validator(&key)?;
            let successor = registry.validator_successor(&key)?;
            let compromise = registry.validator_compromise(&key)?;
            ITrellisRegistry::validatorOfCall::abi_encode_returns(
                &ITrellisRegistry::validatorOfReturn {
                    known: record.is_some(),
                    fromEpoch: record.as_ref().map_or(0, |r| r.term.from.0),
                    untilEpoch: record
                        .as_ref()
                        .and_then(|r| r.term.until)
                        .map_or(0, |e| e.0),
                    operator: record.and_then(|r| r.identity).map_or(0, |i| i.0),
                    successor: successor.map_or(B256::ZERO, |key| B256::from(key.0)),
                    compromised: compromise.is_some(),
                    suspectedFrom: compromise.map_or(0, |c| c.since.get()),
                },
            )
        }
        Call::successorOf(c) => ITrellisRegistry::successorOfCall::abi_encode_returns(
            &registry
                .account(&c.account)?
                .and_then(|account| account.successor)
                .unwrap_or_default(),
        ),
        Call::may(c) => ITrellisRegistry::mayCall::abi_encode_returns(&registry.may(
            &c.account,
            &Role(c.role),
            call.height,
        )?),
        Call::holds(c) => ITrellisRegistry::holdsCall::abi_encode_returns(
            &registry.holds(IdentityId(c.identity), &Role(c.role))?,
        ),
        Call::accountOf(c) => {
            let account = registry.account(&c.account)?;
            ITrellisRegistry::accountOfCall::abi_encode_returns(&match account {
                Some(a) => ITrellisRegistry::accountOfReturn {
                    registered: true,
                    identity: a.identity.0,
                    status: a.status.code(),
                    statusSince: a.status_since.get(),
                    statusByProposal: a.status_by,
                    validFrom: a.window.from.get(),
                    validUntil: a.window.until.map_or(0, Height::get),
                },
                None => ITrellisRegistry::accountOfReturn {
                    registered: false,
                    identity: 0,
                    status: 0,
                    statusSince: 0,
                    statusByProposal: 0,
                    validFrom: 0,
                    validUntil: 0,
                },
            })
        }
        Call::identityOf(c) => {
            let identity = registry.identity(IdentityId(c.identity))?;
            ITrellisRegistry::identityOfCall::abi_encode_returns(
                &ITrellisRegistry::identityOfReturn {
                    exists: identity.is_some(),
                    organisation: identity.map_or(0, |i| i.organisation.0),
                    validFrom: identity.map_or(0, |i| i.window.from.get()),
                    validUntil: identity.and_then(|i| i.window.until).map_or(0, Height::get),
                },
            )
        }
        Call::methodRole(c) => ITrellisRegistry::methodRoleCall::abi_encode_returns(
            &registry
                .method_role(&c.target, &c.selector)?
                .map_or(alloy_primitives::B256::ZERO, |role| role.0),
        ),
        Call::organisationName(c) => ITrellisRegistry::organisationNameCall::abi_encode_returns(
            &registry
                .organisation(OrgId(c.organisation))?
                .unwrap_or_default(),
        ),
    };
    Ok(Effects::view(output))
}

fn rotate_key<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    successor: Address,
    proof: &[u8],
) -> Result<Effects, SystemError> {
    call.check_writable()?;
    crate::check_rotation_proof(&call.caller, &successor, proof)?;
    let mut writer = RegistryWriter::new(state);
    writer.rotate_account(call.caller, successor, call.height, crate::BY_ITS_KEY)?;
    let mut effects = Effects::default();
    effects.take_writes(writer);
    effects.log(
        REGISTRY_ADDRESS,
        ITrellisRegistry::KeyRotated {
            account: call.caller,
            successor,
        },
    );
    Ok(effects)
}

fn rotate_validator<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    rotation: &ValidatorRotation,
) -> Result<Effects, SystemError> {
    call.check_writable()?;
    rotation.check()?;
    let length = Registry::new(state)
        .epoch_length()?
        .ok_or(action_error(ActionError::NoEpochs))?;
    let from = length.next_epoch(call.height);
    let mut writer = RegistryWriter::new(state);
    writer.rotate_validator(rotation, call.caller, from)?;
    let mut effects = Effects::default();
    effects.take_writes(writer);
    effects.log(
        REGISTRY_ADDRESS,
        ITrellisRegistry::ValidatorRotated {
            key: B256::from(rotation.old.0),
            successor: B256::from(rotation.new.0),
            fromEpoch: from.0,
        },
    );
    Ok(effects)
}

/// A compromise report from its ABI fields (a zero successor: none).
pub(crate) fn compromise_report(
    key: B256,
    since: u64,
    successor: B256,
    p2p: &str,
    signature: &[u8],
) -> Result<ValidatorCompromise, ActionError> {
    let successor = match successor.is_zero() {
        true => None,
        false => Some(SeatSuccessor {
            key: ValidatorId(successor.0),
            p2p: p2p
                .parse()
                .map_err(|_| ActionError::BadAddress(p2p.to_owned()))?,
            signature: signature.to_vec(),
        }),
    };
    Ok(ValidatorCompromise {
        key: ValidatorId(key.0),
        since: Height(since),
        successor,
    })
}

/// A compromise report sent by the validator's operator.
fn report_compromise<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    report: &ValidatorCompromise,
) -> Result<Effects, SystemError> {
    call.check_writable()?;
    let registry = Registry::new(state);
    let record = registry
        .validator(&report.key)?
        .ok_or(RegistryError::UnknownValidator(report.key))?;
    let operator = record
        .identity
        .ok_or(RegistryError::NoOperator(report.key))?;
    let sender = registry
        .account(&call.caller)?
        .map(|account| account.identity);
    if sender != Some(operator) {
        return Err(RegistryError::NotTheOperator {
            key: report.key,
            operator,
            caller: call.caller,
        }
        .into());
    }
    let length = registry
        .epoch_length()?
        .ok_or(action_error(ActionError::NoEpochs))?;
    let from = length.next_epoch(call.height);
    let mut writer = RegistryWriter::new(state);
    writer.report_validator_compromised(report, call.height, from, BY_ITS_OPERATOR)?;
    let mut effects = Effects::default();
    effects.take_writes(writer);
    effects.log(REGISTRY_ADDRESS, compromised_event(report, from));
    Ok(effects)
}

pub(crate) fn compromised_event(
    report: &ValidatorCompromise,
    from: trellis_types::Epoch,
) -> ITrellisRegistry::ValidatorCompromised {
    ITrellisRegistry::ValidatorCompromised {
        key: B256::from(report.key.0),
        suspectedFrom: report.since.get(),
        successor: report
            .successor
            .as_ref()
            .map_or(B256::ZERO, |s| B256::from(s.key.0)),
        fromEpoch: from.0,
    }
}

fn action_error(error: ActionError) -> SystemError {
    SystemError::Governance(GovernanceError::Action(error))
}

fn revoke_key<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    compromised_since: Option<Height>,
) -> Result<Effects, SystemError> {
    call.check_writable()?;
    let mut writer = RegistryWriter::new(state);
    writer.retire_account(
        call.caller,
        call.height,
        crate::BY_ITS_KEY,
        compromised_since,
    )?;
    let status = match compromised_since {
        Some(_) => AccountStatus::Compromised,
        None => AccountStatus::Revoked,
    };
    let mut effects = Effects::default();
    effects.take_writes(writer);
    effects.log(
        REGISTRY_ADDRESS,
        ITrellisRegistry::KeyRetired {
            account: call.caller,
            status: status.code(),
            suspectedFrom: compromised_since.map_or(0, Height::get),
        },
    );
    Ok(effects)
}
