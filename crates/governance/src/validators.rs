//! The validator set, by epoch: who runs consensus is chain state, changed by governance.
//!
//! Every validator key the chain ever had is a record with a *term* of epochs (from, and until
//! if retired). The set of epoch `e` is every record whose term contains `e`, in record order.
//! A change made in a block of epoch `e` takes effect from epoch `e + 1` on: terms are only ever
//! set for epochs that have not begun, so the set of a running or past epoch never changes and
//! any node reads it from its latest state (a node restarting, or checking an old certificate).
//!
//! Epochs are `epoch_length` blocks long (a genesis setting, kept in the registry so execution
//! reads it from state); height `h` is in epoch `h / epoch_length`.

use crate::{
    IdentityId, NodeRole, Registry, RegistryError, RegistryWriter, Role, Term, ValidatorRecord,
    layout::{self, Packer, Unpacker},
};
use alloy_primitives::U256;
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU64,
};
use trellis_state::StateReader;
use trellis_types::{Epoch, EpochLength, ValidatorId};

/// The most validator records a chain keeps (every key it ever had): bounds what reading a set
/// costs.
pub const MAX_VALIDATOR_RECORDS: u64 = 256;

/// The largest validator set. Consensus sizes its messages (certificates carry a bitmap and a
/// signature per validator) for this many.
pub const MAX_VALIDATORS: usize = 64;

/// The most full nodes one epoch lets follow it (each is a link every validator keeps).
pub const MAX_FULL_NODES: usize = 64;

/// A set that tolerates a faulty validator (3f+1 with f = 1) never shrinks below this.
pub const MIN_FAULT_TOLERANT: usize = 4;

impl<R: StateReader + ?Sized> Registry<'_, R> {
    /// The chain's epoch length; `None` on a chain without a registry (one epoch, for ever).
    pub fn epoch_length(&self) -> Result<Option<EpochLength>, RegistryError> {
        let value = self.slot_value(layout::epoch_length())?;
        Ok(NonZeroU64::new(value.saturating_to()).map(EpochLength))
    }

    /// Every validator record, in the order they were made.
    pub fn validator_records(&self) -> Result<Vec<ValidatorRecord>, RegistryError> {
        let count: u64 = self.slot_value(layout::validator_count())?.saturating_to();
        (0..count.min(MAX_VALIDATOR_RECORDS))
            .map(|index| {
                let key = ValidatorId(self.slot_value(layout::validator(index))?.to_be_bytes());
                self.validator(&key)?.ok_or(RegistryError::Corrupt {
                    what: "validator",
                    slot: layout::validator_term(&key),
                    value: U256::ZERO,
                })
            })
            .collect()
    }

    /// The record of `key`, if it was ever a validator.
    pub fn validator(&self, key: &ValidatorId) -> Result<Option<ValidatorRecord>, RegistryError> {
        let slot = layout::validator_term(key);
        let Some(mut fields) = self.record_fields("validator term", slot)? else {
            return Ok(None);
        };
        let from = Epoch(fields.u64());
        let until = Some(fields.u64()).filter(|u| *u != 0).map(Epoch);
        let identity = Some(fields.u64()).filter(|i| *i != 0).map(IdentityId);
        let role = NodeRole::from_code(fields.byte()).ok_or(RegistryError::Corrupt {
            what: "node role",
            slot,
            value: self.slot_value(slot)?,
        })?;
        let p2p_slot = layout::validator_p2p(key);
        let p2p =
            unpack_address(self.slot_value(p2p_slot)?).map_err(|value| RegistryError::Corrupt {
                what: "validator address",
                slot: p2p_slot,
                value,
            })?;
        Ok(Some(ValidatorRecord {
            key: *key,
            role,
            p2p,
            identity,
            term: Term { from, until },
        }))
    }

    /// The validators of `epoch`, in record order.
    pub fn validators(&self, epoch: Epoch) -> Result<Vec<ValidatorRecord>, RegistryError> {
        self.nodes(NodeRole::Validator, epoch)
    }

    /// The full nodes of `epoch` (the keys the validators let follow), in record order.
    pub fn full_nodes(&self, epoch: Epoch) -> Result<Vec<ValidatorRecord>, RegistryError> {
        self.nodes(NodeRole::FullNode, epoch)
    }

    /// The node keys in `role` in `epoch`, in record order.
    pub fn nodes(
        &self,
        role: NodeRole,
        epoch: Epoch,
    ) -> Result<Vec<ValidatorRecord>, RegistryError> {
        let mut records = self.validator_records()?;
        records.retain(|record| record.role == role && record.term.contains(epoch));
        Ok(records)
    }
}

