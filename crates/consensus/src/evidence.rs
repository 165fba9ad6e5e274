//! Evidence against a validator: two conflicting consensus messages it signed for one view
//! (notarizes or finalizes of two different blocks, or a nullify and a finalize), kept with
//! what anyone needs to check them without a node: the chain's signature namespace and the
//! epoch's validators, in the order the signer's index refers to.
//!
//! The encoding is canonical (commonware's codec), so the bytes a node hands out are the
//! evidence itself: [`Evidence::verify`] needs nothing else.

use crate::scheme::Scheme;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write, varint::UInt,
};
use commonware_consensus::{
    Viewable as _,
    simplex::types::{
        Activity, Attributable as _, ConflictingFinalize, ConflictingNotarize, NullifyFinalize,
    },
};
use commonware_cryptography::ed25519::PublicKey;
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use std::fmt;
use trellis_types::{BlockHash, Epoch, ValidatorId};

/// The longest namespace and largest validator set evidence may name: far above any real
/// chain's, they only bound what decoding allocates.
const MAX_NAMESPACE: usize = 256;
const MAX_VALIDATORS: usize = 1_024;

/// What the validator signed that it must not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Notarizes of two different blocks in one view.
    ConflictingNotarize,
    /// Finalizes of two different blocks in one view.
    ConflictingFinalize,
    /// A vote to skip a view and a vote to finalize its block.
    NullifyFinalize,
}

impl FaultKind {
    /// The name metrics, alarms and the API use.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConflictingNotarize => "conflicting_notarize",
            Self::ConflictingFinalize => "conflicting_finalize",
            Self::NullifyFinalize => "nullify_finalize",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two signed messages.
#[derive(Clone, Debug, PartialEq)]
enum Proof {
    Notarize(ConflictingNotarize<Scheme, BlockHash>),
    Finalize(ConflictingFinalize<Scheme, BlockHash>),
    NullifyFinalize(NullifyFinalize<Scheme, BlockHash>),
}

impl Proof {
    fn kind(&self) -> FaultKind {
        match self {
            Self::Notarize(_) => FaultKind::ConflictingNotarize,
            Self::Finalize(_) => FaultKind::ConflictingFinalize,
            Self::NullifyFinalize(_) => FaultKind::NullifyFinalize,
        }
    }

    fn signer(&self) -> usize {
        let participant = match self {
            Self::Notarize(p) => p.signer(),
            Self::Finalize(p) => p.signer(),
            Self::NullifyFinalize(p) => p.signer(),
        };
        participant.get() as usize
    }

    fn view(&self) -> u64 {
        match self {
            Self::Notarize(p) => p.view().get(),
            Self::Finalize(p) => p.view().get(),
            Self::NullifyFinalize(p) => p.view().get(),
        }
    }

    fn epoch(&self) -> u64 {
        use commonware_consensus::Epochable as _;
        match self {
            Self::Notarize(p) => p.epoch().get(),
            Self::Finalize(p) => p.epoch().get(),
            Self::NullifyFinalize(p) => p.epoch().get(),
        }
    }

    fn verify(&self, scheme: &Scheme) -> bool {
        let mut rng = rand::rng();
        match self {
            Self::Notarize(p) => p.verify(&mut rng, scheme, &Sequential),
            Self::Finalize(p) => p.verify(&mut rng, scheme, &Sequential),
            Self::NullifyFinalize(p) => p.verify(&mut rng, scheme, &Sequential),
        }
    }
}

/// Two conflicting messages one validator signed, with the context that checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    namespace: Vec<u8>,
    epoch: Epoch,
    /// The epoch's validators, ordered as simplex indexes them.
    validators: Vec<PublicKey>,
    proof: Proof,
}

/// Why evidence does not prove what it claims.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("the evidence does not decode: {0}")]
    Malformed(#[from] CodecError),
    #[error("the validators are not in the order consensus indexes them (sorted, no repeats)")]
    UnorderedValidators,
    #[error("the signer's index {index} is outside the epoch's {count} validators")]
    UnknownSigner { index: usize, count: usize },
    #[error("the messages are of epoch {signed}, the evidence claims epoch {claimed}")]
    WrongEpoch { signed: u64, claimed: u64 },
    #[error(
        "a signature does not verify: these are not messages validator {validator} signed on this chain"
    )]
    BadSignature { validator: ValidatorId },
}

