//! Evidence of Byzantine validators: simplex reports a validator's conflicting votes (two
//! notarizes or two finalizes in one view, or a nullify and a finalize); this reporter counts
//! each (`trellis_consensus_faults_total{kind,validator}`), raises an alarm naming the key and
//! tells the node's [`FaultSink`] (its risk control), then passes every activity on to marshal
//! unchanged.

use crate::scheme::Scheme;
use commonware_actor::Feedback;
use commonware_consensus::{
    Reporter,
    simplex::types::{Activity, Attributable as _},
};
use commonware_cryptography::{Digest, certificate::Scheme as _};
use commonware_runtime::telemetry::metrics::{CounterFamily, EncodeLabelSet};
use commonware_utils::Participant;
use std::sync::Arc;
use tracing::warn;
use trellis_types::Epoch;

/// Who else hears of each fault: the node's risk control. Must not wait (it is told on
/// consensus's own task).
pub trait FaultSink: Send + Sync + 'static {
    /// `validator` (its public key, hex) committed a fault of `kind` in `epoch`.
    fn fault(&self, epoch: Epoch, kind: &'static str, validator: &str);
}

/// What a fault was and whose.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Fault {
    /// `conflicting_notarize`, `conflicting_finalize` or `nullify_finalize`.
    kind: String,
    /// The validator's public key, hex.
    validator: String,
}

/// The kind of a fault `activity` proves, and who committed it; `None` for an honest vote.
fn fault<D: Digest>(activity: &Activity<Scheme, D>) -> Option<(&'static str, Participant)> {
    match activity {
        Activity::ConflictingNotarize(evidence) => {
            Some(("conflicting_notarize", evidence.signer()))
        }
        Activity::ConflictingFinalize(evidence) => {
            Some(("conflicting_finalize", evidence.signer()))
        }
        Activity::NullifyFinalize(evidence) => Some(("nullify_finalize", evidence.signer())),
        _ => None,
    }
}

/// The reporter one epoch's engine reports to.
#[derive(Clone)]
pub(crate) struct FaultWatch<R> {
    pub inner: R,
    pub faults: CounterFamily<Fault>,
    pub epoch: Epoch,
    pub scheme: Scheme,
    pub sink: Option<Arc<dyn FaultSink>>,
}

impl<R, D> Reporter for FaultWatch<R>
where
    R: Reporter<Activity = Activity<Scheme, D>>,
    D: Digest,
{
    type Activity = Activity<Scheme, D>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Some((kind, signer)) = fault(&activity) {
            let participants = self.scheme.participants();
            let validator = participants
                .get(signer.get() as usize)
                .map_or_else(|| format!("#{}", signer.get()), |key| key.to_string());
            warn!(
                epoch = %self.epoch, %kind, %validator,
                "ALARM: a validator signed conflicting votes (equivocation): its key may be leaked or its node faulty; its operator reports it (`trellis keys report-validator`); see what it signed with `trellis keys activity`"
            );
            if let Some(sink) = &self.sink {
                sink.fault(self.epoch, kind, &validator);
            }
            let fault = Fault {
                kind: kind.to_owned(),
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
    use commonware_consensus::{
        simplex::types::{ConflictingNotarize, Notarize, Proposal},
        types::{Epoch as SimplexEpoch, Round, View},
    };
    use commonware_cryptography::sha256::Digest as Sha256Digest;
    use commonware_runtime::{
        Metrics as _, Runner as _, deterministic, telemetry::metrics::MetricsExt as _,
    };
    use commonware_utils::ordered::Set;
    use trellis_crypto::ValidatorKey;

    /// Remembers what it was told.
    #[derive(Clone, Default)]
    struct Heard(std::sync::Arc<std::sync::Mutex<usize>>);

    impl Reporter for Heard {
        type Activity = Activity<Scheme, Sha256Digest>;
        fn report(&mut self, _: Self::Activity) -> Feedback {
            *self.0.lock().unwrap() += 1;
            Feedback::Ok
        }
    }

    /// What the node's risk control was told.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<(Epoch, &'static str, String)>>);

    impl FaultSink for Told {
        fn fault(&self, epoch: Epoch, kind: &'static str, validator: &str) {
            self.0
                .lock()
                .unwrap()
                .push((epoch, kind, validator.to_owned()));
        }
    }

    /// A validator's two notarizes for different blocks in one view are counted under its key,
    /// told to the sink and passed on; an honest vote counts nothing.
    #[test]
    fn conflicting_votes_are_counted_under_the_signers_key() {
        deterministic::Runner::default().start(|context| async move {
            let keys: Vec<ValidatorKey> =
                (0..4).map(|_| ValidatorKey::generate().unwrap()).collect();
            let set = Set::from_iter_dedup(keys.iter().map(ValidatorKey::public_key));
            let liar = &keys[2];
            let scheme =
                Scheme::signer(b"test", set.clone(), liar.validator_signer()).expect("listed");
            let heard = Heard::default();
            let told = Arc::new(Told::default());
            let mut watch = FaultWatch {
                inner: heard.clone(),
                faults: context.family("faults", "test"),
                epoch: Epoch(3),
                scheme: scheme.clone(),
                sink: Some(told.clone()),
            };
            let round = Round::new(SimplexEpoch::new(0), View::new(7));
            let vote = |byte: u8| {
                let proposal = Proposal::new(round, View::new(6), Sha256Digest::from([byte; 32]));
                Notarize::sign(&scheme, proposal).expect("a participant signs")
            };
            watch.report(Activity::Notarize(vote(1)));
            assert!(
                !context.encode().contains("conflicting_notarize"),
                "an honest vote"
            );
            watch.report(Activity::ConflictingNotarize(ConflictingNotarize::new(
                vote(1),
                vote(2),
            )));
            let scrape = context.encode();
            let expected = format!(
                "faults_total{{kind=\"conflicting_notarize\",validator=\"{}\"}} 1",
                liar.public_key()
            );
            assert!(scrape.contains(&expected), "{scrape}");
            let key = liar.public_key().to_string();
            assert_eq!(
                *told.0.lock().unwrap(),
                vec![(Epoch(3), "conflicting_notarize", key)],
                "risk control hears of the fault alone"
            );
            assert_eq!(
                *heard.0.lock().unwrap(),
                2,
                "every activity goes on to marshal"
            );
        });
    }
}
