// The committed artifacts must be exactly what compile.js produces from the committed sources:
// otherwise the Rust tests would be running bytecode nobody can reproduce.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { write } = require('../compile.js');

const COMMITTED = path.join(__dirname, '..', 'artifacts');

test('compile.js reproduces the committed artifacts byte for byte', () => {
  const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-artifacts-'));
  try {
    const names = write(fresh).sort();
    const committed = fs.readdirSync(COMMITTED).filter((f) => f.endsWith('.json'))
      .map((f) => f.replace(/\.json$/, '')).sort();
    assert.deepStrictEqual(names, committed, 'the set of contracts differs');
    for (const name of names) {
      const a = fs.readFileSync(path.join(fresh, `${name}.json`), 'utf8');
      const b = fs.readFileSync(path.join(COMMITTED, `${name}.json`), 'utf8');
      assert.strictEqual(a, b, `${name}.json differs: run \`node contracts/compile.js\` and commit`);
    }
  } finally {
    fs.rmSync(fresh, { recursive: true, force: true });
  }
});

test('every artifact carries deployable bytecode and an ABI', () => {
  for (const file of fs.readdirSync(COMMITTED)) {
    const artifact = JSON.parse(fs.readFileSync(path.join(COMMITTED, file), 'utf8'));
    assert.match(artifact.bytecode, /^0x[0-9a-f]{100,}$/, `${file}: bytecode`);
    assert.ok(Array.isArray(artifact.abi) && artifact.abi.length > 0, `${file}: abi`);
  }
});
