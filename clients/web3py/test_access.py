"""web3.py against a Trellis node that asks callers for API tokens (`api_access = "tokens"`).

The account signs its own token with eth_account's `sign_message` (EIP-191, as a wallet's
personal_sign) and sends it in the `Authorization` header of every request.
crates/cli/tests/api_access.rs starts the node and runs this file; by hand:
    TRELLIS_HTTP=http://HOST:PORT TRELLIS_KEY=0x... TRELLIS_CHAIN_ID=N python test_access.py
"""

import os
import time
import unittest

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: see the header of this file")
    return value


def api_token(account, chain_id, seconds):
    """The token Trellis expects: its text signed as text by `account`."""
    expires = int(time.time()) + seconds
    text = (
        f"Trellis API token\nchain: {chain_id}\naccount: {account.address}\nexpires: {expires}"
    )
    signature = account.sign_message(encode_defunct(text=text)).signature.hex()
    if not signature.startswith("0x"):
        signature = "0x" + signature
    return f"trellis-api-v1.{chain_id}.{account.address.lower()}.{expires}.{signature}"


def provider(token=None):
    # web3.py replaces its default headers with these: keep the content type.
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Web3(Web3.HTTPProvider(env("TRELLIS_HTTP"), request_kwargs={"headers": headers}))


class ApiTokensWithWeb3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.account = Account.from_key(env("TRELLIS_KEY"))
        cls.chain_id = int(env("TRELLIS_CHAIN_ID"))

    def test_without_a_token_state_is_refused_naming_the_permission(self):
        with self.assertRaises(Exception) as refused:
            provider().eth.get_balance(self.account.address)
        self.assertIn("read:state", str(refused.exception))

    def test_a_self_signed_token_reads_and_transfers(self):
        w3 = provider(api_token(self.account, self.chain_id, 600))
        self.assertGreater(w3.eth.get_balance(self.account.address), 0)
        transaction = {
            "to": Account.create().address,
            "value": 1,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "nonce": w3.eth.get_transaction_count(self.account.address),
            "chainId": self.chain_id,
        }
        signed = self.account.sign_transaction(transaction)
        sent = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=60)
        self.assertEqual(receipt["status"], 1)

    def test_an_expired_token_is_refused(self):
        with self.assertRaises(Exception) as refused:
            provider(api_token(self.account, self.chain_id, -1)).eth.block_number
        self.assertIn("expired", str(refused.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
