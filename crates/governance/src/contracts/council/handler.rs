//! The governance contract's functions: proposing, voting, and the views.

use super::{
    action::Action,
    layout::GOVERNANCE_ADDRESS,
    records::{Ballot, Council, Records},
};
use crate::contracts::{
    abi::ITrellisGovernance::{self, ITrellisGovernanceCalls},
    call::{Effects, SystemCall},
    error::{ActionError, GovernanceError, MAX_VOTING_BLOCKS, SystemError},
    proposal::{Proposal, ProposalId, ProposalStatus, Tally},
};
use crate::{IdentityId, Registry, RegistryError, RegistryWriter, Role};
use alloy_primitives::{Address, Bytes};
use alloy_sol_types::SolCall;
use trellis_state::StateReader;
use trellis_types::Height;

/// Runs a call to the governance contract on `state`.
pub fn governance<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
) -> Result<Effects, SystemError> {
    use ITrellisGovernanceCalls as Call;
    let decoded = call.decode::<ITrellisGovernanceCalls>()?;
    let council = Council::new(state);
    let view = |bytes: Vec<u8>| Ok(Effects::view(bytes));
    match decoded {
        Call::propose(c) => {
            call.check_writable()?;
            propose(state, call, c.action, c.votingBlocks)
        }
        Call::vote(c) => {
            call.check_writable()?;
            vote(state, call, ProposalId(c.id), c.approve)
        }
        Call::proposalCount(_) => view(ITrellisGovernance::proposalCountCall::abi_encode_returns(
            &council.count()?,
        )),
        Call::proposal(c) => {
            let proposal = council
                .proposal(ProposalId(c.id), call.height)?
                .ok_or(GovernanceError::NoProposal(ProposalId(c.id)))?;
            view(ITrellisGovernance::proposalCall::abi_encode_returns(
                &ITrellisGovernance::proposalReturn {
                    proposer: proposal.proposer,
                    proposerIdentity: proposal.proposer_identity.0,
                    created: proposal.created.get(),
                    expires: proposal.expires.get(),
                    status: proposal.status.code(),
                    approvals: proposal.tally.approvals,
                    rejections: proposal.tally.rejections,
                    action: proposal.action,
                },
            ))
        }
        Call::ballot(c) => {
            let ballot = council.ballot(ProposalId(c.id), IdentityId(c.identity))?;
            view(ITrellisGovernance::ballotCall::abi_encode_returns(
                &ballot.map_or(0, Ballot::code),
            ))
        }
        Call::governorWeight(c) => {
            view(ITrellisGovernance::governorWeightCall::abi_encode_returns(
                &council.weight(IdentityId(c.identity))?,
            ))
        }
        Call::totalWeight(_) => view(ITrellisGovernance::totalWeightCall::abi_encode_returns(
            &council.total_weight()?,
        )),
        Call::thresholds(_) => {
            let t = council.thresholds()?;
            view(ITrellisGovernance::thresholdsCall::abi_encode_returns(
                &ITrellisGovernance::thresholdsReturn {
                    participationBps: t.participation_bps,
                    approvalBps: t.approval_bps,
                },
            ))
        }
    }
}

/// The identity `account` acts for as a governor at `height`.
fn governor<R: StateReader + ?Sized>(
    state: &R,
    account: Address,
    height: Height,
) -> Result<IdentityId, SystemError> {
    let registry = Registry::new(state);
    let refused = || SystemError::from(GovernanceError::NotGovernor { account, height });
    if !registry.may(&account, &Role::governor(), height)? {
        return Err(refused());
    }
    let record = registry.account(&account)?.ok_or_else(refused)?;
    Ok(record.identity)
}

fn propose<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    action: Bytes,
    voting_blocks: u64,
) -> Result<Effects, SystemError> {
    let identity = governor(state, call.caller, call.height)?;
    if !(1..=MAX_VOTING_BLOCKS).contains(&voting_blocks) {
        return Err(GovernanceError::VotingBlocks(voting_blocks).into());
    }
    let decoded = Action::decode(&action).map_err(GovernanceError::from)?;
    let id = ProposalId(Council::new(state).count()? + 1);
    // Refused now if it could not be carried out now: a proposal that cannot pass as written
    // is not put to the vote.
    let mut scratch = RegistryWriter::new(state);
    decoded
        .apply(&mut scratch, call.height, id)
        .map_err(refusal)?;
    drop(scratch);

    let proposal = Proposal {
        id,
        proposer: call.caller,
        proposer_identity: identity,
        created: call.height,
        expires: Height(call.height.get() + voting_blocks),
        status: ProposalStatus::Open,
        tally: Tally::default(),
        action,
    };
    let mut writer = RegistryWriter::new(state);
    let mut records = Records::new(writer.overlay_mut());
    records.set_count(id.0);
    records.create(&proposal);
    let mut effects = Effects::default();
    effects.log(
        GOVERNANCE_ADDRESS,
        ITrellisGovernance::Proposed {
            id: id.0,
            proposer: call.caller,
            expires: proposal.expires.get(),
            action: proposal.action.clone(),
        },
    );
    effects.output = ITrellisGovernance::proposeCall::abi_encode_returns(&id.0).into();
    cast(
        &mut writer,
        &mut effects,
        call,
        proposal,
        identity,
        Ballot::Approve,
    )?;
    effects.take_writes(writer);
    Ok(effects)
}

