//! A validator key reported leaked, with the block it is suspected from: the chain records the
//! report for good, the key leaves the set at the next epoch (the set of a running epoch never
//! changes), and a successor key may take the seat there.
//!
//! The key's own signature proves nothing once it has leaked, so the report comes from the
//! validator's operator (one of its identity's accounts) or from the council; a successor
//! consents by signing [`crate::validator_rotation_message`], as in a rotation. Without a
//! successor the seat is removed, which the fault-tolerance floor may refuse: then name one.
//! A key that has left the set already can still be reported, so the records tied to it are
//! split at the suspected block.

use crate::{
    BY_ITS_KEY, GENESIS, RegistryError, RegistryWriter, RotationSigner,
    VALIDATOR_ROTATION_NAMESPACE,
    layout::{self, Packer},
    validator_rotation_message,
    validators::NewValidator,
};
use alloy_primitives::U256;
use std::net::SocketAddr;
use trellis_state::StateReader;
use trellis_types::{Epoch, Height, ValidatorId};

/// `by` of a report sent by the validator's operator rather than passed by a proposal.
pub const BY_ITS_OPERATOR: u64 = BY_ITS_KEY - 1;

/// A report of a leaked validator key, as a transaction or a proposal asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorCompromise {
    pub key: ValidatorId,
    /// The first block the key is suspected to have been misused in.
    pub since: Height,
    pub successor: Option<SeatSuccessor>,
}

/// The key that takes a reported validator's seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatSuccessor {
    pub key: ValidatorId,
    /// Where it listens for p2p.
    pub p2p: SocketAddr,
    /// Its signature of the rotation message from the reported key.
    pub signature: Vec<u8>,
}

impl SeatSuccessor {
    /// Checks that the successor key signed taking the seat of `old` at `p2p`.
    pub fn check(&self, old: &ValidatorId) -> Result<(), RegistryError> {
        let message = validator_rotation_message(old, &self.key, &self.p2p);
        if trellis_crypto::verify_validator_signature(
            &self.key,
            VALIDATOR_ROTATION_NAMESPACE,
            &message,
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(RegistryError::BadValidatorRotation {
                key: self.key,
                signer: RotationSigner::New,
            })
        }
    }
}

/// What the chain recorded of a validator key's compromise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompromiseRecord {
    /// The first block it is suspected to have been misused in.
    pub since: Height,
    /// The block that recorded the report.
    pub reported: Height,
    /// A proposal's id, or [`BY_ITS_OPERATOR`].
    pub by: u64,
}

impl<R: StateReader + ?Sized> RegistryWriter<'_, R> {
    /// Records `report`, made in block `height` by `by`, and takes the key out of the set
    /// from epoch `from` (the next one) on, seating its successor there if it names one.
    /// Whoever sends it is checked by the caller; the successor's signature here.
    pub fn report_validator_compromised(
        &mut self,
        report: &ValidatorCompromise,
        height: Height,
        from: Epoch,
        by: u64,
    ) -> Result<(), RegistryError> {
        let key = report.key;
        let registry = self.registry();
        let record = registry
            .validator(&key)?
            .ok_or(RegistryError::UnknownValidator(key))?;
        if report.since > height {
            return Err(RegistryError::CompromiseInFuture {
                since: report.since,
                now: height,
            });
        }
        if let Some(recorded) = registry.validator_compromise(&key)? {
            return Err(RegistryError::ValidatorCompromisedAlready {
                key,
                since: recorded.since,
            });
        }
        let seated = record.term.contains(from);
        match (&report.successor, seated) {
            (Some(successor), true) => {
                successor.check(&key)?;
                self.end_term(&record, from);
                let new = NewValidator {
                    key: successor.key,
                    p2p: Some(successor.p2p),
                    identity: record.identity,
                };
                self.add_node(record.role, new, from)?;
                self.write(
                    layout::validator_successor(&key),
                    U256::from_be_bytes(successor.key.0),
                );
            }
            (None, true) => {
                self.retire_node(record.role, key, from)
                    .map_err(|error| match error {
                        RegistryError::TooFewValidators { left, min } => {
                            RegistryError::CompromiseNeedsSuccessor { key, left, min }
                        }
                        other => other,
                    })?
            }
            (Some(_), false) => {
                return Err(RegistryError::NoSeatToHand {
                    key,
                    until: record.term.until.unwrap_or(from),
                });
            }
            (None, false) => {}
        }
        let packed = Packer::default()
            .byte(1)
            .u64(report.since.get())
            .u64(height.get())
            .u64(by)
            .finish();
        self.write(layout::validator_compromise(&key), packed);
        Ok(())
    }
}

/// All the chain records of a validator key: its term, the key that took over from it, and a
/// reported compromise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorLifecycle {
    pub record: crate::ValidatorRecord,
    pub successor: Option<ValidatorId>,
    pub compromise: Option<CompromiseRecord>,
}