/// A validator a proposal adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewValidator {
    pub key: ValidatorId,
    pub p2p: Option<SocketAddr>,
    /// The identity operating it: must hold the validator-operator role.
    pub identity: Option<IdentityId>,
}

impl<R: StateReader + ?Sized> RegistryWriter<'_, R> {
    /// Records the epoch length (genesis only).
    pub fn set_epoch_length(&mut self, length: EpochLength) {
        self.write(layout::epoch_length(), U256::from(length.0.get()));
    }

    /// Adds `validator` from epoch `from` on. A key is recorded once: a retired key cannot come
    /// back (its operator registers a new one).
    pub fn add_validator(
        &mut self,
        validator: NewValidator,
        from: Epoch,
    ) -> Result<(), RegistryError> {
        self.add_node(NodeRole::Validator, validator, from)
    }

    /// Adds node key `validator.key` in `role` from epoch `from` on; a key is recorded once,
    /// in one role, ever.
    pub fn add_node(
        &mut self,
        role: NodeRole,
        validator: NewValidator,
        from: Epoch,
    ) -> Result<(), RegistryError> {
        let key = validator.key;
        if !trellis_crypto::is_valid_validator_id(&key) {
            return Err(RegistryError::NotAValidatorKey(key));
        }
        let registry = self.registry();
        if let Some(record) = registry.validator(&key)? {
            return Err(RegistryError::ValidatorKnown(Box::new(record)));
        }
        if let Some(identity) = validator.identity {
            if registry.identity(identity)?.is_none() {
                return Err(RegistryError::NoIdentity(identity));
            }
            if !registry.holds(identity, &Role::validator_operator())? {
                return Err(RegistryError::NotAnOperator(identity));
            }
        }
        let count: u64 = registry
            .slot_value(layout::validator_count())?
            .saturating_to();
        if count >= MAX_VALIDATOR_RECORDS {
            return Err(RegistryError::ValidatorRecordsFull(MAX_VALIDATOR_RECORDS));
        }
        let (size, max) = (registry.nodes(role, from)?.len() + 1, max_nodes(role));
        if size > max {
            return Err(RegistryError::TooManyNodes { role, max });
        }
        self.write(layout::validator(count), U256::from_be_bytes(key.0));
        self.write(layout::validator_count(), U256::from(count + 1));
        let term = Term { from, until: None };
        self.write(
            layout::validator_term(&key),
            pack_term(role, term, validator.identity),
        );
        if let Some(p2p) = validator.p2p {
            self.write(layout::validator_p2p(&key), pack_address(p2p));
        }
        Ok(())
    }

    /// Retires `key` from epoch `from` on. Refused if it is not in that epoch's set, or if the
    /// set would be empty, or would stop tolerating a faulty validator.
    pub fn retire_validator(&mut self, key: ValidatorId, from: Epoch) -> Result<(), RegistryError> {
        self.retire_node(NodeRole::Validator, key, from)
    }

    /// Retires node key `key`, in `role`, from epoch `from` on (validators under the floor of
    /// [`Self::retire_validator`]).
    pub fn retire_node(
        &mut self,
        role: NodeRole,
        key: ValidatorId,
        from: Epoch,
    ) -> Result<(), RegistryError> {
        let registry = self.registry();
        let set = registry.nodes(role, from)?;
        let Some(record) = set.iter().find(|record| record.key == key) else {
            return Err(RegistryError::NotANode {
                key,
                role,
                epoch: from,
            });
        };
        // Counted against the validators with no end set: one set to expire later is gone by
        // then, and every epoch from `from` on must keep the floor.
        let lasting = set.iter().filter(|r| r.term.until.is_none()).count();
        let left = lasting - usize::from(record.term.until.is_none());
        let floor = left == 0 || (lasting >= MIN_FAULT_TOLERANT && left < MIN_FAULT_TOLERANT);
        if role == NodeRole::Validator && floor {
            return Err(RegistryError::TooFewValidators {
                left,
                min: MIN_FAULT_TOLERANT,
            });
        }
        let record = *record;
        self.end_term(&record, from);
        Ok(())
    }

    /// Ends `record`'s term before epoch `until` (checks are the caller's).
    pub(crate) fn end_term(&mut self, record: &ValidatorRecord, until: Epoch) {
        let term = Term {
            from: record.term.from,
            until: Some(until),
        };
        self.write(
            layout::validator_term(&record.key),
            pack_term(record.role, term, record.identity),
        );
    }
}

