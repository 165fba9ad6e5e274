//! World state of Trellis: accounts, balances, nonces, code and storage, behind a trait that
//! execution reads through and commits per-block change sets to.
