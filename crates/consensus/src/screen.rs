//! A receiver that hands on only messages that decode, blocking the peer that sent anything
//! else. Commonware's block broadcast drops an undecodable message with a warning and keeps the
//! connection; no honest node sends one, so the sender is cut off instead of being allowed to
//! spend this node's decoding time up to the channel's quota for as long as it likes.

use commonware_codec::{Buf, Decode as _, Read, ReadExt as _, varint::UInt};
use commonware_p2p::{Blocker, Message, Receiver};
use std::{fmt, num::NonZeroUsize};
use tracing::warn;

/// `inner`, less the messages that do not decode as `T`.
pub(crate) struct Screened<R: Receiver, T: Read, B> {
    inner: R,
    config: T::Cfg,
    blocker: B,
    /// What the channel carries, for the log.
    what: &'static str,
}

impl<R: Receiver, T: Read, B> Screened<R, T, B> {
    pub fn new(inner: R, config: T::Cfg, blocker: B, what: &'static str) -> Self {
        Self {
            inner,
            config,
            blocker,
            what,
        }
    }
}

impl<R: Receiver, T: Read, B> fmt::Debug for Screened<R, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Screened")
            .field("inner", &self.inner)
            .field("what", &self.what)
            .finish()
    }
}

impl<R, T, B> Receiver for Screened<R, T, B>
where
    R: Receiver,
    T: Read + Send + 'static,
    T::Cfg: Send,
    B: Blocker<PublicKey = R::PublicKey>,
{
    type Error = R::Error;
    type PublicKey = R::PublicKey;

    async fn recv(&mut self) -> Result<Message<R::PublicKey>, R::Error> {
        loop {
            let (peer, bytes) = self.inner.recv().await?;
            match T::decode_cfg(bytes.clone(), &self.config) {
                Ok(_) => return Ok((peer, bytes)),
                Err(error) => {
                    warn!(?peer, %error, what = self.what, "a message that does not decode; blocking the peer");
                    self.blocker.block(peer);
                }
            }
        }
    }

    fn capacity(&self) -> NonZeroUsize {
        self.inner.capacity()
    }
}

/// A message on a channel multiplexed by epoch: the epoch (a varint), then a payload its
/// epoch's engine decodes. Screening for it cuts off a peer whose messages name no epoch.
pub(crate) struct EpochPrefixed;

impl Read for EpochPrefixed {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, commonware_codec::Error> {
        UInt::<u64>::read(buf)?;
        buf.advance(buf.remaining());
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation;
    use commonware_codec::Encode as _;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
    use commonware_p2p::{Recipients, Sender as _};
    use commonware_runtime::{Runner as _, deterministic};

    /// On commonware's simulated network: what does not decode is not handed on and its
    /// sender is blocked; what decodes passes unchanged.
    #[test]
    fn drops_and_blocks_what_does_not_decode() {
        deterministic::Runner::default().start(|context| async move {
            let keys: Vec<_> = (0..2).map(PrivateKey::from_seed).collect();
            let peers: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
            let oracle = simulation::network(&context, &peers, &[0, 1]).await;
            let (mut sender, _) = simulation::register(&oracle.control(peers[0].clone()), 9).await;
            let control = oracle.control(peers[1].clone());
            let (_, receiver) = simulation::register(&control, 9).await;
            let mut screened = Screened::<_, u64, _>::new(receiver, (), control, "numbers");
            let _ = sender.send(Recipients::All, vec![1u8, 2, 3], false);
            let _ = sender.send(Recipients::All, 7u64.encode(), false);
            let (from, bytes) = screened.recv().await.unwrap();
            assert_eq!(from, peers[0]);
            assert_eq!(u64::decode_cfg(bytes, &()).unwrap(), 7);
            assert_eq!(
                oracle.blocked().await.unwrap(),
                vec![(peers[1].clone(), peers[0].clone())]
            );
        });
    }

    #[test]
    fn an_epoch_prefix_is_a_varint_before_any_payload() {
        let mut prefixed = UInt(7u64).encode().to_vec();
        prefixed.extend_from_slice(b"any payload");
        assert!(EpochPrefixed::decode_cfg(prefixed, &()).is_ok());
        assert!(EpochPrefixed::decode_cfg(vec![0xa5u8; 300], &()).is_err());
        assert!(EpochPrefixed::decode_cfg(Vec::new(), &()).is_err());
    }
}