/// The most node keys in `role` one epoch has.
pub fn max_nodes(role: NodeRole) -> usize {
    match role {
        NodeRole::Validator => MAX_VALIDATORS,
        NodeRole::FullNode => MAX_FULL_NODES,
    }
}

/// `01` ‖ from ‖ until (0: open) ‖ operator (0: none) ‖ role (0 validator, 1 full node: the
/// last, so records made before full nodes had one read as validators).
pub(crate) fn pack_term(role: NodeRole, term: Term, identity: Option<IdentityId>) -> U256 {
    Packer::default()
        .byte(1)
        .u64(term.from.0)
        .u64(term.until.map_or(0, |until| until.0))
        .u64(identity.map_or(0, |identity| identity.0))
        .byte(role.code())
        .finish()
}

/// `4` or `6` ‖ the IP as 16 bytes (IPv4 mapped) ‖ port; zero: none.
fn pack_address(address: SocketAddr) -> U256 {
    let (family, ip) = match address.ip() {
        IpAddr::V4(v4) => (4, v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => (6, v6),
    };
    Packer::default()
        .byte(family)
        .slice(&ip.octets())
        .u16(address.port())
        .finish()
}

fn unpack_address(value: U256) -> Result<Option<SocketAddr>, U256> {
    if value.is_zero() {
        return Ok(None);
    }
    let mut fields = Unpacker::new(value);
    let family = fields.byte();
    let ip = Ipv6Addr::from(fields.bytes::<16>());
    let port = fields.u16();
    let ip = match family {
        4 => IpAddr::V4(ip.to_ipv4_mapped().ok_or(value)?),
        6 => IpAddr::V6(ip),
        _ => return Err(value),
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use trellis_state::MemoryStore;
    use trellis_types::Height;

    #[test]
    fn addresses_survive_their_slot() {
        for text in [
            "127.0.0.1:30300",
            "[::1]:9",
            "10.1.2.3:65535",
            "[2001:db8::7]:443",
        ] {
            let address: SocketAddr = text.parse().unwrap();
            assert_eq!(unpack_address(pack_address(address)), Ok(Some(address)));
        }
        assert_eq!(unpack_address(U256::ZERO), Ok(None));
        assert!(unpack_address(U256::from(9) << 248).is_err());
    }

    fn key(seed: u8) -> ValidatorId {
        trellis_crypto::ValidatorKey::from_bytes(&[seed; 32]).validator_id()
    }

    /// `state` with `writer`'s changes (made over it) committed as its next block.
    pub(crate) fn committed(
        state: &MemoryStore,
        writer: RegistryWriter<'_, MemoryStore>,
    ) -> MemoryStore {
        let mut changes = trellis_state::ChangeSet::new();
        writer.finish(&mut changes).unwrap();
        let mut state = state.clone();
        let height = state.next_height();
        state.commit(height, &changes).unwrap();
        state
    }

    /// The keys of `epoch`'s validator set.
    pub(crate) fn set_of(state: &MemoryStore, epoch: Epoch) -> Vec<ValidatorId> {
        let set = Registry::new(state).validators(epoch).unwrap();
        set.iter().map(|record| record.key).collect()
    }

    /// A state whose registry lists the validators of seeds `0..n` from epoch 0.
    pub(crate) fn genesis(n: u8) -> MemoryStore {
        let empty = MemoryStore::new();
        let mut writer = RegistryWriter::new(&empty);
        for seed in 0..n {
            let validator = NewValidator {
                key: key(seed),
                p2p: None,
                identity: None,
            };
            writer.add_validator(validator, Epoch(0)).unwrap();
        }
        let mut changes = trellis_state::ChangeSet::new();
        writer.finish(&mut changes).unwrap();
        let mut state = MemoryStore::new();
        state.commit(Height(0), &changes).unwrap();
        state
    }

    #[test]
    fn changes_take_effect_in_the_epoch_they_name() {
        let state = genesis(4);
        let mut writer = RegistryWriter::new(&state);
        let fifth = NewValidator {
            key: key(9),
            p2p: Some("127.0.0.1:1".parse().unwrap()),
            identity: None,
        };
        writer.add_validator(fifth, Epoch(3)).unwrap();
        writer.retire_validator(key(1), Epoch(5)).unwrap();
        let state = committed(&state, writer);

        let registry = Registry::new(&state);
        let keys = |epoch| set_of(&state, Epoch(epoch));
        assert_eq!(keys(2), vec![key(0), key(1), key(2), key(3)]);
        assert_eq!(keys(3), vec![key(0), key(1), key(2), key(3), key(9)]);
        assert_eq!(keys(5), vec![key(0), key(2), key(3), key(9)]);
        let record = registry.validator(&key(9)).unwrap().unwrap();
        assert_eq!(record.p2p, fifth.p2p);
    }

    #[test]
    fn bad_changes_are_refused_and_named() {
        let state = genesis(4);
        let mut writer = RegistryWriter::new(&state);
        let again = NewValidator {
            key: key(2),
            p2p: None,
            identity: None,
        };
        let error = writer.add_validator(again, Epoch(1)).unwrap_err();
        assert!(matches!(error, RegistryError::ValidatorKnown(_)), "{error}");
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        let bad = NewValidator {
            key: ValidatorId(off_curve),
            ..again
        };
        let error = writer.add_validator(bad, Epoch(1)).unwrap_err();
        assert!(
            matches!(error, RegistryError::NotAValidatorKey(_)),
            "{error}"
        );
        let unknown = writer.retire_validator(key(8), Epoch(1)).unwrap_err();
        assert!(
            matches!(unknown, RegistryError::NotANode { .. }),
            "{unknown}"
        );
        // Four tolerate one fault; three would not.
        let error = writer.retire_validator(key(0), Epoch(1)).unwrap_err();
        assert!(
            matches!(error, RegistryError::TooFewValidators { left: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("3 validators"), "{error}");
    }

    #[test]
    fn a_small_set_may_shrink_but_never_empty() {
        let state = genesis(2);
        let mut writer = RegistryWriter::new(&state);
        writer.retire_validator(key(0), Epoch(1)).unwrap();
        let error = writer.retire_validator(key(1), Epoch(1)).unwrap_err();
        assert!(
            matches!(error, RegistryError::TooFewValidators { left: 0, .. }),
            "{error}"
        );
    }
}
