// Compiles the contracts of contracts/src with solc-js, as a member's own build would: shared
// by the test suites.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const SOURCES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'contracts', 'src');

/** The ABI and creation bytecode of contract `name` in `file` of contracts/src. */
export function compile(file, name) {
  const input = {
    language: 'Solidity',
    sources: { [file]: { content: readFileSync(join(SOURCES, file), 'utf8') } },
    settings: {
      evmVersion: 'prague',
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  assert.deepEqual(errors, [], 'solc compiles the contract');
  const contract = output.contracts[file][name];
  return { abi: contract.abi, bytecode: '0x' + contract.evm.bytecode.object };
}
