// An investor's position: tranche holdings (units, outstanding principal, claimable and claimed
// cash, eligibility), other indexed tokens, and every transfer in or out.

import { get, enc } from "../api.js";
import { big, count, h, hexSpan, money, notice, table, units } from "../format.js";

const PAGE = 50;

export async function investorPage(ctx) {
  const [path, query] = ctx.route.arg.split("?");
  const address = path.split("/")[0].trim();
  const offset = Math.max(0, parseInt(new URLSearchParams(query || "").get("offset") || "0", 10) || 0);
  const input = h("input", { id: "address", name: "address", type: "text", inputmode: "text", autocomplete: "off",
    spellcheck: "false", placeholder: "0x… investor address", value: address || null, "aria-label": "investor address" });
  const form = h("form", { class: "lookup", onsubmit: (e) => {
    e.preventDefault();
    const value = input.value.trim();
    location.hash = value ? `#/investor/${enc(value)}` : "#/investor";
  } }, input, h("button", { type: "submit" }, "Look up"));
  const out = h("section", { class: "investor" }, h("h1", null, "Investor"), form);
  if (!address) {
    out.append(notice("empty", "Enter an address.",
      "Paste the address that holds your tranche tokens: the page shows what it holds, what it can claim and every transfer."));
    return out;
  }
  let holdings, transfers;
  try {
    [holdings, transfers] = await Promise.all([
      get(`/investors/${enc(address)}/holdings`),
      get(`/investors/${enc(address)}/transfers?limit=${PAGE}&offset=${offset}`),
    ]);
  } catch (err) {
    if (err.status === 422 || err.status === 404) {
      out.append(notice("error", "Not a valid address", err.message));
      return out;
    }
    throw err;
  }
  const byPool = new Map(ctx.pools.filter((p) => p.address).map((p) => [p.address.toLowerCase(), p]));
  const fallback = ctx.pools[0] ? { decimals: ctx.pools[0].decimals, currency: ctx.pools[0].currency } : { decimals: 0, currency: "" };
  const unitOf = (h) => {
    const pool = h.pool ? byPool.get(String(h.pool).toLowerCase()) : null;
    return pool ? { decimals: pool.decimals, currency: pool.currency } : fallback;
  };

  out.append(h("p", { class: "sub" }, "Address ", h("code", { class: "hex wrap" }, holdings.address),
    holdings.indexed_head != null ? ` · as of block ${holdings.indexed_head}` : ""));
  const tranches = holdings.holdings.filter((x) => x.tranche !== undefined || x.contract === "TrancheToken");
  const others = holdings.holdings.filter((x) => !tranches.includes(x));

  if (!holdings.holdings.length && !transfers.total) {
    out.append(notice("empty", "Nothing found for this address.",
      "It holds no indexed token and has never sent or received one. Check the address, or wait for the index to catch up."));
    return out;
  }

  out.append(h("h2", null, "Tranche holdings"));
  if (tranches.length) {
    let claimable = 0n;
    for (const t of tranches) claimable += big(t.claimable) ?? 0n;
    const cur = unitOf(tranches[0]).currency;
    out.append(table(["Tranche", "Units", `Outstanding (${cur})`, `Claimable (${cur})`, `Claimed (${cur})`, "Status"],
      tranches.map((t) => {
        const unit = unitOf(t);
        const pool = t.pool ? byPool.get(String(t.pool).toLowerCase()) : null;
        const name = `${t.tranche ?? t.label ?? "tranche"}${t.symbol ? ` (${t.symbol})` : ""}`;
        return [pool && t.tranche_index !== undefined ? h("a", { href: `#/pool/${enc(pool.slug)}/tranches/${t.tranche_index}` }, name) : name,
          h("span", { title: `${t.units ?? t.amount} units` }, units(t.units ?? t.amount, unit.decimals)),
          t.outstanding_principal !== undefined ? money(t.outstanding_principal, unit, true) : "—",
          t.claimable !== undefined ? money(t.claimable, unit, true) : "—",
          t.claimed !== undefined ? money(t.claimed, unit, true) : "—",
          eligibility(t)];
      }), { cls: "holdings", stack: true }));
    if (claimable > 0n) {
      out.append(notice("info", "Cash to claim.", `This address can claim ${money(claimable, unitOf(tranches[0])).textContent} now, with \`chainabs claim\` or the token's claim().`));
    }
  } else {
    out.append(notice("empty", "No tranche tokens held."));
  }

  if (others.length) {
    out.append(h("h2", null, "Other tokens"), table(["Token", "Kind", "Amount"], others.map((o) => [
      h("span", null, o.label || o.contract || "token", " ", hexSpan(o.token, 4)), o.kind || "—",
      o.kind === "erc721" ? `${count(o.amount)} token(s)` : o.contract === "SettlementToken" ? money(o.amount, fallback) : count(o.amount)])));
  }

  out.append(h("h2", null, `Transfers (${count(transfers.total)})`));
  if (!transfers.items.length) {
    out.append(notice("empty", "No transfers."));
  } else {
    out.append(table(["Block", "Token", "Direction", "Counterparty", "Amount", "Transaction"], transfers.items.map((t) => {
      const unit = t.contract === "TrancheToken" || t.contract === "SettlementToken" ? fallback : { decimals: 0, currency: "" };
      const other = t.direction === "in" ? t.from : t.to;
      return [String(t.block_number), tokenName(t), h("span", { class: `tag ${t.direction}` }, t.direction),
        /^0x0{40}$/.test(other) ? (t.direction === "in" ? "minted" : "burned") : hexSpan(other, 4),
        t.kind === "erc721" ? `token ${hexSpan(t.token_id || "", 4).textContent}` : units(t.amount, unit.decimals),
        hexSpan(t.tx_hash, 4)];
    }), { cls: "transfers", numericFrom: 4, stack: true }));
    if (transfers.total > PAGE) {
      const base = `#/investor/${enc(address)}`;
      out.append(h("div", { class: "pager" },
        offset > 0 ? h("a", { href: `${base}?offset=${Math.max(0, offset - PAGE)}` }, "← earlier") : h("span"),
        h("span", null, `${offset + 1}–${offset + transfers.items.length} of ${transfers.total}`),
        offset + PAGE < transfers.total ? h("a", { href: `${base}?offset=${offset + PAGE}` }, "later →") : h("span")));
    }
  }
  return out;
}

function tokenName(t) {
  const label = t.label || t.contract || t.token;
  return label.includes(":") ? label.slice(label.lastIndexOf(":") + 1) : label.slice(label.lastIndexOf("/") + 1);
}

function eligibility(t) {
  if (t.frozen) return h("span", { class: "tag bad" }, "frozen");
  if (t.eligible === false) return h("span", { class: "tag warn" }, "not eligible");
  if (t.eligible === true) return h("span", { class: "tag good" }, "eligible");
  return "—";
}