impl Evidence {
    /// The evidence in a consensus activity, if it is one of the faults.
    pub(crate) fn of(
        activity: &Activity<Scheme, BlockHash>,
        namespace: &[u8],
        epoch: Epoch,
        validators: &Set<PublicKey>,
    ) -> Option<Self> {
        let proof = match activity {
            Activity::ConflictingNotarize(p) => Proof::Notarize(p.clone()),
            Activity::ConflictingFinalize(p) => Proof::Finalize(p.clone()),
            Activity::NullifyFinalize(p) => Proof::NullifyFinalize(p.clone()),
            _ => return None,
        };
        Some(Self {
            namespace: namespace.to_vec(),
            epoch,
            validators: validators.iter().cloned().collect(),
            proof,
        })
    }

    /// The evidence's canonical bytes: what a node hands out and `trellis verify-evidence`
    /// checks.
    pub fn to_bytes(&self) -> Vec<u8> {
        commonware_codec::Encode::encode(self).to_vec()
    }

    /// Evidence from its bytes (not yet verified: see [`Evidence::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EvidenceError> {
        Ok(commonware_codec::DecodeExt::decode(bytes.to_vec())?)
    }

    pub fn kind(&self) -> FaultKind {
        self.proof.kind()
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The view both messages are for.
    pub fn view(&self) -> u64 {
        self.proof.view()
    }

    /// The accused validator's key, if its index is within the set.
    pub fn validator_key(&self) -> Option<&PublicKey> {
        self.validators.get(self.proof.signer())
    }

    /// The accused validator, if its index is within the set.
    pub fn validator(&self) -> Option<ValidatorId> {
        self.validator_key().map(crate::block::validator_id)
    }

    /// Checks that the accused validator signed both messages for this chain and epoch, and
    /// that they conflict (decoding already refused two messages that agree).
    pub fn verify(&self) -> Result<ValidatorId, EvidenceError> {
        let set = Set::from_iter_dedup(self.validators.iter().cloned());
        if set.iter().ne(self.validators.iter()) {
            return Err(EvidenceError::UnorderedValidators);
        }
        let validator = self.validator().ok_or(EvidenceError::UnknownSigner {
            index: self.proof.signer(),
            count: self.validators.len(),
        })?;
        if self.proof.epoch() != self.epoch.0 {
            return Err(EvidenceError::WrongEpoch {
                signed: self.proof.epoch(),
                claimed: self.epoch.0,
            });
        }
        let scheme = Scheme::verifier(&self.namespace, set);
        if !self.proof.verify(&scheme) {
            return Err(EvidenceError::BadSignature { validator });
        }
        Ok(validator)
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let validator = self
            .validator()
            .map_or_else(|| "an unknown validator".to_owned(), |v| v.to_string());
        let what = match &self.proof {
            Proof::Notarize(_) => "notarized two different blocks",
            Proof::Finalize(_) => "voted to finalize two different blocks",
            Proof::NullifyFinalize(_) => "voted both to skip the view and to finalize its block",
        };
        write!(
            f,
            "validator {validator} {what} in view {} of epoch {}",
            self.view(),
            self.epoch.0
        )
    }
}

impl Write for Evidence {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        self.namespace.write(buf);
        UInt(self.epoch.0).write(buf);
        self.validators.write(buf);
        match &self.proof {
            Proof::Notarize(p) => {
                0u8.write(buf);
                p.write(buf);
            }
            Proof::Finalize(p) => {
                1u8.write(buf);
                p.write(buf);
            }
            Proof::NullifyFinalize(p) => {
                2u8.write(buf);
                p.write(buf);
            }
        }
    }
}

impl EncodeSize for Evidence {
    fn encode_size(&self) -> usize {
        self.namespace.encode_size()
            + UInt(self.epoch.0).encode_size()
            + self.validators.encode_size()
            + 1
            + match &self.proof {
                Proof::Notarize(p) => p.encode_size(),
                Proof::Finalize(p) => p.encode_size(),
                Proof::NullifyFinalize(p) => p.encode_size(),
            }
    }
}

impl Read for Evidence {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let namespace = Vec::<u8>::read_cfg(buf, &(RangeCfg::new(..=MAX_NAMESPACE), ()))?;
        let epoch = Epoch(UInt::<u64>::read(buf)?.into());
        let validators = Vec::<PublicKey>::read_cfg(buf, &(RangeCfg::new(..=MAX_VALIDATORS), ()))?;
        let proof = match u8::read(buf)? {
            0 => Proof::Notarize(ConflictingNotarize::read(buf)?),
            1 => Proof::Finalize(ConflictingFinalize::read(buf)?),
            2 => Proof::NullifyFinalize(NullifyFinalize::read(buf)?),
            tag => return Err(CodecError::InvalidEnum(tag)),
        };
        Ok(Self {
            namespace,
            epoch,
            validators,
            proof,
        })
    }
}
