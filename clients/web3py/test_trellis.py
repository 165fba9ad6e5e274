"""web3.py, unchanged, against a running Trellis chain: deploy, call, transfer, get logs.

Needs TRELLIS_HTTP (http://HOST:PORT) and TRELLIS_KEY (a funded account's private key).
crates/cli/tests/clients.rs starts `trellis dev --validators 4` and runs this file; by hand:
    TRELLIS_HTTP=http://127.0.0.1:8545 TRELLIS_KEY=0x... python test_trellis.py
The token is the artifact solc-js compiled (contracts/artifacts), as a member's build ships it.
"""

import json
import os
import pathlib
import unittest

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "contracts" / "artifacts"
SUPPLY = 5_000 * 10**18


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: see the header of this file")
    return value


class TrellisWithWeb3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w3 = Web3(Web3.HTTPProvider(env("TRELLIS_HTTP")))
        cls.account = Account.from_key(env("TRELLIS_KEY"))
        artifact = json.loads((ARTIFACTS / "TrellisToken.json").read_text())
        cls.abi = artifact["abi"]
        cls.bytecode = artifact["bytecode"]

    def send(self, transaction):
        """Signs and sends a transaction built by web3, and waits for its receipt."""
        transaction.setdefault("from", self.account.address)
        transaction["nonce"] = self.w3.eth.get_transaction_count(self.account.address, "pending")
        transaction["chainId"] = self.w3.eth.chain_id
        if "gas" not in transaction:
            transaction["gas"] = self.w3.eth.estimate_gas(transaction)
        signed = self.account.sign_transaction(transaction)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.1)
        self.assertEqual(receipt["status"], 1, receipt)
        return receipt

    def deploy(self):
        factory = self.w3.eth.contract(abi=self.abi, bytecode=self.bytecode)
        transaction = factory.constructor("Web3 Token", "W3PY", SUPPLY).build_transaction(
            {"from": self.account.address, "nonce": 0}
        )
        receipt = self.send(transaction)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=self.abi)

    def test_node_identity(self):
        self.assertTrue(self.w3.is_connected())
        self.assertEqual(self.w3.eth.chain_id, 1337)
        self.assertEqual(self.w3.net.version, "1337")
        self.assertTrue(self.w3.client_version.startswith("trellis/"))
        self.assertFalse(self.w3.eth.syncing)
        # Every block is final in BFT: "finalized" is the latest block (blocks may be added
        # between the calls).
        before = self.w3.eth.block_number
        finalized = self.w3.eth.get_block("finalized")["number"]
        self.assertTrue(before <= finalized <= self.w3.eth.block_number)

    def test_deploy_call_transfer_and_get_logs(self):
        token = self.deploy()
        self.assertEqual(token.functions.symbol().call(), "W3PY")
        self.assertEqual(token.functions.balanceOf(self.account.address).call(), SUPPLY)

        recipient = Account.create().address
        before = self.w3.eth.get_balance(self.account.address)
        receipt = self.send(
            token.functions.transfer(recipient, 4_321).build_transaction(
                {"from": self.account.address, "nonce": 0}
            )
        )
        self.assertEqual(token.functions.balanceOf(recipient).call(), 4_321)
        earlier = receipt["blockNumber"] - 1
        self.assertEqual(token.functions.balanceOf(recipient).call(block_identifier=earlier), 0)
        self.assertEqual(token.functions.balanceOf(self.account.address).call(), SUPPLY - 4_321)
        # Gas is free on the dev chain: the ether balance is unchanged.
        self.assertEqual(self.w3.eth.get_balance(self.account.address), before)

        # The receipt's event, decoded by the ABI.
        (event,) = token.events.Transfer().process_receipt(receipt)
        self.assertEqual(event["args"]["to"], recipient)
        self.assertEqual(event["args"]["value"], 4_321)

        # eth_getLogs with a topic filter: only the transfers to `recipient`.
        logs = token.events.Transfer().get_logs(
            from_block=0, to_block="latest", argument_filters={"to": recipient}
        )
        self.assertEqual([log["args"]["value"] for log in logs], [4_321])
        self.assertEqual(logs[0]["transactionHash"], receipt["transactionHash"])
        self.assertEqual(logs[0]["blockNumber"], receipt["blockNumber"])
        everything = token.events.Transfer().get_logs(from_block=0, to_block="latest")
        self.assertEqual(len(everything), 2, "the mint and the transfer")

        # A reverting call: the custom error's data reaches web3.py.
        with self.assertRaises(ContractCustomError) as caught:
            token.functions.transfer(self.account.address, 1).call({"from": Account.create().address})
        selector = Web3.keccak(text="InsufficientBalance(address,uint256,uint256)")[:4]
        self.assertTrue(str(caught.exception.data).startswith("0x" + selector.hex().removeprefix("0x")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
