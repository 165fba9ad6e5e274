// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ITrellisGovernance, TRELLIS_GOVERNANCE} from "./ITrellisGovernance.sol";

/// @title CouncilSeat
/// @notice A contract holding a governor's seat (registered as an account of a governor
///         identity), voting as its owner tells it: how a multisig or a DAO would take part in
///         governance.
contract CouncilSeat {
    address public immutable owner;

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "CouncilSeat: not the owner");
        _;
    }

    function propose(bytes calldata action, uint64 votingBlocks) external onlyOwner returns (uint64) {
        return ITrellisGovernance(TRELLIS_GOVERNANCE).propose(action, votingBlocks);
    }

    function vote(uint64 id, bool approve) external onlyOwner {
        ITrellisGovernance(TRELLIS_GOVERNANCE).vote(id, approve);
    }

    /// The status of proposal `id`, read through the interface.
    function statusOf(uint64 id) external view returns (uint8 status) {
        (,,,, status,,,) = ITrellisGovernance(TRELLIS_GOVERNANCE).proposal(id);
    }

    /// Tries to run governance's code as its own (which system contracts refuse), bubbling up
    /// the revert reason.
    function voteByDelegateCall(uint64 id) external onlyOwner {
        (bool ok, bytes memory reason) =
            TRELLIS_GOVERNANCE.delegatecall(abi.encodeCall(ITrellisGovernance.vote, (id, true)));
        if (!ok) {
            assembly {
                revert(add(reason, 32), mload(reason))
            }
        }
    }
}