fn vote<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
    id: ProposalId,
    approve: bool,
) -> Result<Effects, SystemError> {
    let identity = governor(state, call.caller, call.height)?;
    let council = Council::new(state);
    let proposal = council
        .proposal(id, call.height)?
        .ok_or(GovernanceError::NoProposal(id))?;
    match proposal.status {
        ProposalStatus::Open => {}
        ProposalStatus::Expired => {
            return Err(GovernanceError::Expired {
                id,
                expires: proposal.expires,
            }
            .into());
        }
        status => return Err(GovernanceError::Closed { id, status }.into()),
    }
    if council.ballot(id, identity)?.is_some() {
        return Err(GovernanceError::AlreadyVoted { id, identity }.into());
    }
    let ballot = if approve {
        Ballot::Approve
    } else {
        Ballot::Reject
    };
    let mut writer = RegistryWriter::new(state);
    let mut effects = Effects::default();
    cast(&mut writer, &mut effects, call, proposal, identity, ballot)?;
    effects.take_writes(writer);
    Ok(effects)
}

/// Records `identity`'s ballot on an open proposal, then decides it if the votes now do: carried
/// out (or failed) once it passes, rejected once it no longer can.
fn cast<R: StateReader + ?Sized>(
    writer: &mut RegistryWriter<'_, R>,
    effects: &mut Effects,
    call: &SystemCall<'_>,
    proposal: Proposal,
    identity: IdentityId,
    ballot: Ballot,
) -> Result<(), SystemError> {
    let council = Council::new(writer.overlay());
    let weight = council.weight(identity)?;
    let (total, thresholds) = (council.total_weight()?, council.thresholds()?);
    let mut tally = proposal.tally;
    match ballot {
        Ballot::Approve => tally.approvals += weight,
        Ballot::Reject => tally.rejections += weight,
    }
    let mut records = Records::new(writer.overlay_mut());
    records.set_ballot(proposal.id, identity, ballot);
    records.set_tally(proposal.id, tally);
    effects.log(
        GOVERNANCE_ADDRESS,
        ITrellisGovernance::Voted {
            id: proposal.id.0,
            voter: call.caller,
            identity: identity.0,
            approve: ballot == Ballot::Approve,
            weight,
        },
    );
    if thresholds.passed(tally, total) {
        execute(writer, effects, call.height, &proposal)?;
    } else if thresholds.doomed(tally, total) {
        Records::new(writer.overlay_mut()).set_status(&proposal, ProposalStatus::Rejected);
        effects.log(
            GOVERNANCE_ADDRESS,
            ITrellisGovernance::Rejected { id: proposal.id.0 },
        );
    }
    Ok(())
}

/// Carries out a passed proposal's action, or records why it could not be.
fn execute<R: StateReader + ?Sized>(
    writer: &mut RegistryWriter<'_, R>,
    effects: &mut Effects,
    height: Height,
    proposal: &Proposal,
) -> Result<(), SystemError> {
    let action = Action::decode(&proposal.action).map_err(GovernanceError::from)?;
    let mut scratch = RegistryWriter::new(writer.overlay());
    let outcome = action.apply(&mut scratch, height, proposal.id);
    let writes = scratch.into_writes();
    match outcome {
        Ok(()) => {
            writer.overlay_mut().absorb(writes);
            Records::new(writer.overlay_mut()).set_status(proposal, ProposalStatus::Executed);
            effects.log(
                GOVERNANCE_ADDRESS,
                ITrellisGovernance::Executed { id: proposal.id.0 },
            );
        }
        Err(ActionError::Registry(RegistryError::State(error))) => {
            return Err(SystemError::State(error));
        }
        Err(error) => {
            Records::new(writer.overlay_mut()).set_status(proposal, ProposalStatus::Failed);
            effects.log(
                GOVERNANCE_ADDRESS,
                ITrellisGovernance::Failed {
                    id: proposal.id.0,
                    reason: error.to_string(),
                },
            );
        }
    }
    Ok(())
}

/// A state that cannot be read stops the block; any other action error refuses the call.
fn refusal(error: ActionError) -> SystemError {
    match error {
        ActionError::Registry(RegistryError::State(state)) => SystemError::State(state),
        other => GovernanceError::Action(other).into(),
    }
}
