// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The registry system contract of every Trellis chain whose genesis lists founders.
address constant TRELLIS_REGISTRY = 0x0000000000000000000000000000000000001000;

/// @title ITrellisRegistry
/// @notice The consortium's records, read-only: organisations, identities, their accounts and
///         roles, as of the block the call runs in. Contracts check their own roles with `may`
///         (`keccak256("trellis.role.<name>")`); governance grants them.
interface ITrellisRegistry {
    /// Whether `account` may act with `role` now: registered, valid, not frozen or abolished,
    /// and its identity valid and holding the role.
    function may(address account, bytes32 role) external view returns (bool);

    function holds(uint64 identity, bytes32 role) external view returns (bool);

    /// status: 0 normal, 1 frozen, 2 abolished, 3 rotated, 4 revoked, 5 compromised;
    /// statusByProposal: 0 genesis, 2^64-1 the key itself; validUntil 0: never expires.
    function accountOf(address account)
        external
        view
        returns (
            bool registered,
            uint64 identity,
            uint8 status,
            uint64 statusSince,
            uint64 statusByProposal,
            uint64 validFrom,
            uint64 validUntil
        );

    function identityOf(uint64 identity)
        external
        view
        returns (bool exists, uint64 organisation, uint64 validFrom, uint64 validUntil);

    /// Empty for an organisation that does not exist.
    function organisationName(uint64 organisation) external view returns (string memory);

    /// The role a transaction's signer needs to call `selector` of `target` (0: anyone may).
    function methodRole(address target, bytes4 selector) external view returns (bytes32);

    /// The account that took over from a rotated one (0: none).
    function successorOf(address account) external view returns (address);

    /// Hands the caller's registration to `successor` (same identity, roles and limits) from
    /// this block on; the caller's key is refused from then on. `proof`: the successor's
    /// 65-byte signature (r, s, v) of keccak256("trellis key rotation" ++ caller ++ successor).
    function rotateKey(address successor, bytes calldata proof) external;

    /// Retires the caller's key for good; `compromised` also reports it leaked, suspected of
    /// misuse from block `suspectedFrom`.
    function revokeKey(bool compromised, uint64 suspectedFrom) external;

    /// Hands validator `key`'s seat to `successor` (an ed25519 key listening on `p2p`,
    /// "ip:port") from the next epoch on. Both keys sign (ed25519, namespace
    /// "trellis-validator-rotation") the message key ++ successor ++ bytes(p2p); a validator with
    /// an operator identity is rotated from one of the operator's accounts.
    function rotateValidator(
        bytes32 key,
        bytes32 successor,
        string calldata p2p,
        bytes calldata keySignature,
        bytes calldata successorSignature
    ) external;

    /// Validator `key`, operated by the caller's identity, reported leaked, suspected from block
    /// `suspectedFrom`: out of the set from the next epoch on (the running epoch's set never
    /// changes), its seat handed to `successor` (0: none, allowed while the set stays
    /// fault-tolerant; then `p2p` and `successorSignature` are empty). The successor signs the
    /// rotation message as in `rotateValidator`; the leaked key's signature is not asked for.
    function reportValidatorCompromised(
        bytes32 key,
        uint64 suspectedFrom,
        bytes32 successor,
        string calldata p2p,
        bytes calldata successorSignature
    ) external;

    /// A validator key's record: its term in epochs (untilEpoch 0: open), its operator identity
    /// (0: a genesis validator), the key that took over from it (0: none) and, if it was
    /// reported leaked, the block it is suspected from.
    function validatorOf(bytes32 key)
        external
        view
        returns (
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
    event ValidatorCompromised(
        bytes32 indexed key, uint64 suspectedFrom, bytes32 successor, uint64 fromEpoch
    );
}
