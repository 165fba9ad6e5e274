// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title AuditAnchors
/// @notice Where nodes anchor the heads of their audit logs: each anchor says "record `seq` of
///         log `log` has hash `hash`", in a finalized block no one can rewrite. A log is named
///         by the hash of its first record. `trellis audit verify --anchors` compares a log with
///         every anchor of it: a log rewritten, even re-signed with the node's own key, or cut
///         short, no longer matches.
contract AuditAnchors {
    event Anchored(bytes32 indexed log, address indexed by, uint64 seq, bytes32 hash);

    error NotForward(bytes32 log, uint64 seq, uint64 last);

    /// @notice The highest record anchored of each log, by whom.
    mapping(bytes32 => mapping(address => uint64)) public last;

    /// @notice Anchors record `seq` of `log`; an anchorer's anchors of one log only move forward.
    function anchor(bytes32 log, uint64 seq, bytes32 hash) external {
        uint64 previous = last[log][msg.sender];
        if (seq <= previous) {
            revert NotForward(log, seq, previous);
        }
        last[log][msg.sender] = seq;
        emit Anchored(log, msg.sender, seq, hash);
    }
}
