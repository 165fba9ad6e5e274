// Sensitive fields from ethers.js (lib/fields.js) against a dev chain where the Rust CLI sealed
// one (started by crates/cli/tests/confidential.rs): the clinic opens the CLI's envelope from
// its transaction; the insurer seals a second field here and records it in SealedRecords, for
// the CLI to open; the contract checks the opening by eth_call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { ethers } from 'ethers';
import { open, parseEnvelope, seal } from '../lib/fields.js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: see the header of this file`);
  return value;
};

const RECORDS_ABI = [
  'function record(bytes32 id, bytes32 commitment, bytes envelope)',
  'function opens(bytes32 id, string label, bytes32 salt, bytes value) view returns (bool)',
];
const provider = new ethers.JsonRpcProvider(env('TRELLIS_HTTP'), undefined, {
  staticNetwork: true,
  cacheTimeout: -1,
});
const clinic = new ethers.Wallet(env('TRELLIS_KEY'));
const insurer = new ethers.Wallet(env('TRELLIS_INSURER_KEY'), provider);
const records = new ethers.Contract(env('TRELLIS_RECORDS'), RECORDS_ABI, insurer);

test('the clinic opens the envelope the CLI sealed, from its transaction alone', async () => {
  const tx = await provider.getTransaction(env('TRELLIS_TX'));
  const call = records.interface.parseTransaction({ data: tx.data });
  const opening = open(call.args.envelope, clinic.privateKey);
  assert.equal(ethers.toUtf8String(opening.value), env('TRELLIS_VALUE'));
  assert.equal(parseEnvelope(call.args.envelope).commitment, call.args.commitment);
  assert.equal(
    await records.opens(call.args.id, opening.label, opening.salt, opening.value),
    true,
    'the contract computes the same commitment',
  );
  const outsider = ethers.Wallet.createRandom();
  assert.throws(() => open(call.args.envelope, outsider.privateKey), /is not a recipient/);
});

test('the insurer seals a field here and records it for the CLI to open', async () => {
  const sealed = seal('claim.amount', '12500 EUR', [
    clinic.signingKey.compressedPublicKey,
    env('TRELLIS_AUDITOR_PUBLIC'),
    insurer.signingKey.publicKey,
  ]);
  assert.equal(ethers.toUtf8String(open(sealed.envelope, insurer.privateKey).value), '12500 EUR');
  const id = ethers.id('claim 7 amount');
  const receipt = await (await records.record(id, sealed.commitment, sealed.envelope)).wait();
  assert.equal(receipt.status, 1);
  const onChain = await provider.getTransaction(receipt.hash);
  assert.ok(!onChain.data.includes(ethers.hexlify(ethers.toUtf8Bytes('12500 EUR')).slice(2)));
  assert.equal(await records.opens(id, 'claim.amount', sealed.opening.salt, sealed.opening.value), true);
  writeFileSync(env('TRELLIS_OUT'), receipt.hash);
  provider.destroy();
});
