//! Roles: 32-byte identifiers, so an application can define its own next to the built-in ones.

use alloy_primitives::{B256, keccak256};
use std::fmt;

/// A role an identity may hold: keccak-256 of `trellis.role.<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(pub B256);

impl Role {
    /// The role called `name` (built-in or an application's own).
    pub fn named(name: &str) -> Self {
        Self(keccak256(format!("trellis.role.{name}")))
    }

    /// Votes on governance proposals, with a weight.
    pub fn governor() -> Self {
        Self::named("governor")
    }

    /// Runs a validator (its consensus keys are the identity's).
    pub fn validator_operator() -> Self {
        Self::named("validator-operator")
    }

    /// May deploy contracts.
    pub fn deployer() -> Self {
        Self::named("deployer")
    }

    /// May send transactions.
    pub fn transactor() -> Self {
        Self::named("transactor")
    }

    /// May read everything (API access).
    pub fn auditor() -> Self {
        Self::named("auditor")
    }

    /// Feeds outside data to contracts.
    pub fn oracle() -> Self {
        Self::named("oracle")
    }

    /// Co-signs held transfers of other identities.
    pub fn approver() -> Self {
        Self::named("approver")
    }

    /// The built-in roles and their names.
    pub fn builtin() -> [(&'static str, Self); 7] {
        [
            ("governor", Self::governor()),
            ("validator-operator", Self::validator_operator()),
            ("deployer", Self::deployer()),
            ("transactor", Self::transactor()),
            ("auditor", Self::auditor()),
            ("oracle", Self::oracle()),
            ("approver", Self::approver()),
        ]
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::builtin().iter().find(|(_, role)| role == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roles_are_distinct_and_named() {
        let roles = Role::builtin();
        for (i, (name, role)) in roles.iter().enumerate() {
            assert_eq!(role.to_string(), *name);
            assert_eq!(Role::named(name), *role);
            assert!(roles[i + 1..].iter().all(|(_, other)| other != role));
        }
        assert_eq!(
            Role::named("claims-adjuster").to_string(),
            keccak256("trellis.role.claims-adjuster").to_string()
        );
    }
}
