//! The consensus signature scheme: commonware's ed25519 simplex scheme, signing through a
//! [`ValidatorSigner`] so that the validator's key may stay in an HSM.
//!
//! Votes, certificates and their wire and storage encodings are exactly those of
//! `commonware_consensus::simplex::scheme::ed25519::Scheme` (verification is its `Generic`
//! implementation); only who holds the private key differs. A signer whose device fails
//! returns no attestation, which simplex treats as not voting in that view.

use commonware_consensus::simplex::{scheme::Namespace, types::Subject};
use commonware_cryptography::{
    Digest,
    certificate::{self, AssemblyError, Attestation, Membership, Verification},
    ed25519::{self, certificate::Generic},
};
use commonware_parallel::Strategy;
use commonware_runtime::{
    Metrics,
    telemetry::metrics::{Counter, Histogram, MetricsExt as _},
};
use commonware_utils::{
    N3f1, Participant,
    iter::NonEmpty,
    ordered::{Quorum, Set},
};
use rand_core::CryptoRng;
use trellis_crypto::ValidatorSigner;

/// How this validator's votes are signed: seconds per signature (an HSM's round trip shows
/// here) and signatures its device failed to give (`trellis_consensus_signing_…`).
#[derive(Clone)]
pub(crate) struct Signing {
    seconds: Histogram,
    failures: Counter,
}

impl Signing {
    pub fn register(context: &impl Metrics) -> Self {
        const BUCKETS: [f64; 10] = [
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25,
        ];
        Self {
            seconds: context.histogram(
                "seconds",
                "Seconds to sign one consensus vote with this validator's key (memory or HSM)",
                BUCKETS,
            ),
            failures: context.counter(
                "failures",
                "Consensus votes the key's device failed to sign (the view goes without this vote)",
            ),
        }
    }
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signing")
    }
}

/// An ed25519 simplex scheme for one epoch's participants.
#[derive(Clone, Debug)]
pub struct Scheme {
    generic: Generic<Namespace>,
    signer: Option<(Participant, ValidatorSigner)>,
    /// Where signing is measured, if anywhere.
    signing: Option<Signing>,
}

impl Scheme {
    /// A scheme that signs as `signer`, or `None` if `signer` is not a participant.
    pub fn signer(
        namespace: &[u8],
        participants: Set<ed25519::PublicKey>,
        signer: ValidatorSigner,
    ) -> Option<Self> {
        use commonware_cryptography::Signer as _;
        let index = Quorum::index(&participants, &signer.public_key())?;
        Some(Self {
            generic: Generic::verifier(namespace, participants),
            signer: Some((index, signer)),
            signing: None,
        })
    }

    /// This scheme, its signatures measured in `signing`.
    pub(crate) fn measured(mut self, signing: Option<Signing>) -> Self {
        self.signing = signing;
        self
    }

    /// A scheme that verifies only.
    pub fn verifier(namespace: &[u8], participants: Set<ed25519::PublicKey>) -> Self {
        Self {
            generic: Generic::verifier(namespace, participants),
            signer: None,
            signing: None,
        }
    }
}

impl certificate::Verifier for Scheme {
    type Subject<'a, D: Digest> = Subject<'a, D>;
    type Faults = N3f1;
    type PublicKey = ed25519::PublicKey;
    type Certificate = ed25519::certificate::Certificate;

    fn verify_certificate<R, D>(
        &self,
        rng: &mut R,
        subject: Self::Subject<'_, D>,
        certificate: &Self::Certificate,
        strategy: &impl Strategy,
    ) -> bool
    where
        R: CryptoRng,
        D: Digest,
    {
        self.generic
            .verify_certificate::<Self, _>(rng, subject, certificate, strategy)
    }

    fn verify_certificates<'a, R, D, I>(
        &self,
        rng: &mut R,
        certificates: NonEmpty<I>,
        strategy: &impl Strategy,
    ) -> bool
    where
        R: CryptoRng,
        D: Digest,
        I: Iterator<Item = (Self::Subject<'a, D>, &'a Self::Certificate)>,
    {
        self.generic
            .verify_certificates::<Self, _, _, _>(rng, certificates, strategy)
    }

    fn is_batchable() -> bool {
        Generic::<Namespace>::is_batchable()
    }

    fn max_certificate_size(participants: u32) -> usize {
        Generic::<Namespace>::max_certificate_size(participants)
    }

    fn certificate_codec_config(&self) -> <Self::Certificate as commonware_codec::Read>::Cfg {
        self.generic.certificate_codec_config()
    }

    fn certificate_codec_config_unbounded() -> <Self::Certificate as commonware_codec::Read>::Cfg {
        Generic::<Namespace>::certificate_codec_config_unbounded()
    }
}

impl certificate::Scheme for Scheme {
    type Signature = ed25519::Signature;

    fn me(&self) -> Option<Membership> {
        self.signer
            .as_ref()
            .map(|(index, _)| Membership::Signer(*index))
    }

    fn participants(&self) -> &Set<Self::PublicKey> {
        &self.generic.participants
    }

    fn sign<D: Digest>(&self, subject: Self::Subject<'_, D>) -> Option<Attestation<Self>> {
        use commonware_cryptography::certificate::Subject as _;
        let (index, signer) = self.signer.as_ref()?;
        let namespace = subject.namespace(&self.generic.namespace);
        let started = std::time::Instant::now();
        let signature = signer.try_sign(namespace, &subject.message());
        if let Some(signing) = &self.signing {
            match signature {
                Some(_) => signing.seconds.observe(started.elapsed().as_secs_f64()),
                None => {
                    signing.failures.inc();
                }
            }
        }
        let signature = signature?;
        Some(Attestation {
            signer: *index,
            signature: signature.into(),
        })
    }

    fn verify_attestation<R, D>(
        &self,
        _rng: &mut R,
        subject: Self::Subject<'_, D>,
        attestation: &Attestation<Self>,
        _strategy: &impl Strategy,
    ) -> bool
    where
        R: CryptoRng,
        D: Digest,
    {
        self.generic.verify_attestation(subject, attestation)
    }

    fn verify_attestations<R, D, I>(
        &self,
        rng: &mut R,
        subject: Self::Subject<'_, D>,
        attestations: I,
        strategy: &impl Strategy,
    ) -> Verification<Self>
    where
        R: CryptoRng,
        D: Digest,
        I: IntoIterator<Item = Attestation<Self>>,
        I::IntoIter: Send,
    {
        self.generic
            .verify_attestations(rng, subject, attestations, strategy)
    }

    fn optimistic_assemble<'a, R, D, I, J>(
        &self,
        rng: &mut R,
        subject: Self::Subject<'_, D>,
        pending: I,
        verified: J,
        strategy: &impl Strategy,
    ) -> Result<Self::Certificate, Verification<Self>>
    where
        R: CryptoRng,
        D: Digest,
        I: IntoIterator<Item = Attestation<Self>>,
        I::IntoIter: ExactSizeIterator + Send,
        J: IntoIterator<Item = &'a Attestation<Self>>,
        J::IntoIter: Send,
    {
        certificate::verify_then_assemble::<Self, _, D, _, _>(
            self, rng, subject, pending, verified, strategy,
        )
    }

    fn assemble<I>(
        &self,
        attestations: NonEmpty<I>,
        _strategy: &impl Strategy,
    ) -> Result<Self::Certificate, AssemblyError>
    where
        I: Iterator<Item = Attestation<Self>> + Send,
    {
        self.generic.assemble::<Self, _>(attestations)
    }

    fn is_attributable() -> bool {
        Generic::<Namespace>::is_attributable()
    }
}
