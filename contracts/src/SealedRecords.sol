// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title SealedRecords
/// @notice Records whose sensitive field stays off the ledger in clear: each holds a salted
///         commitment to the field and an envelope encrypting the field's opening to the
///         parties and an auditor (made by `trellis field seal`, or the trellis-confidential
///         crate). Anyone holding an opening can check it against a record without a
///         transaction (`opens`, through eth_call), so the value is never written to the chain.
contract SealedRecords {
    struct Record {
        address by;
        bytes32 commitment;
    }

    mapping(bytes32 => Record) public records;

    error AlreadyRecorded(bytes32 id);

    event Recorded(bytes32 indexed id, address indexed by, bytes32 commitment, bytes envelope);

    /// @notice Records `commitment` under `id`, with the envelope its recipients decrypt.
    function record(bytes32 id, bytes32 commitment, bytes calldata envelope) external {
        if (records[id].by != address(0)) {
            revert AlreadyRecorded(id);
        }
        records[id] = Record(msg.sender, commitment);
        emit Recorded(id, msg.sender, commitment, envelope);
    }

    /// @notice Whether `label`, `salt` and `value` open record `id`'s commitment.
    function opens(bytes32 id, string calldata label, bytes32 salt, bytes calldata value)
        external
        view
        returns (bool)
    {
        return records[id].commitment == commitmentOf(label, salt, value);
    }

    /// @notice The commitment trellis-confidential computes: keccak256("trellis.field.v1" ||
    ///         keccak256(label) || salt || keccak256(value)).
    function commitmentOf(string calldata label, bytes32 salt, bytes calldata value)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked("trellis.field.v1", keccak256(bytes(label)), salt, keccak256(value)));
    }
}
