// Periods: the list, and one period's full waterfall as reported on chain.

import { get, enc } from "../api.js";
import { count, h, hexSpan, money, notice, table } from "../format.js";
import { allPeriods } from "./overview.js";
import { noDeal } from "./tranches.js";

export async function periodsPage(ctx) {
  const { slug } = ctx.pool;
  const unit = ctx.unit;
  if (!ctx.pool.deal) return noDeal(ctx.pool.name);
  const arg = ctx.route.arg;
  if (arg === "") {
    const history = await allPeriods(slug);
    if (!history.length) {
      return h("section", null, h("h1", null, "Periods"), notice("empty", "No period reported yet.",
        "The servicer's first report (`chainabs report` or `chainabs simulate`) adds period 1."));
    }
    return h("section", null, h("h1", null, "Periods"),
      h("p", { class: "sub" }, `Amounts in ${unit.currency}. Open a period for its full waterfall.`),
      table(["Period", "Collected", "Defaulted", "Recoveries", "Pool balance end", "Reserve end", "Trigger"],
        history.map((p) => [h("a", { href: `#/pool/${enc(slug)}/periods/${p.period}` }, String(p.period)),
          money(sum(p.interest_collected, p.principal_collected, p.recoveries), unit, true), money(p.defaulted_principal, unit, true),
          money(p.recoveries, unit, true), money(p.pool_balance_end, unit, true), money(p.reserve_end, unit, true),
          p.trigger_breached ? h("span", { class: "tag bad" }, "breached") : "ok"]), { cls: "wide" }));
  }
  if (!/^\d+$/.test(arg)) {
    return h("section", null, h("h1", null, "Periods"), notice("error", "Bad period number", `"${arg}" is not a period number.`));
  }
  let p, total;
  try {
    [p, { total }] = await Promise.all([get(`/pools/${enc(slug)}/periods/${arg}`), get(`/pools/${enc(slug)}/periods?limit=1`)]);
  } catch (err) {
    if (err.status !== 404 && err.status !== 422) throw err;
    return h("section", null, h("h1", null, `Period ${arg}`), notice("error", "Unknown period", err.message, " ",
      h("a", { href: `#/pool/${enc(slug)}/periods` }, "See the periods.")));
  }
  return waterfall(p, total, slug, unit);
}

function sum(...values) {
  return values.reduce((s, v) => s + BigInt(v ?? 0), 0n);
}

function waterfall(p, total, slug, unit) {
  const m = (v) => money(v, unit, true);
  const n = p.period;
  const tr = p.tranches || [];
  const pager = h("div", { class: "pager" },
    n > 1 ? h("a", { href: `#/pool/${enc(slug)}/periods/${n - 1}` }, `← period ${n - 1}`) : h("span"),
    h("a", { href: `/pools/${enc(slug)}/report?period=${n}&format=csv`, download: "" }, "investor report (CSV)"),
    n < total ? h("a", { href: `#/pool/${enc(slug)}/periods/${n + 1}` }, `period ${n + 1} →`) : h("span"));
  const trancheRow = (label, field) => [label, ...tr.map((t) => m(t[field]))];
  return h("section", { class: "period" },
    h("h1", null, `Period ${n}`),
    h("p", { class: "sub" }, `Reported in block ${p.block_number}, transaction `, hexSpan(p.tx_hash)),
    pager,
    h("div", { class: "two-col" },
      table(["Collections", unit.currency], [
        ["Interest", m(p.interest_collected)], ["Principal", m(p.principal_collected)], ["Recoveries", m(p.recoveries)],
        ["Total collected", m(sum(p.interest_collected, p.principal_collected, p.recoveries))]], { cls: "collections" }),
      table(["Pool", unit.currency], [
        ["Balance at start", m(p.pool_balance_start)], ["Defaulted principal", m(p.defaulted_principal)],
        ["Balance at end", m(p.pool_balance_end)], ["Loans on the period tape", count(p.loan_count)]], { cls: "pool" }),
      table(["Servicer fee", unit.currency], [["Due", m(p.fee_due)], ["Paid", m(p.fee_paid)]], { cls: "fees" }),
      table(["Reserve", unit.currency], [
        ["At start", m(p.reserve_start)], ["Drawn", m(p.reserve_drawn)], ["Released", m(p.reserve_released)],
        ["Added", m(p.reserve_added)], ["At end", m(p.reserve_end)]], { cls: "reserve" })),
    h("h2", null, `Waterfall by tranche (${unit.currency})`),
    tr.length ? table(["", ...tr.map((t) => t.symbol || t.name || `tranche ${t.index}`)], [
      trancheRow("Balance at start", "balance_start"), trancheRow("Interest due", "interest_due"),
      trancheRow("Interest paid", "interest_paid"), trancheRow("Interest unpaid", "interest_unpaid"),
      trancheRow("Principal paid", "principal_paid"), trancheRow("Loss allocated", "loss"),
      trancheRow("Balance at end", "balance_end"), trancheRow("Cash paid", "cash_paid")], { cls: "waterfall" })
      : notice("empty", "No tranche figures in this report."),
    h("div", { class: "cards" },
      h("div", { class: `card ${p.trigger_breached ? "bad" : "good"}` }, h("div", { class: "card-label" }, "Default trigger"),
        h("div", { class: "card-value" }, p.trigger_breached ? "Breached" : "Not breached")),
      h("div", { class: "card" }, h("div", { class: "card-label" }, "Residual paid"), h("div", { class: "card-value" }, money(p.residual_paid, unit)))),
    h("p", { class: "sub" }, "Loan-level tape root of this period: ", hexSpan(p.loan_root, 10)));
}
