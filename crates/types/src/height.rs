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
