// ethers.js v6 against a Trellis node that asks callers for API tokens (`api_access =
// "tokens"`, started by crates/cli/tests/api_access.rs): the wallet signs its own token with
// `signMessage` (EIP-191, as MetaMask's personal_sign), then calls over HTTP with the token in
// a header and over WebSocket with it in the URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';

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
