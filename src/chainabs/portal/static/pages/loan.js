// The loan checker: fetch a loan's committed values and Merkle proof, recompute its leaf and
// the root here in the browser (keccak256 from js-sha3), and compare with the root the pool
// contract holds. The service's own verdict is shown beside it, but the result is this page's.

import { get, enc } from "../api.js";
import { h, hexSpan, money, notice, table } from "../format.js";
import { LEAF_NAMES, verifyProof } from "../merkle.js";

const PRODUCTS = ["credit", "cash", "installment"];
const REPAYMENT = ["amortizing", "bullet", "interest_only"];
const STATUSES = ["current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus", "defaulted", "repaid"];

export async function loanPage(ctx) {
  const { slug } = ctx.pool;
  const loanId = ctx.route.arg.trim();
  const input = h("input", { id: "loan-id", name: "loan", type: "text", autocomplete: "off", spellcheck: "false",
    placeholder: "loan id, e.g. L0000001", value: loanId || null, "aria-label": "loan id" });
  const form = h("form", { class: "lookup", onsubmit: (e) => {
    e.preventDefault();
    const value = input.value.trim();
    location.hash = `#/pool/${enc(slug)}/loans${value ? "/" + enc(value) : ""}`;
  } }, input, h("button", { type: "submit" }, "Verify"));
  const out = h("section", { class: "loan" }, h("h1", null, "Loan checker"),
    h("p", { class: "sub" }, "Checks that a loan is part of the pool: this page recomputes the loan's Merkle leaf and the root from the proof with keccak256 in your browser, and compares the result with the root held by the pool contract on chain."),
    form);
  if (!loanId) {
    out.append(notice("empty", "Enter a loan id.", "Loan ids are those of the loan tape, e.g. L0000001."));
    return out;
  }
  let proof, pool;
  try {
    [proof, pool] = await Promise.all([get(`/pools/${enc(slug)}/loans/${enc(loanId)}/proof`), get(`/pools/${enc(slug)}`)]);
  } catch (err) {
    if (err.status === 404 || err.status === 422) {
      out.append(notice("error", "Unknown loan", err.message));
      return out;
    }
    throw err;
  }
  const unit = { decimals: pool.decimals, currency: pool.currency };
  let result;
  try {
    result = await verifyProof(proof, pool.root_on_chain);
  } catch (err) {
    out.append(h("div", { id: "proof-result", class: "result bad", "data-status": "error" },
      h("strong", null, "Could not check the proof"), h("p", null, err.message)));
    return out;
  }
  const ok = result.verified;
  const same = (a, b) => (a || "").toLowerCase() === (b || "").toLowerCase();
  out.append(
    h("div", { id: "proof-result", class: `result ${ok ? "good" : "bad"}`, "data-status": ok ? "verified" : "failed" },
      h("strong", null, ok ? "✓ Verified" : "✗ Not verified"),
      h("p", null, ok
        ? `Loan ${proof.loan_id} is in the pool: the root recomputed in this browser equals the root in the pool contract.`
        : pool.root_on_chain
          ? `The root recomputed in this browser does not equal the pool contract's root: the values or the proof served for loan ${proof.loan_id} are not what the pool committed to.`
          : "The pool contract's root could not be read (is the pool deployed?).")),
    table(["Step", "Value", "Check"], [
      ["Loan hash = keccak256(abi.encode(values))", hexSpan(result.loanHash, 10), mark(same(result.loanHash, proof.loan_hash), "as served")],
      ["Leaf = keccak256(loan hash)", hexSpan(result.leaf, 10), mark(same(result.leaf, proof.leaf), "as served")],
      [`Root from ${proof.proof.length} proof node${proof.proof.length === 1 ? "" : "s"} (sorted pairs)`, hexSpan(result.root, 10), mark(ok, "equals on-chain root")],
      ["Root held by the pool contract", hexSpan(pool.root_on_chain || "unknown", 10), pool.address ? h("span", null, "read from ", hexSpan(pool.address, 4)) : "—"],
      ["The contract's own verifyLoan(loan hash, proof), which hashes the leaf itself", proof.verified_on_chain ? "accepted" : "refused", "as reported by the service"],
    ], { cls: "steps", numericFrom: 9, stack: true }),
    h("h2", null, "Committed values"),
    table(["Field", "Value"], proof.values.map((v, i) => [LEAF_NAMES[i], describe(i, v, unit)]), { cls: "values", numericFrom: 9 }),
    h("details", null, h("summary", null, "Proof nodes"), h("ol", { class: "proof-nodes" }, proof.proof.map((p) => h("li", null, h("code", { class: "hex wrap" }, p))))));
  return out;
}

function mark(ok, text) {
  return h("span", { class: `tag ${ok ? "good" : "bad"}` }, `${ok ? "✓" : "✗"} ${text}`);
}

function day(n) {
  return Number.isInteger(n) ? new Date(n * 86400000).toISOString().slice(0, 10) : String(n);
}

function describe(i, v, unit) {
  switch (LEAF_NAMES[i]) {
    case "borrower_hash": return h("code", { class: "hex wrap" }, v);
    case "product": return `${v} (${PRODUCTS[v] ?? "?"})`;
    case "repayment_type": return `${v} (${REPAYMENT[v] ?? "?"})`;
    case "status": return `${v} (${STATUSES[v] ?? "?"})`;
    case "principal_units": case "outstanding_units": return h("span", null, String(v), " ", h("span", { class: "muted" }, `(${money(v, unit).textContent})`));
    case "rate_bps": case "funded_share_bps": return `${v} (${(Number(v) / 100).toFixed(2)} %)`;
    case "origination_day": case "maturity_day": return `${v} (${day(v)})`;
    default: return String(v);
  }
}
