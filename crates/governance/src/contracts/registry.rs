//! The registry's read-only functions ([`ITrellisRegistry`]): what contracts call to check an
//! account's roles, built-in or their own.

use crate::{
    IdentityId, OrgId, Registry, Role,
    contracts::{
        abi::ITrellisRegistry::{self, ITrellisRegistryCalls},
        call::{Effects, SystemCall},
        error::SystemError,
    },
};
use alloy_sol_types::SolCall;
use trellis_state::StateReader;
use trellis_types::Height;

pub(crate) fn registry<R: StateReader + ?Sized>(
    state: &R,
    call: &SystemCall<'_>,
) -> Result<Effects, SystemError> {
    use ITrellisRegistryCalls as Call;
    let registry = Registry::new(state);
    let output = match call.decode::<ITrellisRegistryCalls>()? {
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
