// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Factory
/// @notice Creates contracts for whoever calls it, with CREATE or CREATE2: on a governed chain
///         only for a transaction whose signer may deploy.
contract Factory {
    event Made(address child);

    function make() external returns (address child) {
        child = address(new Child());
        emit Made(child);
    }

    function makeAt(bytes32 salt) external returns (address child) {
        child = address(new Child{salt: salt}());
        emit Made(child);
    }
}

/// @notice What the factory makes.
contract Child {
    uint256 public constant MADE = 1;
}
