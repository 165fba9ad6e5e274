#!/usr/bin/env node
// Compiles every contract in src/ with solc-js and writes one artifact per contract to
// artifacts/<Name>.json (ABI, creation bytecode, runtime bytecode). The settings are fixed here so
// that the same sources always give byte-identical artifacts: the committed artifacts are what
// the Rust tests execute, and test/artifacts.test.js checks that this script reproduces them.
//
// Usage: node compile.js [OUT_DIR]   (default: artifacts/)
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const SRC_DIR = path.join(__dirname, 'src');
const EVM_VERSION = 'prague'; // must match the hardfork Trellis's executor runs

function compilerInput() {
  const sources = {};
  for (const file of fs.readdirSync(SRC_DIR).filter((f) => f.endsWith('.sol')).sort()) {
    sources[file] = { content: fs.readFileSync(path.join(SRC_DIR, file), 'utf8') };
  }
  return {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
}

function compile() {
  const output = JSON.parse(solc.compile(JSON.stringify(compilerInput())));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error('solc failed:\n' + errors.map((e) => e.formattedMessage).join('\n'));
  }
  const artifacts = {};
  for (const [file, contracts] of Object.entries(output.contracts)) {
    for (const [name, c] of Object.entries(contracts)) {
      // Interfaces have no code: they ship as sources for callers to import.
      if (c.evm.bytecode.object === '') continue;
      artifacts[name] = {
        contract: name,
        source: `src/${file}`,
        compiler: `solc-js ${solc.version()}`,
        evmVersion: EVM_VERSION,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
    }
  }
  return artifacts;
}

function write(outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const artifacts = compile();
  for (const [name, artifact] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  }
  return Object.keys(artifacts);
}

module.exports = { compile, write };

if (require.main === module) {
  const outDir = path.resolve(process.argv[2] || path.join(__dirname, 'artifacts'));
  const names = write(outDir);
  console.log(`compiled ${names.join(', ')} into ${outDir}`);
}
