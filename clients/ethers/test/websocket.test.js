// The WebSocket side of the JSON-RPC server with a raw client: subscription ids, notifications,
// unsubscribing, the per-connection subscription limit, and precise errors for bad
// subscriptions, while ordinary calls keep working on the same connection.
//
// Needs TRELLIS_HTTP, TRELLIS_WS and TRELLIS_KEY, as trellis.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ethers } from 'ethers';

// ethers answers an identical request from a 250 ms cache by default. Trellis finalizes a
// transaction faster than that, so a nonce read just before a transaction is included would
// be served stale to the next transaction: wallets sending back to back must turn it off.
const NO_CACHE = { cacheTimeout: -1 };

/** The server's limit (trellis_rpc::Limits::max_subscriptions_per_connection). */
const MAX_SUBSCRIPTIONS = 128;

/** A JSON-RPC connection over one WebSocket: calls by id, notifications to a queue. */
class Connection {
  constructor(url) {
    this.socket = new WebSocket(url);
    this.pending = new Map();
    this.notifications = [];
    this.waiters = [];
    this.nextId = 1;
    this.socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.id !== undefined && this.pending.has(message.id)) {
        this.pending.get(message.id)(message);
        this.pending.delete(message.id);
      } else if (message.method === 'eth_subscription') {
        this.notifications.push(message.params);
        this.waiters.splice(0).forEach((wake) => wake());
      }
    });
  }

  async open() {
    if (this.socket.readyState !== WebSocket.OPEN) {
      await new Promise((resolve, reject) => {
        this.socket.once('open', resolve);
        this.socket.once('error', reject);
      });
    }
  }

  /** The whole response object of one call. */
  async request(method, params) {
    await this.open();
    const id = this.nextId++;
    const response = new Promise((resolve) => this.pending.set(id, resolve));
    this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return response;
  }

  async result(method, params) {
    const response = await this.request(method, params);
    assert.equal(response.error, undefined, `${method}: ${JSON.stringify(response.error)}`);
    return response.result;
  }

  /** The first notification of `subscription` (waiting up to `ms`). */
  async notification(subscription, ms = 30_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.notifications.findIndex((n) => n.subscription === subscription);
      if (index >= 0) return this.notifications.splice(index, 1)[0].result;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no notification for ${subscription} within ${ms} ms`);
      await new Promise((resolve) => {
        // Cleared when woken, so no timer keeps the process alive after the tests.
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close() {
    this.socket.close();
  }
}

test('subscriptions: hex ids, notifications, unsubscribing, and errors', async () => {
  const connection = new Connection(process.env.TRELLIS_WS);
  try {
    const heads = await connection.result('eth_subscribe', ['newHeads']);
    assert.match(heads, /^0x[0-9a-f]{32}$/);

    // A transaction makes a block; its header arrives as a notification.
    const provider = new ethers.JsonRpcProvider(process.env.TRELLIS_HTTP, undefined, NO_CACHE);
    provider.pollingInterval = 100;
    const wallet = new ethers.Wallet(process.env.TRELLIS_KEY, provider);
    await (await wallet.sendTransaction({ to: wallet.address, value: 1n })).wait();
    const header = await connection.notification(heads);
    const block = await connection.result('eth_getBlockByNumber', [header.number, false]);
    assert.equal(header.hash, block.hash);
    assert.equal(header.parentHash, block.parentHash);
    assert.equal(header.stateRoot, block.stateRoot);
    provider.destroy();

    assert.equal(await connection.result('eth_unsubscribe', [heads]), true);
    assert.equal(await connection.result('eth_unsubscribe', [heads]), false);

    const unknown = await connection.request('eth_subscribe', ['newBlocks']);
    assert.equal(unknown.error.code, -32602);
    assert.match(unknown.error.message, /unknown subscription "newBlocks"/);
    const ranged = await connection.request('eth_subscribe', ['logs', { fromBlock: '0x0' }]);
    assert.equal(ranged.error.code, -32602);
    assert.match(ranged.error.message, /follows new blocks/);
    const badFilter = await connection.request('eth_subscribe', ['logs', { address: '0x12' }]);
    assert.equal(badFilter.error.code, -32602);
    assert.match(badFilter.error.message, /invalid address/);
  } finally {
    connection.close();
  }
});

test('a connection holds at most the limit of subscriptions; others are unaffected', async () => {
  const connection = new Connection(process.env.TRELLIS_WS);
  const other = new Connection(process.env.TRELLIS_WS);
  try {
    const ids = [];
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) {
      ids.push(await connection.result('eth_subscribe', ['newPendingTransactions']));
    }
    assert.equal(new Set(ids).size, MAX_SUBSCRIPTIONS, 'ids are distinct');
    const refused = await connection.request('eth_subscribe', ['newHeads']);
    assert.equal(refused.error.code, -32006);
    assert.match(refused.error.message, /Too many subscriptions/);
    // The connection still answers calls, another connection may subscribe, and a freed
    // subscription can be taken again.
    assert.match(await connection.result('eth_blockNumber', []), /^0x[0-9a-f]+$/);
    assert.match(await other.result('eth_subscribe', ['newHeads']), /^0x[0-9a-f]{32}$/);
    assert.equal(await connection.result('eth_unsubscribe', [ids[0]]), true);
    assert.match(await connection.result('eth_subscribe', ['newHeads']), /^0x[0-9a-f]{32}$/);
  } finally {
    connection.close();
    other.close();
  }
});

/** The server's limit (trellis_rpc::Limits::max_connections), HTTP and WebSocket together. */
const MAX_CONNECTIONS = 1_000;

/** Opens a WebSocket; resolves with it, or with the HTTP status of a refused upgrade. */
function connect(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_, response) => {
      // A refused upgrade leaves its HTTP connection open otherwise (keeping the process alive).
      const connection = response.socket;
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => {
        connection.destroy();
        resolve({ status: response.statusCode, body });
      });
    });
    socket.once('error', (error) => reject(error));
  });
}

test('connections beyond the limit are refused with 429, and accepted again once others close', async () => {
  const open = [];
  let refused;
  try {
    while (open.length <= MAX_CONNECTIONS) {
      const attempt = await connect(process.env.TRELLIS_WS);
      if (attempt.socket) {
        open.push(attempt.socket);
      } else {
        refused = attempt;
        break;
      }
    }
    assert.ok(refused, `all ${open.length} connections were accepted`);
    // Other clients' idle connections may hold a few places.
    assert.ok(open.length > MAX_CONNECTIONS - 10 && open.length <= MAX_CONNECTIONS, `${open.length} accepted`);
    assert.equal(refused.status, 429);
    assert.match(refused.body, /Too many connections/);
  } finally {
    for (const socket of open) socket.terminate();
  }
  // Once they are closed, the server accepts connections again.
  let again;
  for (let i = 0; i < 50 && !again?.socket; i++) {
    again = await connect(process.env.TRELLIS_WS);
    if (!again.socket) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(again.socket, 'a connection is accepted after the others closed');
  again.socket.close();
});
