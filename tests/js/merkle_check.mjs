// Reference values from @openzeppelin/merkle-tree for tests/test_merkle.py.
//
//   node tests/js/merkle_check.mjs in.json
//
// in.json: {"types": [...abi types], "values": [[...one leaf's values], ...],
// "multiproofs": [[value index, ...], ...] (optional)}, uints as decimal strings, bytes32 as
// 0x-hex. Prints {"root", "leaves", "proofs", "multiproofs"} as JSON, leaves and proofs in input
// order, from StandardMerkleTree.of(values, types); each multiproof as getMultiProof returns it,
// its leaves as leaf hashes.
// Exit code 3 when the library is not installed (run `make setup`).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

// Resolve from the repository root, where `make setup` runs `npm install`.
const require = createRequire(new URL("../../package.json", import.meta.url));

let StandardMerkleTree;
try {
  ({ StandardMerkleTree } = require("@openzeppelin/merkle-tree"));
} catch (err) {
  process.stderr.write(`@openzeppelin/merkle-tree is not installed (run \`make setup\`): ${err.message}\n`);
  process.exit(3);
}

const { types, values, multiproofs = [] } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tree = StandardMerkleTree.of(values, types);
const out = {
  root: tree.root,
  leaves: values.map((v) => tree.leafHash(v)),
  proofs: values.map((_, i) => tree.getProof(i)),
  multiproofs: multiproofs.map((indices) => {
    const { leaves, proof, proofFlags } = tree.getMultiProof(indices);
    return { leaves: leaves.map((v) => tree.leafHash(v)), proof, proofFlags };
  }),
};
process.stdout.write(JSON.stringify(out));
