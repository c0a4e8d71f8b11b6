#!/usr/bin/env node
// A solc-compatible front end for the npm `solc` package (the WebAssembly build of the pinned
// compiler), so py-solc-x can drive it like a native binary when no native solc is installed.
// It answers `--version` in solc's format and `--standard-json` on stdin; stdout carries nothing
// but the compiler's answer. Imports resolve against --base-path, --include-path and
// node_modules beside this script.
'use strict';
const fs = require('fs');
const path = require('path');

const repoRoot = path.resolve(__dirname, '..');
const solc = require(path.join(repoRoot, 'node_modules', 'solc'));

function parseArgs(argv) {
  const opts = { roots: [], version: false, standardJson: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => argv[++i];
    if (arg === '--version') opts.version = true;
    else if (arg === '--standard-json') opts.standardJson = true;
    else if (arg === '--base-path' || arg === '--include-path') opts.roots.push(next());
    else if (arg.startsWith('--base-path=') || arg.startsWith('--include-path=')) opts.roots.push(arg.split('=')[1]);
    else if (arg === '--allow-paths') next();
    // other flags (for example --allow-paths=...) change nothing here
  }
  opts.roots.push(process.cwd(), path.join(repoRoot, 'node_modules'), repoRoot);
  return opts;
}

function findImports(roots) {
  return (importPath) => {
    for (const root of roots) {
      const candidate = path.resolve(root, importPath);
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
    }
    return { error: `File not found: ${importPath}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    const full = solc.version().replace('.Emscripten.clang', '');
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${full}.Emscripten.clang\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc-wasm: only --version and --standard-json are supported\n');
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  process.stdout.write(solc.compile(input, { import: findImports(opts.roots) }));
}

main();
