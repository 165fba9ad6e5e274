//! Evidence of Byzantine validators: simplex reports a validator's conflicting votes (two
//! notarizes or two finalizes in one view, or a nullify and a finalize); this reporter keeps
//! them as [`Evidence`] (checkable offline), counts each
//! (`trellis_consensus_faults_total{kind,validator}`), raises an alarm naming the key and hands
//! the evidence to the node's [`FaultSink`] (its risk control), then passes every activity on
//! to marshal unchanged.

use crate::{evidence::Evidence, scheme::Scheme};
use commonware_actor::Feedback;
use commonware_consensus::{Reporter, simplex::types::Activity};
use commonware_cryptography::certificate::Scheme as _;
use commonware_runtime::telemetry::metrics::{CounterFamily, EncodeLabelSet};
use std::sync::Arc;
use tracing::warn;
use trellis_types::{BlockHash, Epoch};

/// Who else hears of each fault: the node's risk control. Must not wait (it is told on
/// consensus's own task).
pub trait FaultSink: Send + Sync + 'static {
    /// A validator signed conflicting messages; `evidence` proves it (see
    /// [`Evidence::verify`]).
    fn fault(&self, evidence: &Evidence);
}

/// What a fault was and whose.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Fault {
    /// `conflicting_notarize`, `conflicting_finalize` or `nullify_finalize`.
    kind: String,
    /// The validator's public key, hex.
    validator: String,
}

/// The reporter one epoch's engine reports to.
#[derive(Clone)]
pub(crate) struct FaultWatch<R> {
    pub inner: R,
    pub faults: CounterFamily<Fault>,
    pub epoch: Epoch,
    pub scheme: Scheme,
    /// The chain's signature namespace, which the evidence carries.
    pub namespace: Arc<[u8]>,
    pub sink: Option<Arc<dyn FaultSink>>,
}

