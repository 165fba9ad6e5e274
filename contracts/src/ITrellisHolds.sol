// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The holds system contract of every Trellis chain whose genesis lists founders; its
///      balance is the escrow of every held transfer.
address constant TRELLIS_HOLDS = 0x0000000000000000000000000000000000001002;

/// @title ITrellisHolds
/// @notice Held transfers: a plain transfer above its sender's hold threshold (set by governance,
///         `ITrellisActions.setIdentityLimits`) is kept here instead of reaching its recipient,
///         until an approver (role `approver`) of another identity releases it or returns it to
///         its sender, or until it expires (10,000 blocks) and anyone returns it.
interface ITrellisHolds {
    function approve(uint64 id) external;
    function reject(uint64 id) external;
    /// After its expiry height: back to its sender.
    function reclaim(uint64 id) external;

    function holdCount() external view returns (uint64);

    /// status: 0 waiting, 1 released, 2 returned, 3 expired (waiting past its expiry).
    function holdOf(uint64 id)
        external
        view
        returns (address from, address to, uint256 value, uint64 created, uint64 expires, uint8 status);

    event Held(uint64 indexed id, address indexed from, address indexed to, uint256 value, uint64 expires);
    event Released(uint64 indexed id, address indexed approver);
    event Returned(uint64 indexed id, address indexed by);
}
