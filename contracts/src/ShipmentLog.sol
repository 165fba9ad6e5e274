// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ITrellisRegistry, TRELLIS_REGISTRY} from "./ITrellisRegistry.sol";

/// @title ShipmentLog
/// @notice An application role checked on chain: only accounts the consortium granted the
///         custom role `shipper` may record a shipment.
contract ShipmentLog {
    bytes32 public constant SHIPPER = keccak256("trellis.role.shipper");

    error NotShipper(address account);

    event Shipped(address indexed by, bytes32 indexed consignment);

    function ship(bytes32 consignment) external {
        if (!ITrellisRegistry(TRELLIS_REGISTRY).may(msg.sender, SHIPPER)) {
            revert NotShipper(msg.sender);
        }
        emit Shipped(msg.sender, consignment);
    }
}
