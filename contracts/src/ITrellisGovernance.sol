// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The governance system contract of every Trellis chain whose genesis lists founders.
address constant TRELLIS_GOVERNANCE = 0x0000000000000000000000000000000000001001;

/// @title ITrellisGovernance
/// @notice The council of governors: proposals carrying an `ITrellisActions` call, weighted
///         votes by governor identity, and execution in the transaction whose vote passes them.
///         A refused call reverts with `Error(string)` naming the reason.
/// @dev A contract registered as an account of a governor identity votes with that identity's
///      weight. Call it; never delegatecall it.
interface ITrellisGovernance {
    /// Puts `action` to the governors, open until `votingBlocks` blocks from now (1 to 1,000,000).
    /// The proposer's identity approves at once. Refused if the action could not be carried
    /// out now.
    function propose(bytes calldata action, uint64 votingBlocks) external returns (uint64 id);

    /// Approves or rejects proposal `id` with the weight of the caller's identity (once per
    /// identity, until the proposal's expiry height).
    function vote(uint64 id, bool approve) external;

    function proposalCount() external view returns (uint64);

    /// status: 0 open, 1 executed, 2 rejected, 3 failed (passed but could no longer be carried
    /// out), 4 expired.
    function proposal(uint64 id)
        external
        view
        returns (
            address proposer,
            uint64 proposerIdentity,
            uint64 created,
            uint64 expires,
            uint8 status,
            uint64 approvals,
            uint64 rejections,
            bytes memory action
        );

    /// 0 none, 1 approved, 2 rejected.
    function ballot(uint64 id, uint64 identity) external view returns (uint8);

    function governorWeight(uint64 identity) external view returns (uint64);

    function totalWeight() external view returns (uint64);

    /// A proposal passes once `participationBps` of the total weight has voted and
    /// `approvalBps` of the weight that voted approves (basis points).
    function thresholds() external view returns (uint16 participationBps, uint16 approvalBps);

    event Proposed(uint64 indexed id, address indexed proposer, uint64 expires, bytes action);
    event Voted(uint64 indexed id, address indexed voter, uint64 identity, bool approve, uint64 weight);
    event Executed(uint64 indexed id);
    event Rejected(uint64 indexed id);
    event Failed(uint64 indexed id, string reason);
}

/// @title ITrellisActions
/// @notice What a proposal does once it passes: its `action` is one of these calls,
///         ABI-encoded (`abi.encodeCall(ITrellisActions.grantRole, (identity, role))`). Nothing
///         implements them. Heights of validity windows: `validUntil` 0 means never expires.
///         Roles are `keccak256("trellis.role.<name>")`.
interface ITrellisActions {
    function addOrganisation(uint64 id, string calldata name) external;
    function addIdentity(uint64 id, uint64 organisation, uint64 validFrom, uint64 validUntil) external;
    function addAccount(address account, uint64 identity, uint64 validFrom, uint64 validUntil) external;
    /// A new validity window for an identity (or one account): ending it removes the member
    /// from that block on; its records stay, for the history.
    function setIdentityValidity(uint64 identity, uint64 validFrom, uint64 validUntil) external;
    function setAccountValidity(address account, uint64 validFrom, uint64 validUntil) external;
    function grantRole(uint64 identity, bytes32 role) external;
    function revokeRole(uint64 identity, bytes32 role) external;
    /// 0 normal (unfreeze), 1 frozen, 2 abolished (for good).
    function setAccountStatus(address account, uint8 status) external;
    function setGovernorWeight(uint64 identity, uint64 weight) external;
    function setThresholds(uint16 participationBps, uint16 approvalBps) external;
    /// Only transactions whose signer holds `role` may call `selector` of `target`, directly or
    /// through other contracts; role 0 lifts the restriction.
    function restrictMethod(address target, bytes4 selector, bytes32 role) external;
    /// Value limits in wei of one identity's accounts (0: none of that kind), per transaction
    /// and per UTC day of the blocks' time; a transfer above one is refused with the limit. A
    /// plain transfer above `holdAbove` waits in escrow (ITrellisHolds) until an approver of
    /// another identity co-signs it.
    function setIdentityLimits(uint64 identity, uint256 perTransaction, uint256 perDay, uint256 holdAbove)
        external;
    /// The same for every identity holding `role` (the strictest limit applies).
    function setRoleLimits(bytes32 role, uint256 perTransaction, uint256 perDay, uint256 holdAbove) external;
    /// Adds validator `key` (ed25519 public key), reached at `p2p` ("host-ip:port"), operated by
    /// identity `operator` (holding the validator-operator role; 0: none), from the next epoch.
    function addValidator(bytes32 key, string calldata p2p, uint64 operator) external;
    /// Removes validator `key` from the next epoch on. A set is never emptied, and one that
    /// tolerates a faulty validator (4 or more) never drops below 4.
    function removeValidator(bytes32 key) external;
    /// Lets full node `key` (its ed25519 transport key), reached at `p2p`, operated by identity
    /// `operator` (holding the validator-operator role; 0: none), follow the chain from the next
    /// epoch on: the validators accept its links.
    function addFullNode(bytes32 key, string calldata p2p, uint64 operator) external;
    /// Cuts full node `key` off from the next epoch on.
    function removeFullNode(bytes32 key) external;
    /// Node key `key` (a validator's or a full node's) expires: its term ends before epoch
    /// `untilEpoch` (the next epoch at the earliest), so its operator must rotate it by then; the
    /// node logs an alarm at each epoch before. A validator's expiry keeps the same floor as a
    /// removal.
    function setNodeKeyExpiry(bytes32 key, uint64 untilEpoch) external;
    /// Validator `key` reported leaked, suspected from block `suspectedFrom`: out of the set
    /// from the next epoch on, its seat handed to `successor` (0: none; then `p2p` and
    /// `successorSignature` are empty), which signs as in `ITrellisRegistry.rotateValidator`.
    function compromiseValidator(
        bytes32 key,
        uint64 suspectedFrom,
        bytes32 successor,
        string calldata p2p,
        bytes calldata successorSignature
    ) external;
    /// The block gas limit (21000 to 10^9) and the base fee in wei per gas (at most 10^15; 0
    /// makes gas free) from the next block on.
    function setChainParameters(uint64 blockGasLimit, uint64 baseFeePerGas) external;

    /// Hands `account`'s registration to `successor` (same identity, roles and limits) from
    /// the next block on, for a holder who lost `account`'s key; `proof` as for
    /// `ITrellisRegistry.rotateKey`.
    function rotateAccount(address account, address successor, bytes calldata proof) external;

    /// Retires `account`'s key for good; `compromised` also reports it leaked, suspected of
    /// misuse from block `suspectedFrom`.
    function retireAccount(address account, bool compromised, uint64 suspectedFrom) external;
}
