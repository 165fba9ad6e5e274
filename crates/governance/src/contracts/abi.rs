//! The system contracts' Solidity interfaces, as the EVM sees them (`contracts/governance/*.sol`
//! ship the same declarations for Solidity callers).

alloy_sol_types::sol! {
    /// The consortium's governance, at `GOVERNANCE_ADDRESS`.
    #[derive(Debug, PartialEq, Eq)]
    interface ITrellisGovernance {
        /// Puts `action` (an `ITrellisActions` call, ABI-encoded) to the governors, open for
        /// votes until `votingBlocks` blocks from now. The proposer's vote is an approval.
        function propose(bytes action, uint64 votingBlocks) external returns (uint64 id);
        /// Approves or rejects proposal `id`, with the weight of the caller's identity.
        function vote(uint64 id, bool approve) external;

        function proposalCount() external view returns (uint64);
        function proposal(uint64 id) external view returns (
            address proposer,
            uint64 proposerIdentity,
            uint64 created,
            uint64 expires,
            uint8 status,
            uint64 approvals,
            uint64 rejections,
            bytes action
        );
        /// 0 none, 1 approved, 2 rejected.
        function ballot(uint64 id, uint64 identity) external view returns (uint8);
        function governorWeight(uint64 identity) external view returns (uint64);
        function totalWeight() external view returns (uint64);
        function thresholds() external view returns (uint16 participationBps, uint16 approvalBps);

        event Proposed(uint64 indexed id, address indexed proposer, uint64 expires, bytes action);
        event Voted(uint64 indexed id, address indexed voter, uint64 identity, bool approve, uint64 weight);
        event Executed(uint64 indexed id);
        event Rejected(uint64 indexed id);
        event Failed(uint64 indexed id, string reason);
    }

    /// What a proposal does once it passes: its `action` is one of these calls, ABI-encoded.
    /// Nothing implements them: they are the typed payloads of proposals.
    #[derive(Debug, PartialEq, Eq)]
    interface ITrellisActions {
        function addOrganisation(uint64 id, string name) external;
        function addIdentity(uint64 id, uint64 organisation, uint64 validFrom, uint64 validUntil) external;
        function addAccount(address account, uint64 identity, uint64 validFrom, uint64 validUntil) external;
        /// A new validity window (validUntil 0: never expires); ending it removes the member
        /// from that block on, its records kept.
        function setIdentityValidity(uint64 identity, uint64 validFrom, uint64 validUntil) external;
        function setAccountValidity(address account, uint64 validFrom, uint64 validUntil) external;
        function grantRole(uint64 identity, bytes32 role) external;
        function revokeRole(uint64 identity, bytes32 role) external;
        /// 0 normal (unfreeze), 1 frozen, 2 abolished (for good).
        function setAccountStatus(address account, uint8 status) external;
        function setGovernorWeight(uint64 identity, uint64 weight) external;
        function setThresholds(uint16 participationBps, uint16 approvalBps) external;
        /// Only accounts whose transaction's signer holds `role` may call `selector` of
        /// `target`, directly or through other contracts; role 0 lifts the restriction.
        function restrictMethod(address target, bytes4 selector, bytes32 role) external;
        /// Value limits in wei for one identity's accounts (0: none), per transaction and per
        /// UTC day of the block's time.
        /// A transfer above `holdAbove` waits in escrow until an approver of another identity
        /// co-signs it (`ITrellisHolds`).
        function setIdentityLimits(uint64 identity, uint256 perTransaction, uint256 perDay, uint256 holdAbove) external;
        /// The same for every identity holding `role` (the strictest limit applies).
        function setRoleLimits(bytes32 role, uint256 perTransaction, uint256 perDay, uint256 holdAbove) external;
        /// Validator `key` (ed25519) at `p2p` ("ip:port"), operated by identity `operator`
        /// (0: none), from the next epoch on.
        function addValidator(bytes32 key, string p2p, uint64 operator) external;
        /// Validator `key` out from the next epoch on.
        function removeValidator(bytes32 key) external;
        /// Full node `key` (its ed25519 transport key) at `p2p`, operated by identity
        /// `operator` (0: none), let follow the chain from the next epoch on.
        function addFullNode(bytes32 key, string p2p, uint64 operator) external;
        /// Full node `key` cut off from the next epoch on.
        function removeFullNode(bytes32 key) external;
        /// Node key `key` (a validator's or a full node's) expires: its term ends before epoch
        /// `untilEpoch`, so its holder must rotate it by then (alarms warn each epoch before).
        function setNodeKeyExpiry(bytes32 key, uint64 untilEpoch) external;
        /// Validator `key` reported leaked, suspected from block `suspectedFrom`: out of the set
        /// from the next epoch on, its seat handed to `successor` (0: none; then `p2p` and
        /// `successorSignature` are empty) as in `ITrellisRegistry.rotateValidator`.
        function compromiseValidator(
            bytes32 key,
            uint64 suspectedFrom,
            bytes32 successor,
            string p2p,
            bytes successorSignature
        ) external;
        /// The block gas limit and the base fee (wei per gas) from the next block on.
        function setChainParameters(uint64 blockGasLimit, uint64 baseFeePerGas) external;
        /// `account`'s registration handed to `successor`, for a holder who lost its key
        /// (`proof`: as for `ITrellisRegistry.rotateKey`).
        function rotateAccount(address account, address successor, bytes proof) external;
        /// `account`'s key retired for good; `compromised`: leaked, suspected from `suspectedFrom`.
        function retireAccount(address account, bool compromised, uint64 suspectedFrom) external;
    }

    /// Held transfers, at `HOLDS_ADDRESS`: a plain transfer above its sender's hold threshold
    /// is kept here, in escrow, until an approver of another identity releases it or returns
    /// it, or until it expires and anyone returns it to its sender.
    #[derive(Debug, PartialEq, Eq)]
    interface ITrellisHolds {
        function approve(uint64 id) external;
        function reject(uint64 id) external;
        /// After its expiry height: back to its sender.
        function reclaim(uint64 id) external;
        function holdCount() external view returns (uint64);
        /// status: 0 waiting, 1 released, 2 returned, 3 expired (waiting past its expiry).
        function holdOf(uint64 id) external view returns (
            address from,
            address to,
            uint256 value,
            uint64 created,
            uint64 expires,
            uint8 status
        );
        event Held(uint64 indexed id, address indexed from, address indexed to, uint256 value, uint64 expires);
        event Released(uint64 indexed id, address indexed approver);
        event Returned(uint64 indexed id, address indexed by);
    }

    /// The registry's records, read-only, at `REGISTRY_ADDRESS`: what contracts ask to check
    /// roles, the built-in ones and their own.
    #[derive(Debug, PartialEq, Eq)]
    interface ITrellisRegistry {
        /// Whether `account` may act with `role` now: registered, valid, not frozen or
        /// abolished, and its identity valid and holding the role.
        function may(address account, bytes32 role) external view returns (bool);
        function holds(uint64 identity, bytes32 role) external view returns (bool);
        function accountOf(address account) external view returns (
            bool registered,
            uint64 identity,
            uint8 status,
            uint64 statusSince,
            uint64 statusByProposal,
            uint64 validFrom,
            uint64 validUntil
        );
        function identityOf(uint64 identity) external view returns (
            bool exists,
            uint64 organisation,
            uint64 validFrom,
            uint64 validUntil
        );
        /// Empty: no such organisation.
        function organisationName(uint64 organisation) external view returns (string);
        /// The role a transaction's signer needs to call `selector` of `target` (0: anyone).
        function methodRole(address target, bytes4 selector) external view returns (bytes32);
        /// The account that took over from a rotated one (0: none).
        function successorOf(address account) external view returns (address);
        /// The caller's registration handed to `successor` from this block on; `proof`: the
        /// successor's signature of keccak256("trellis key rotation" ‖ caller ‖ successor).
        function rotateKey(address successor, bytes proof) external;
        /// The caller's key retired for good; `compromised`: leaked, suspected from `suspectedFrom`.
        function revokeKey(bool compromised, uint64 suspectedFrom) external;
        /// Validator `key` hands its seat to `successor` (listening on `p2p`, "ip:port") from
        /// the next epoch on; both keys sign the rotation message (ed25519).
        function rotateValidator(
            bytes32 key,
            bytes32 successor,
            string p2p,
            bytes keySignature,
            bytes successorSignature
        ) external;
        /// Validator `key`, operated by the caller's identity, reported leaked, suspected from
        /// block `suspectedFrom`: out of the set from the next epoch on, its seat handed to
        /// `successor` (0: none, if the set stays fault-tolerant without it), which signs the
        /// rotation message as in `rotateValidator`.
        function reportValidatorCompromised(
            bytes32 key,
            uint64 suspectedFrom,
            bytes32 successor,
            string p2p,
            bytes successorSignature
        ) external;
        /// A validator key's record: its term in epochs (untilEpoch 0: open), its operator
        /// identity (0: a genesis validator), the key that took over from it (0: none) and,
        /// if it was reported leaked, the block it is suspected from.
        function validatorOf(bytes32 key) external view returns (
            bool known,
            uint64 fromEpoch,
            uint64 untilEpoch,
            uint64 operator,
            bytes32 successor,
            bool compromised,
            uint64 suspectedFrom
        );
        event KeyRotated(address indexed account, address indexed successor);
        event KeyRetired(address indexed account, uint8 status, uint64 suspectedFrom);
        event ValidatorRotated(bytes32 indexed key, bytes32 indexed successor, uint64 fromEpoch);
        event ValidatorCompromised(bytes32 indexed key, uint64 suspectedFrom, bytes32 successor, uint64 fromEpoch);
    }
}
