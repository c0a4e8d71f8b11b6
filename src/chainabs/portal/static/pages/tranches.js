// Tranches: each one's balance, factor, coupon and support; one tranche's history by period.

import { get, enc } from "../api.js";
import { bps, card, h, hexSpan, money, notice, pct, table, toFloat } from "../format.js";
import { chartPanel } from "../charts.js";
import { allPeriods, trancheTable } from "./overview.js";

export async function tranchesPage(ctx) {
  const { slug } = ctx.pool;
  const unit = ctx.unit;
  if (!ctx.pool.deal) return noDeal(ctx.pool.name);
  const list = await get(`/pools/${enc(slug)}/tranches`);
  const arg = ctx.route.arg;
  if (arg === "") {
    return h("section", null, h("h1", null, "Tranches"),
      h("p", { class: "sub" }, list.period ? `As of period ${list.period}.` : "At closing: no period reported yet."),
      trancheTable(list.items, unit, slug),
      h("p", { class: "sub" }, "Credit enhancement: pool balance and reserve beyond this tranche and every senior one, as a share of the pool balance."));
  }
  const tranche = list.items.find((t) => String(t.index) === arg || t.symbol === arg);
  if (!tranche) {
    return h("section", null, h("h1", null, "Tranches"),
      notice("error", "Unknown tranche", `The deal has no tranche "${arg}". `, h("a", { href: `#/pool/${enc(slug)}/tranches` }, "See the tranches.")));
  }
  const history = await allPeriods(slug);
  const k = tranche.index;
  const rows = history.map((p) => {
    const t = p.tranches[k] || {};
    const m = (v) => money(v, unit, true);
    return [h("a", { href: `#/pool/${enc(slug)}/periods/${p.period}` }, String(p.period)), m(t.balance_start),
      m(t.interest_due), m(t.interest_paid), m(t.interest_unpaid), m(t.principal_paid), m(t.loss), m(t.balance_end), m(t.cash_paid)];
  });
  const labels = history.length ? ["closing", ...history.map((p) => String(p.period))] : [];
  return h("section", { class: "tranche" },
    h("h1", null, `${tranche.name} (${tranche.symbol})`),
    h("p", { class: "sub" }, "Token ", hexSpan(tranche.address), tranche.residual ? " · residual tranche" : ` · coupon ${bps(tranche.coupon_bps)}`),
    h("div", { class: "cards" },
      card("Balance", money(tranche.balance, unit), `face ${money(tranche.face, unit).textContent}`),
      card("Factor", pct(tranche.factor), "balance / face"),
      card("Unpaid interest", money(tranche.unpaid_interest, unit)),
      card("Credit enhancement", bps(tranche.credit_enhancement_bps), money(tranche.credit_enhancement_units, unit).textContent)),
    h("div", { class: "charts" },
      chartPanel({ id: "tranche-balance", title: `${tranche.symbol} balance`, type: "line", fill: true, labels, unit,
        xTitle: "end of period", empty: "No period reported yet.",
        datasets: [{ label: "balance", data: [toFloat(history[0]?.tranches[k]?.balance_start, unit.decimals),
          ...history.map((p) => toFloat(p.tranches[k]?.balance_end, unit.decimals))] }] })),
    h("h2", null, `By period (${unit.currency})`),
    history.length
      ? table(["Period", "Balance start", "Interest due", "Interest paid", "Interest unpaid", "Principal paid", "Loss", "Balance end", "Cash paid"], rows, { cls: "wide" })
      : notice("empty", "No period reported yet."));
}

export function noDeal(name) {
  return h("section", null, h("h1", null, name),
    notice("empty", "No deal on this pool yet.", "Tranches and periods appear once a deal is created (`chainabs deal create`)."));
}
