//! Block execution on revm.
