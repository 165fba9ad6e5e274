// ethers.js v6 against a Trellis node that asks callers for API tokens (`api_access =
// "tokens"`, started by crates/cli/tests/api_access.rs): the wallet signs its own token with
// `signMessage` (EIP-191, as MetaMask's personal_sign), then calls over HTTP with the token in
// a header and over WebSocket with it in the URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';
import { compile } from '../lib/solidity.js';

const HTTP = process.env.TRELLIS_HTTP;
const WS = process.env.TRELLIS_WS;
const CHAIN_ID = BigInt(process.env.TRELLIS_CHAIN_ID);
const wallet = new ethers.Wallet(process.env.TRELLIS_KEY);

/** A token for `wallet`, valid for `seconds`: the text Trellis expects, signed as text. */
async function apiToken(seconds) {
  const expires = Math.floor(Date.now() / 1000) + seconds;
  const text = `Trellis API token\nchain: ${CHAIN_ID}\naccount: ${wallet.address}\nexpires: ${expires}`;
  const signature = await wallet.signMessage(text);
  return `trellis-api-v1.${CHAIN_ID}.${wallet.address.toLowerCase()}.${expires}.${signature}`;
}

/** A provider whose every request carries `token` (none: anonymous). */
function provider(token) {
  const request = new ethers.FetchRequest(HTTP);
  if (token) request.setHeader('Authorization', `Bearer ${token}`);
  return new ethers.JsonRpcProvider(request, CHAIN_ID, {
    staticNetwork: true,
    pollingInterval: 100,
    cacheTimeout: -1,
  });
}

/** Everything an ethers error says. */
function said(error) {
  return [error.shortMessage, error.message, JSON.stringify(error.error ?? error.info ?? {})]
    .filter(Boolean)
    .join(' | ');
}

test('without a token, state is refused with the permission it needs', async () => {
  const anonymous = provider(null);
  await assert.rejects(anonymous.getBalance(wallet.address), (error) => {
    assert.match(said(error), /read:state/);
    assert.match(said(error), /4100/);
    return true;
  });
  anonymous.destroy();
});

test('a self-signed token reads state and sends a transfer', async () => {
  const token = await apiToken(600);
  const member = provider(token);
  const signer = wallet.connect(member);
  const before = await member.getBalance(wallet.address);
  assert.ok(before > 0n, 'the account is funded');
  const sent = await signer.sendTransaction({ to: ethers.Wallet.createRandom().address, value: 1n });
  const receipt = await sent.wait();
  assert.equal(receipt.status, 1);
  member.destroy();
});

test('a forged token is refused', async () => {
  const token = await apiToken(600);
  // The expiry pushed out after signing.
  const parts = token.split('.');
  parts[3] = String(Number(parts[3]) + 1);
  const forged = parts.join('.');
  const refused = provider(forged);
  await assert.rejects(refused.getBlockNumber(), (error) => {
    assert.match(said(error), /forged or altered/);
    return true;
  });
  refused.destroy();
});

test('over WebSocket, the token rides in the URL', async () => {
  const token = await apiToken(600);
  const socket = new ethers.WebSocketProvider(`${WS}/?token=${token}`, CHAIN_ID, {
    staticNetwork: true,
  });
  const balance = await socket.getBalance(wallet.address);
  assert.ok(balance > 0n);
  const head = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no newHeads within 30 s')), 30_000);
    socket.once('block', (number) => {
      clearTimeout(timer);
      resolve(number);
    });
  });
  assert.ok(head > 0);
  await socket.destroy();
});

/** Resolves with the first value `subscribe(resolve)` delivers, or fails after 30 s. */
function first(what, subscribe) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30_000);
    subscribe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

test("a member hears its own token's events: subscribed over WebSocket, polled over HTTP", async () => {
  const token = await apiToken(600);
  const member = provider(token);
  const socket = new ethers.WebSocketProvider(`${WS}/?token=${token}`, CHAIN_ID, {
    staticNetwork: true,
  });
  const { abi, bytecode } = compile('TrellisToken.sol', 'TrellisToken');
  const factory = new ethers.ContractFactory(abi, bytecode, wallet.connect(member));
  const erc20 = await factory.deploy('Member Token', 'MBR', 1_000_000n);
  await erc20.waitForDeployment();
  const address = await erc20.getAddress();
  const polled = new ethers.Contract(address, abi, member);
  const subscribed = new ethers.Contract(address, abi, socket);
  const viaFilter = first('Transfer over an HTTP filter', (done) =>
    polled.once('Transfer', (from, to, value) => done({ from, to, value })),
  );
  const viaSocket = first('Transfer over a WebSocket subscription', (done) =>
    subscribed.once('Transfer', (from, to, value) => done({ from, to, value })),
  );
  // Let both listeners be installed (eth_newFilter, eth_subscribe) before the transfer.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const payee = ethers.Wallet.createRandom().address;
  await (await erc20.transfer(payee, 42n)).wait();
  for (const heard of [await viaFilter, await viaSocket]) {
    assert.equal(heard.from, wallet.address);
    assert.equal(heard.to, payee);
    assert.equal(heard.value, 42n);
  }
  // Every log a member reads names its account: the chain's other events are not its own.
  const logs = await member.getLogs({ fromBlock: 0, toBlock: 'latest' });
  const own = ethers.zeroPadValue(wallet.address.toLowerCase(), 32);
  assert.ok(logs.length >= 2, 'the mint and the transfer');
  for (const log of logs) assert.ok(log.topics.includes(own), JSON.stringify(log));
  await polled.removeAllListeners();
  await subscribed.removeAllListeners();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await socket.destroy();
  member.destroy();
});
