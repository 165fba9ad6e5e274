// ethers.js v6, unchanged, against a running Trellis chain: what a member's application does.
//
// Needs TRELLIS_HTTP (http://HOST:PORT), TRELLIS_WS (ws://HOST:PORT, the same address) and
// TRELLIS_KEY (a funded account's private key). crates/cli/tests/clients.rs starts
// `trellis dev --validators 4` and runs this file; to run it by hand against any Trellis node:
//   TRELLIS_HTTP=http://127.0.0.1:8545 TRELLIS_WS=ws://127.0.0.1:8545 TRELLIS_KEY=0x… npm test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';
import { compile } from '../lib/solidity.js';

// ethers answers an identical request from a 250 ms cache by default. Trellis finalizes a
// transaction faster than that, so a nonce read just before a transaction is included would
// be served stale to the next transaction: wallets sending back to back must turn it off.
const NO_CACHE = { cacheTimeout: -1 };

const SUPPLY = 1_000_000n * 10n ** 18n;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: see the header of this file`);
  return value;
}

/** Resolves with the first value `subscribe(resolve)` delivers, or fails after `ms`. */
function first(what, subscribe, ms = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    subscribe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

let provider;
let wallet;
let token;
let ws;

before(async () => {
  provider = new ethers.JsonRpcProvider(env('TRELLIS_HTTP'), undefined, NO_CACHE);
  provider.pollingInterval = 100;
  wallet = new ethers.Wallet(env('TRELLIS_KEY'), provider);
  ws = new ethers.WebSocketProvider(env('TRELLIS_WS'));
});

after(async () => {
  // A `once` listener unsubscribes as it fires; let those eth_unsubscribe calls be answered
  // before the socket closes, or ethers reports them as cancelled after the tests.
  await ws?.removeAllListeners();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await ws?.destroy();
  provider?.destroy();
});

test('the network is the dev chain', async () => {
  const network = await provider.getNetwork();
  assert.equal(network.chainId, 1337n);
  assert.equal((await ws.getNetwork()).chainId, 1337n, 'WebSocket on the same address');
  // Every block is final in BFT: 'finalized' is the latest block (blocks may be added between
  // the calls).
  const before = await provider.getBlockNumber();
  const finalized = await provider.getBlock('finalized');
  const after = await provider.getBlockNumber();
  assert.ok(before <= finalized.number && finalized.number <= after);
});

test('deploys an ERC-20 compiled with solc-js', async () => {
  const { abi, bytecode } = compile('TrellisToken.sol', 'TrellisToken');
  const factory = new ethers.ContractFactory(abi, bytecode, wallet);
  token = await factory.deploy('Ethers Token', 'ETH6', SUPPLY);
  const receipt = await token.deploymentTransaction().wait();
  assert.equal(receipt.status, 1);
  assert.equal(receipt.contractAddress, await token.getAddress());
  assert.notEqual(await provider.getCode(await token.getAddress()), '0x');
  assert.equal(await token.symbol(), 'ETH6');
  assert.equal(await token.balanceOf(wallet.address), SUPPLY);
});

test('transfers, waits for receipts and reads balances', async () => {
  const alice = ethers.Wallet.createRandom().address;
  const tx = await token.transfer(alice, 1234n);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  assert.equal(receipt.hash, tx.hash);
  assert.equal(await token.balanceOf(alice), 1234n);
  assert.equal(await token.balanceOf(wallet.address), SUPPLY - 1234n);
  // Calls at an earlier block see the state as it was then.
  assert.equal(await token.balanceOf(alice, { blockTag: receipt.blockNumber - 1 }), 0n);
  assert.equal(await token.balanceOf(alice, { blockTag: receipt.blockNumber }), 1234n);
  const fetched = await provider.getTransaction(tx.hash);
  assert.equal(fetched.blockNumber, receipt.blockNumber);
  assert.equal(fetched.from, wallet.address);
  const block = await provider.getBlock(receipt.blockHash, true);
  assert.ok(block.transactions.includes(tx.hash));
});

test('queries Transfer events with a topic filter', async () => {
  const bob = ethers.Wallet.createRandom().address;
  await (await token.transfer(bob, 7n)).wait();
  await (await token.transfer(bob, 8n)).wait();
  const events = await token.queryFilter(token.filters.Transfer(wallet.address, bob), 0, 'latest');
  assert.deepEqual(
    events.map((e) => e.args.value),
    [7n, 8n],
  );
  for (const event of events) {
    assert.equal(event.args.from, wallet.address);
    assert.equal(event.args.to, bob);
  }
  const none = await token.queryFilter(token.filters.Transfer(bob), 0, 'latest');
  assert.deepEqual(none, [], 'bob sent nothing');
});

test('catches reverts and reads their reasons', async () => {
  const stranger = ethers.Wallet.createRandom().connect(provider);
  // A custom error, decoded by the contract's ABI.
  await assert.rejects(token.connect(stranger).transfer.staticCall(wallet.address, 1n), (error) => {
    assert.equal(error.code, 'CALL_EXCEPTION');
    assert.equal(error.revert.name, 'InsufficientBalance');
    assert.equal(error.revert.args.needed, 1n);
    return true;
  });
  // Gas estimation reverts the same way (what sending it would do), with the revert data.
  await assert.rejects(token.connect(stranger).transfer.estimateGas(wallet.address, 1n), (error) => {
    assert.equal(error.code, 'CALL_EXCEPTION');
    assert.equal(token.interface.parseError(error.data).name, 'InsufficientBalance');
    return true;
  });
  // Error(string): the reason itself.
  const { abi, bytecode } = compile('Reverter.sol', 'Reverter');
  const reverter = await new ethers.ContractFactory(abi, bytecode, wallet).deploy();
  await reverter.waitForDeployment();
  await assert.rejects(reverter.failWithReason(), (error) => {
    assert.equal(error.code, 'CALL_EXCEPTION');
    assert.equal(error.reason, 'Reverter: not allowed');
    return true;
  });
});

test('admission failures reach the user with their real reason', async () => {
  const nonce = await provider.getTransactionCount(wallet.address, 'latest');
  await assert.rejects(
    wallet.sendTransaction({ to: wallet.address, value: 1n, nonce: nonce - 1 }),
    (error) => error.code === 'NONCE_EXPIRED',
  );
  const pauper = ethers.Wallet.createRandom().connect(provider);
  await assert.rejects(
    pauper.sendTransaction({ to: wallet.address, value: 1n, gasLimit: 21_000n }),
    (error) => error.code === 'INSUFFICIENT_FUNDS',
  );
});

test('receives newHeads, logs and pending transactions over WebSocket', async () => {
  const carol = ethers.Wallet.createRandom().address;
  const wsToken = token.connect(ws);
  const head = first('newHeads block', (resolve) => ws.once('block', resolve));
  const transfer = first('Transfer log', (resolve) =>
    // The listener gets the event's arguments, then the event itself.
    wsToken.once(wsToken.filters.Transfer(null, carol), (...args) => resolve(args.at(-1))),
  );
  const pending = first('pending transaction', (resolve) => ws.once('pending', resolve));
  // Subscriptions are set up asynchronously: wait until the node has them.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const tx = await token.transfer(carol, 99n);
  const receipt = await tx.wait();
  assert.ok((await head) >= 1);
  const event = await transfer;
  assert.equal(event.args.from, wallet.address);
  assert.equal(event.args.to, carol);
  assert.equal(event.args.value, 99n);
  assert.equal(event.log.transactionHash, receipt.hash);
  assert.equal(await pending, tx.hash);
});