impl<R: StateReader + ?Sized> crate::Registry<'_, R> {
    /// Validator `key`'s records, if it was ever a validator.
    pub fn validator_lifecycle(
        &self,
        key: &ValidatorId,
    ) -> Result<Option<ValidatorLifecycle>, RegistryError> {
        let Some(record) = self.validator(key)? else {
            return Ok(None);
        };
        Ok(Some(ValidatorLifecycle {
            record,
            successor: self.validator_successor(key)?,
            compromise: self.validator_compromise(key)?,
        }))
    }

    /// The compromise recorded of validator `key`, if it was reported.
    pub fn validator_compromise(
        &self,
        key: &ValidatorId,
    ) -> Result<Option<CompromiseRecord>, RegistryError> {
        let slot = layout::validator_compromise(key);
        let Some(mut fields) = self.record_fields("validator compromise", slot)? else {
            return Ok(None);
        };
        Ok(Some(CompromiseRecord {
            since: Height(fields.u64()),
            reported: Height(fields.u64()),
            by: fields.u64(),
        }))
    }
}

/// Who reported a compromise, for messages.
pub fn reporter(by: u64) -> String {
    match by {
        BY_ITS_OPERATOR => "by its operator".into(),
        GENESIS => "at genesis".into(),
        proposal => format!("by proposal {proposal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::validators::tests::{committed, genesis, set_of};
    use trellis_crypto::ValidatorKey;

    fn key(seed: u8) -> ValidatorKey {
        ValidatorKey::from_bytes(&[seed; 32])
    }

    fn successor(old: &ValidatorKey, new: &ValidatorKey, signer: &ValidatorKey) -> SeatSuccessor {
        let p2p: SocketAddr = "127.0.0.1:30311".parse().unwrap();
        let message = validator_rotation_message(&old.validator_id(), &new.validator_id(), &p2p);
        SeatSuccessor {
            key: new.validator_id(),
            p2p,
            signature: signer
                .validator_signer()
                .sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
                .unwrap(),
        }
    }

    fn report(old: u8, since: u64, successor: Option<SeatSuccessor>) -> ValidatorCompromise {
        ValidatorCompromise {
            key: key(old).validator_id(),
            since: Height(since),
            successor,
        }
    }

    #[test]
    fn a_reported_key_hands_its_seat_to_a_consenting_successor_at_the_next_epoch() {
        let state = genesis(4);
        let mut writer = RegistryWriter::new(&state);
        let forged = report(1, 5, Some(successor(&key(1), &key(9), &key(8))));
        let error = writer
            .report_validator_compromised(&forged, Height(20), Epoch(3), 7)
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::BadValidatorRotation {
                    signer: RotationSigner::New,
                    ..
                }
            ),
            "{error}"
        );
        let future = report(1, 21, None);
        let error = writer
            .report_validator_compromised(&future, Height(20), Epoch(3), 7)
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::CompromiseInFuture { .. }),
            "{error}"
        );

        let mut writer = RegistryWriter::new(&state);
        let good = report(1, 5, Some(successor(&key(1), &key(9), &key(9))));
        writer
            .report_validator_compromised(&good, Height(20), Epoch(3), 7)
            .unwrap();
        let state = committed(&state, writer);
        let id = |seed| key(seed).validator_id();
        assert_eq!(set_of(&state, Epoch(2)), vec![id(0), id(1), id(2), id(3)]);
        assert_eq!(set_of(&state, Epoch(3)), vec![id(0), id(2), id(3), id(9)]);
        let registry = Registry::new(&state);
        let recorded = registry.validator_compromise(&id(1)).unwrap().unwrap();
        assert_eq!(
            recorded,
            CompromiseRecord {
                since: Height(5),
                reported: Height(20),
                by: 7
            }
        );
        assert_eq!(registry.validator_successor(&id(1)).unwrap(), Some(id(9)));
        assert_eq!(registry.validator_compromise(&id(2)).unwrap(), None);

        // Reported once; a key never seen is named as such.
        let mut writer = RegistryWriter::new(&state);
        let error = writer
            .report_validator_compromised(&report(1, 6, None), Height(30), Epoch(4), 7)
            .unwrap_err();
        assert!(error.to_string().contains("since block 5"), "{error}");
        let error = writer
            .report_validator_compromised(&report(42, 6, None), Height(30), Epoch(4), 7)
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::UnknownValidator(_)),
            "{error}"
        );
    }

    #[test]
    fn a_seat_without_successor_keeps_the_floor_and_a_departed_key_is_still_recorded() {
        let state = genesis(4);
        let mut writer = RegistryWriter::new(&state);
        let error = writer
            .report_validator_compromised(&report(2, 3, None), Height(20), Epoch(3), 7)
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::CompromiseNeedsSuccessor { left: 3, .. }
            ),
            "{error}"
        );

        // A removed key: the report is recorded, but there is no seat left to hand on.
        let state = genesis(5);
        let mut writer = RegistryWriter::new(&state);
        writer
            .retire_validator(key(3).validator_id(), Epoch(2))
            .unwrap();
        let state = committed(&state, writer);
        let mut writer = RegistryWriter::new(&state);
        let seat = report(3, 4, Some(successor(&key(3), &key(9), &key(9))));
        let error = writer
            .report_validator_compromised(&seat, Height(30), Epoch(3), 7)
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::NoSeatToHand { .. }),
            "{error}"
        );
        writer
            .report_validator_compromised(&report(3, 4, None), Height(30), Epoch(3), 7)
            .unwrap();
        let state = committed(&state, writer);
        let registry = Registry::new(&state);
        assert_eq!(
            registry
                .validator_compromise(&key(3).validator_id())
                .unwrap()
                .map(|r| r.since),
            Some(Height(4))
        );
        assert_eq!(set_of(&state, Epoch(3)).len(), 4);
    }
}
