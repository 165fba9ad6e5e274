// ethers.js v6 against a governed Trellis dev chain (`trellis dev --governed`, started by
// crates/cli/tests/clients.rs): the consortium's governance and its rules, through the system
// contracts' ABI and plain transactions, as any application would use them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';

// No response cache: blocks come every few tens of milliseconds, and ethers would otherwise
// reuse an account's nonce it read up to 250 ms before.
const provider = new ethers.JsonRpcProvider(process.env.TRELLIS_HTTP, undefined, {
  pollingInterval: 100,
  cacheTimeout: -1,
});
// The dev chain's accounts: 0–2 are governors (identities 1–3), 3 and 4 members (4 and 5).
const [g0, g1, , member, other] = JSON.parse(process.env.TRELLIS_KEYS).map(
  (key) => new ethers.Wallet(key, provider),
);

const GOVERNANCE = '0x0000000000000000000000000000000000001001';
const REGISTRY = '0x0000000000000000000000000000000000001000';
const governance = new ethers.Contract(
  GOVERNANCE,
  [
    'function propose(bytes action, uint64 votingBlocks) returns (uint64)',
    'function vote(uint64 id, bool approve)',
    'function proposal(uint64 id) view returns (address proposer, uint64 proposerIdentity, uint64 created, uint64 expires, uint8 status, uint64 approvals, uint64 rejections, bytes action)',
    'event Proposed(uint64 indexed id, address indexed proposer, uint64 expires, bytes action)',
    'event Voted(uint64 indexed id, address indexed voter, uint64 identity, bool approve, uint64 weight)',
    'event Executed(uint64 indexed id)',
  ],
  g0,
);
const registry = new ethers.Contract(
  REGISTRY,
  [
    'function may(address account, bytes32 role) view returns (bool)',
    'function accountOf(address account) view returns (bool registered, uint64 identity, uint8 status, uint64 statusSince, uint64 statusByProposal, uint64 validFrom, uint64 validUntil)',
  ],
  provider,
);
const actions = new ethers.Interface([
  'function setIdentityLimits(uint64 identity, uint256 perTransaction, uint256 perDay, uint256 holdAbove)',
]);

/** The events of `contract` in a receipt, by name. */
function events(receipt, contract) {
  return receipt.logs
    .filter((log) => log.address.toLowerCase() === GOVERNANCE)
    .map((log) => contract.interface.parseLog(log))
    .filter(Boolean)
    .map((parsed) => parsed.name);
}

/** Everything an ethers error says, to look for the node's reason in. */
function said(error) {
  return [error.shortMessage, error.message, error.reason, JSON.stringify(error.info ?? {})]
    .filter(Boolean)
    .join(' | ');
}

test('the registry answers contracts and clients: who is who, who may do what', async () => {
  const record = await registry.accountOf(member.address);
  assert.equal(record.registered, true);
  assert.equal(record.identity, 4n);
  const governor = ethers.id('trellis.role.governor');
  assert.equal(await registry.may(g0.address, governor), true);
  assert.equal(await registry.may(member.address, governor), false);
  const stranger = ethers.Wallet.createRandom().address;
  assert.equal((await registry.accountOf(stranger)).registered, false);
});

test('a limit passed by two of three governors refuses larger transfers with its reason', async () => {
  const action = actions.encodeFunctionData('setIdentityLimits', [
    4n,
    ethers.parseEther('1'),
    ethers.parseEther('1.5'),
    0n,
  ]);
  const proposed = await (await governance.propose(action, 100)).wait();
  assert.deepEqual(events(proposed, governance), ['Proposed', 'Voted']);
  const id = governance.interface.parseLog(proposed.logs[0]).args.id;

  // A member is no governor: its vote is refused before anything is sent.
  await assert.rejects(governance.connect(member).vote(id, true), (error) => {
    assert.match(said(error), /may not propose or vote: it is no governor's account/);
    return true;
  });

  const voted = await (await governance.connect(g1).vote(id, true)).wait();
  assert.deepEqual(events(voted, governance), ['Voted', 'Executed']);
  const proposal = await governance.proposal(id);
  assert.equal(proposal.status, 1n, 'executed');
  assert.equal(proposal.approvals, 2n);

  // Within the limits, then above one transaction's, then above the day's.
  const sent = await (
    await member.sendTransaction({ to: other.address, value: ethers.parseEther('1') })
  ).wait();
  assert.equal(sent.status, 1);
  await assert.rejects(
    member.sendTransaction({ to: other.address, value: ethers.parseEther('2') }),
    (error) => {
      assert.match(
        said(error),
        /may send at most 1000000000000000000 wei in one transaction \(the limit of identity #4\)/,
      );
      return true;
    },
  );
  await assert.rejects(
    member.sendTransaction({ to: other.address, value: ethers.parseEther('0.6') }),
    (error) => {
      assert.match(said(error), /above the daily limit of 1500000000000000000 wei of identity #4/);
      return true;
    },
  );
  // Another member is not limited.
  const free = await (
    await other.sendTransaction({ to: member.address, value: ethers.parseEther('3') })
  ).wait();
  assert.equal(free.status, 1);
});

test('a transfer above the hold threshold waits for an approver of another identity', async () => {
  const HOLDS = '0x0000000000000000000000000000000000001002';
  const holds = new ethers.Contract(
    HOLDS,
    [
      'function approve(uint64 id)',
      'function holdOf(uint64 id) view returns (address from, address to, uint256 value, uint64 created, uint64 expires, uint8 status)',
      'event Held(uint64 indexed id, address indexed from, address indexed to, uint256 value, uint64 expires)',
    ],
    g1,
  );
  // Identity 5 (account 4): transfers above 2 ether wait.
  const action = actions.encodeFunctionData('setIdentityLimits', [
    5n,
    0n,
    0n,
    ethers.parseEther('2'),
  ]);
  const proposed = await (await governance.propose(action, 100)).wait();
  const id = governance.interface.parseLog(proposed.logs[0]).args.id;
  await (await governance.connect(g1).vote(id, true)).wait();

  const recipient = ethers.Wallet.createRandom().address;
  const sent = await (
    await other.sendTransaction({ to: recipient, value: ethers.parseEther('2.5') })
  ).wait();
  assert.equal(sent.status, 1, 'the transaction succeeds: its value waits');
  const held = sent.logs
    .filter((log) => log.address.toLowerCase() === HOLDS)
    .map((log) => holds.interface.parseLog(log));
  assert.equal(held.length, 1);
  assert.equal(held[0].name, 'Held');
  const holdId = held[0].args.id;
  assert.equal(await provider.getBalance(recipient), 0n);

  // Its sender's own identity cannot approve it; another identity's approver can.
  await assert.rejects(holds.connect(other).approve(holdId), (error) => {
    assert.match(said(error), /may not decide held transfers|another identity's approver/);
    return true;
  });
  const released = await (await holds.approve(holdId)).wait();
  assert.equal(released.status, 1);
  assert.equal(await provider.getBalance(recipient), ethers.parseEther('2.5'));
  assert.equal((await holds.holdOf(holdId)).status, 1n, 'released');
});