impl<R> Reporter for FaultWatch<R>
where
    R: Reporter<Activity = Activity<Scheme, BlockHash>>,
{
    type Activity = Activity<Scheme, BlockHash>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let participants = self.scheme.participants();
        if let Some(evidence) = Evidence::of(&activity, &self.namespace, self.epoch, participants) {
            let kind = evidence.kind();
            let validator = evidence
                .validator_key()
                .map_or_else(|| "an unknown signer".to_owned(), |key| key.to_string());
            warn!(
                epoch = %self.epoch, %kind, %validator, %evidence,
                "ALARM: a validator signed conflicting votes (equivocation): its key may be leaked or its node faulty; its operator reports it (`trellis keys report-validator`); see what it signed with `trellis keys activity`"
            );
            if let Some(sink) = &self.sink {
                sink.fault(&evidence);
            }
            let fault = Fault {
                kind: kind.name().to_owned(),
                validator,
            };
            self.faults.get_or_create(&fault).inc();
        }
        self.inner.report(activity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{EvidenceError, FaultKind};
    use alloy_primitives::B256;
    use commonware_consensus::{
        simplex::types::{ConflictingNotarize, Notarize, Proposal},
        types::{Epoch as SimplexEpoch, Round, View},
    };
    use commonware_runtime::{
        Metrics as _, Runner as _, deterministic, telemetry::metrics::MetricsExt as _,
    };
    use commonware_utils::ordered::Set;
    use trellis_crypto::ValidatorKey;

    const NAMESPACE: &[u8] = b"test";

    /// Remembers how many activities it was told.
    #[derive(Clone, Default)]
    struct Heard(std::sync::Arc<std::sync::Mutex<usize>>);

    impl Reporter for Heard {
        type Activity = Activity<Scheme, BlockHash>;
        fn report(&mut self, _: Self::Activity) -> Feedback {
            *self.0.lock().unwrap() += 1;
            Feedback::Ok
        }
    }

    /// What the node's risk control was told.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<Evidence>>);

    impl FaultSink for Told {
        fn fault(&self, evidence: &Evidence) {
            self.0.lock().unwrap().push(evidence.clone());
        }
    }

    /// Validator 2's notarizes of two blocks in view 7, as simplex reports them.
    fn equivocation(keys: &[ValidatorKey]) -> (Scheme, Activity<Scheme, BlockHash>) {
        let set = Set::from_iter_dedup(keys.iter().map(ValidatorKey::public_key));
        let liar = &keys[2];
        let scheme = Scheme::signer(NAMESPACE, set, liar.validator_signer()).expect("listed");
        let round = Round::new(SimplexEpoch::new(3), View::new(7));
        let vote = |byte: u8| {
            let proposal = Proposal::new(round, View::new(6), BlockHash(B256::repeat_byte(byte)));
            Notarize::sign(&scheme, proposal).expect("a participant signs")
        };
        let activity = Activity::ConflictingNotarize(ConflictingNotarize::new(vote(1), vote(2)));
        (scheme, activity)
    }

    fn keys() -> Vec<ValidatorKey> {
        (0..4).map(|_| ValidatorKey::generate().unwrap()).collect()
    }

    /// A validator's two notarizes for different blocks in one view are counted under its key,
    /// handed to the sink as evidence and passed on; an honest vote counts nothing.
    #[test]
    fn conflicting_votes_are_counted_under_the_signers_key() {
        deterministic::Runner::default().start(|context| async move {
            let keys = keys();
            let liar = keys[2].public_key();
            let (scheme, activity) = equivocation(&keys);
            let heard = Heard::default();
            let told = Arc::new(Told::default());
            let mut watch = FaultWatch {
                inner: heard.clone(),
                faults: context.family("faults", "test"),
                epoch: Epoch(3),
                scheme: scheme.clone(),
                namespace: NAMESPACE.into(),
                sink: Some(told.clone()),
            };
            let honest = Proposal::new(
                Round::new(SimplexEpoch::new(3), View::new(8)),
                View::new(7),
                BlockHash(B256::repeat_byte(3)),
            );
            watch.report(Activity::Notarize(Notarize::sign(&scheme, honest).unwrap()));
            assert!(
                !context.encode().contains("conflicting_notarize"),
                "an honest vote"
            );
            watch.report(activity);
            let scrape = context.encode();
            let expected =
                format!("faults_total{{kind=\"conflicting_notarize\",validator=\"{liar}\"}} 1");
            assert!(scrape.contains(&expected), "{scrape}");
            let told = told.0.lock().unwrap();
            assert_eq!(told.len(), 1, "risk control hears of the fault alone");
            assert_eq!(told[0].kind(), FaultKind::ConflictingNotarize);
            assert_eq!(told[0].validator_key(), Some(&liar));
            assert_eq!(
                *heard.0.lock().unwrap(),
                2,
                "every activity goes on to marshal"
            );
        });
    }

    /// The evidence's bytes alone prove who equivocated; altered bytes, or the evidence of
    /// another chain, do not.
    #[test]
    fn evidence_verifies_from_its_bytes_alone_and_not_when_altered() {
        let keys = keys();
        let set = Set::from_iter_dedup(keys.iter().map(ValidatorKey::public_key));
        let (_, activity) = equivocation(&keys);
        let evidence = Evidence::of(&activity, NAMESPACE, Epoch(3), &set).expect("a fault");
        let bytes = evidence.to_bytes();
        let decoded = Evidence::from_bytes(&bytes).expect("its own encoding decodes");
        assert_eq!(decoded, evidence);
        let accused = decoded.verify().expect("genuine evidence verifies");
        assert_eq!(accused, crate::validator_id(&keys[2].public_key()));
        assert!(
            decoded
                .to_string()
                .contains("notarized two different blocks in view 7")
        );

        // A flipped bit in the last signature.
        let mut altered = bytes.clone();
        *altered.last_mut().unwrap() ^= 1;
        match Evidence::from_bytes(&altered).map(|e| e.verify()) {
            Ok(Err(EvidenceError::BadSignature { .. })) | Err(_) => {}
            other => panic!("altered evidence passed: {other:?}"),
        }
        // The same votes claimed for another chain's namespace.
        let elsewhere = Evidence::of(&activity, b"another chain", Epoch(3), &set).unwrap();
        assert!(matches!(
            elsewhere.verify(),
            Err(EvidenceError::BadSignature { .. })
        ));
        // Claimed for another epoch.
        let later = Evidence::of(&activity, NAMESPACE, Epoch(4), &set).unwrap();
        assert!(matches!(
            later.verify(),
            Err(EvidenceError::WrongEpoch { .. })
        ));
        // Truncated.
        assert!(matches!(
            Evidence::from_bytes(&bytes[..bytes.len() / 2]),
            Err(EvidenceError::Malformed(_))
        ));
    }
}
