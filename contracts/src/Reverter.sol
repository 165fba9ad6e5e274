// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Reverter
/// @notice Fails on purpose, in each way a contract can, so tests can check that the failure's
///         data reaches the caller intact.
contract Reverter {
    error Unauthorized(address caller, uint256 code);

    uint256 public counter;

    /// Reverts with `Error(string)`.
    function failWithReason() external pure {
        revert("Reverter: not allowed");
    }

    /// Reverts with the custom error `Unauthorized(msg.sender, code)`.
    function failWithCustomError(uint256 code) external view {
        revert Unauthorized(msg.sender, code);
    }

    /// Changes storage, then reverts: the change must not survive.
    function incrementThenFail() external {
        counter += 1;
        require(counter == 0, "Reverter: rolled back");
    }

    /// Panics with code 0x12 (division by zero).
    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    function increment() external {
        counter += 1;
    }
}
