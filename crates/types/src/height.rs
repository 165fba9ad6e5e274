//! Block heights.

use commonware_codec::{Error, FixedSize, Read, ReadExt, Write};
use std::fmt;

/// The position of a block in the chain; genesis is height 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Height(pub u64);

impl Height {
    /// The genesis height.
    pub const GENESIS: Self = Self(0);

    /// The height of this block's child.
    ///
    /// # Panics
    /// At `u64::MAX`: a chain that long means something is badly wrong.
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).expect("block height overflow"))
    }

    /// The parent's height, or `None` at genesis.
    pub fn parent(self) -> Option<Self> {
        self.0.checked_sub(1).map(Self)
    }

    /// The raw number, as the EVM's `block.number` and JSON-RPC see it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Write for Height {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        self.0.write(buf);
    }
}

impl FixedSize for Height {
    const SIZE: usize = u64::SIZE;
}

impl Read for Height {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, Error> {
        Ok(Self(u64::read(buf)?))
    }
}

/// A consensus epoch: a span of views run by one validator set.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Epoch(pub u64);

/// Blocks per epoch: height `h` is in epoch `h / length`, so epoch 0 begins with genesis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EpochLength(pub std::num::NonZeroU64);

impl EpochLength {
    /// One epoch that never ends: a chain whose validators never change.
    pub const FOREVER: Self = Self(std::num::NonZeroU64::MAX);

    /// A thousand blocks: minutes under load, a quarter of an hour on an idle chain.
    pub const DEFAULT: Self = Self(std::num::NonZeroU64::new(1_000).expect("not zero"));

    pub fn epoch_of(self, height: Height) -> Epoch {
        Epoch(height.0 / self.0.get())
    }

    /// The epoch after the one `height` is in.
    pub fn next_epoch(self, height: Height) -> Epoch {
        Epoch(self.epoch_of(height).0 + 1)
    }

    /// Whether `height` is the last block of its epoch.
    pub fn is_last(self, height: Height) -> bool {
        height.0 % self.0.get() == self.0.get() - 1
    }

    /// The last block of the epoch before `epoch`; `None` for epoch 0.
    pub fn last_before(self, epoch: Epoch) -> Option<Height> {
        (epoch.0 > 0).then(|| Height(epoch.0 * self.0.get() - 1))
    }
}

/// A consensus view: one attempt, led by one validator, to extend the chain. Views that time out
/// produce no block, so views and heights diverge.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct View(pub u64);

macro_rules! fixed_u64 {
    ($name:ident) => {
        impl $name {
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl bytes::BufMut) {
                self.0.write(buf);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = u64::SIZE;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, Error> {
                Ok(Self(u64::read(buf)?))
            }
        }
    };
}

fixed_u64!(Epoch);
fixed_u64!(View);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_split_heights_and_name_their_last_blocks() {
        let length = EpochLength(std::num::NonZeroU64::new(10).unwrap());
        assert_eq!(length.epoch_of(Height(9)), Epoch(0));
        assert_eq!(length.epoch_of(Height(10)), Epoch(1));
        assert_eq!(length.next_epoch(Height(9)), Epoch(1));
        assert!(length.is_last(Height(9)) && length.is_last(Height(19)));
        assert!(!length.is_last(Height(10)) && !length.is_last(Height(0)));
        assert_eq!(length.last_before(Epoch(0)), None);
        assert_eq!(length.last_before(Epoch(2)), Some(Height(19)));
        assert!(!EpochLength::FOREVER.is_last(Height(1_000_000)));
    }

    #[test]
    fn next_and_parent_are_inverse() {
        let h = Height(41);
        assert_eq!(h.next(), Height(42));
        assert_eq!(h.next().parent(), Some(h));
        assert_eq!(Height::GENESIS.parent(), None);
    }

    #[test]
    #[should_panic(expected = "block height overflow")]
    fn overflow_stops_loudly() {
        Height(u64::MAX).next();
    }
}
