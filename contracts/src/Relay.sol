// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Relay
/// @notice Calls on whatever it is asked to, bubbling up a refusal: the contract in the middle
///         that a restricted function must not be reachable through.
contract Relay {
    function relay(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }
}
