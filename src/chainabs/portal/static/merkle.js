// A loan's inclusion proof, checked in the browser (TAPE.md, "The loan commitment"):
//
//   loan_hash = keccak256(abi.encode(<the 15 committed values, LEAF_TYPES>))
//   leaf      = keccak256(bytes.concat(loan_hash))
//   root      = fold(proof, leaf) with hash_pair(a, b) = keccak256(sorted(a, b))
//
// the layout of OpenZeppelin's StandardMerkleTree and MerkleProof.verify; keccak256 is js-sha3's.

import { loadSha3 } from "./vendor.js";

export const LEAF_TYPES = ["string", "bytes32", "uint8", "string", "uint256", "uint256", "uint16", "uint32",
  "uint32", "uint16", "uint8", "uint8", "uint16", "uint16", "string"];
export const LEAF_NAMES = ["loan_id", "borrower_hash", "product", "currency", "principal_units",
  "outstanding_units", "rate_bps", "origination_day", "maturity_day", "term_months", "repayment_type", "status",
  "funded_share_bps", "credit_score", "region"];

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`not a hex string: ${hex}`);
  const out = new Uint8Array((hex.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

export function bytesToHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function word(n) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0 && n > 0n; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** abi.encode(types, values) for string, bytes32 and uintN: what Solidity's abi.encode produces. */
export function abiEncode(types, values) {
  if (types.length !== values.length) throw new Error(`expected ${types.length} values, got ${values.length}`);
  const heads = [];
  const tails = [];
  let offset = 32 * types.length;
  types.forEach((type, i) => {
    const value = values[i];
    const name = LEAF_NAMES[i] ?? `value ${i}`;
    if (type === "string") {
      if (typeof value !== "string") throw new Error(`${name} should be a string`);
      const bytes = new TextEncoder().encode(value);
      const padded = new Uint8Array(Math.ceil(bytes.length / 32) * 32);
      padded.set(bytes);
      heads.push(word(BigInt(offset)));
      tails.push(word(BigInt(bytes.length)), padded);
      offset += 32 + padded.length;
    } else if (type === "bytes32") {
      const bytes = hexToBytes(value);
      if (bytes.length !== 32) throw new Error(`${name} should be 32 bytes`);
      heads.push(bytes);
    } else if (/^uint\d+$/.test(type)) {
      const bits = BigInt(type.slice(4));
      let n;
      try { n = BigInt(value); } catch { throw new Error(`${name} should be an integer`); }
      if (typeof value === "number" && !Number.isSafeInteger(value)) throw new Error(`${name} lost precision`);
      if (n < 0n || n >= 1n << bits) throw new Error(`${name} does not fit ${type}`);
      heads.push(word(n));
    } else {
      throw new Error(`unsupported ABI type ${type}`);
    }
  });
  return concat([...heads, ...tails]);
}

function lessThan(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/**
 * Recompute a served proof and compare it with `rootOnChain`.
 * Returns {loanHash, leaf, root, verified, steps}; hashes as 0x-hex.
 */
export async function verifyProof(proof, rootOnChain) {
  const { keccak256 } = await loadSha3();
  const k = (bytes) => new Uint8Array(keccak256.arrayBuffer(bytes));
  const loanHash = k(abiEncode(LEAF_TYPES, proof.values));
  const leaf = k(loanHash);
  let node = leaf;
  for (const siblingHex of proof.proof) {
    const sibling = hexToBytes(siblingHex);
    if (sibling.length !== 32) throw new Error("a proof node is not 32 bytes");
    node = k(lessThan(node, sibling) ? concat([node, sibling]) : concat([sibling, node]));
  }
  const root = bytesToHex(node);
  const onChain = (rootOnChain || "").toLowerCase();
  return {
    loanHash: bytesToHex(loanHash),
    leaf: bytesToHex(leaf),
    root,
    rootOnChain: onChain,
    verified: onChain.length === 66 && root === onChain,
  };
}
