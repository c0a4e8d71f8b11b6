// The pool overview: balance, factor, WAC, delinquency, reserve, trigger, and charts by period.

import { get, enc } from "../api.js";
import { bps, card, count, h, hexSpan, money, notice, pct, table, toFloat, big } from "../format.js";
import { chartPanel } from "../charts.js";

const BUCKETS = [["current", "Current"], ["dpd_1_30", "1–30 days"], ["dpd_31_60", "31–60 days"],
  ["dpd_61_90", "61–90 days"], ["dpd_90_plus", "90+ days"], ["defaulted", "Defaulted"], ["repaid", "Repaid"]];

export function poolListPage(ctx) {
  if (!ctx.pools.length) {
    return h("section", null, h("h1", null, "No pools yet"),
      notice("empty", "Nothing has been tokenised in this data directory.",
        "Create a pool with `chainabs pool create`, or run `make run` for the demo deal."));
  }
  return h("section", null, h("h1", null, "Pools"),
    table(["Pool", "Status", "Loans", "Outstanding"], ctx.pools.map((p) => [
      h("a", { href: `#/pool/${enc(p.slug)}` }, p.name), p.status, count(p.loan_count),
      money(p.deal ? p.deal.pool_balance : p.outstanding_units, { decimals: p.decimals, currency: p.currency })])));
}

export async function overviewPage(ctx) {
  const slug = ctx.pool.slug;
  const pool = await get(`/pools/${enc(slug)}`);
  const unit = { decimals: pool.decimals, currency: pool.currency };
  const deal = pool.deal;
  const history = deal ? await allPeriods(slug) : [];
  const out = h("section", { class: "overview" },
    h("h1", null, pool.name),
    h("p", { class: "sub" }, `Pool contract `, hexSpan(pool.address || "not deployed"), ` · ${pool.status} · ${count(pool.loan_count)} loans` +
      (deal ? ` · ${deal.periods} period${deal.periods === 1 ? "" : "s"} reported` : "")));

  if (!deal) {
    out.append(notice("empty", "No deal on this pool yet.",
      "Tranche, period and performance figures appear once a deal is created (`chainabs deal create`). The figures below are the committed loan tape."));
  }
  const balance = deal ? deal.pool_balance : pool.outstanding_units;
  out.append(h("div", { class: "cards" },
    card("Pool balance", money(balance, unit), deal ? `of ${moneyText(deal.initial_balance, unit)} at closing` : "as committed"),
    card("Pool factor", deal ? pct(deal.pool_factor) : "—", "balance / balance at closing"),
    card("WAC", bps(pool.wac_bps), "weighted by outstanding, committed tape"),
    card("WAM", `${pool.wam_months.toFixed(1)} months`, `at ${pool.as_of}`),
    deal ? card("Reserve", money(deal.reserve, unit), `target ${bps(deal.reserve_target_bps)} of the pool`) : null,
    deal ? trigger(deal) : null,
    deal ? card("Cumulative defaults", money(deal.cumulative_defaults, unit), `net loss ${moneyText(deal.cumulative_net_loss, unit)}`) : null,
    deal ? card("CPR / CDR", `${pct(deal.cpr_annualised, 1)} / ${pct(deal.cdr_annualised, 1)}`, "annualised, last period: prepayments / defaults") : null,
    deal && deal.overcollateralisation_ratio != null ? card("Overcollateralisation", `${deal.overcollateralisation_ratio.toFixed(3)}×`, "pool balance / rated notes") : null,
  ));

  const buckets = deal && deal.delinquency ? deal.delinquency : pool.by_status;
  const total = BUCKETS.reduce((s, [k]) => s + (big(buckets[k]?.outstanding_units) ?? 0n), 0n);
  out.append(h("h2", null, "Delinquency"),
    h("p", { class: "sub" }, `${deal && deal.periods ? `As of the loan-level tape of period ${deal.last_period}` : "As committed at issuance"}; balances in ${unit.currency}.`),
    table(["Bucket", "Loans", "Balance", "Share"], BUCKETS.map(([key, label]) => {
      const b = buckets[key] || { count: 0, outstanding_units: 0 };
      const share = total > 0n ? Number((big(b.outstanding_units) * 100000n) / total) / 100000 : 0;
      return [label, count(b.count), money(b.outstanding_units, unit, true),
        h("span", { class: "share" }, h("span", { class: "bar", style: `width:${(share * 100).toFixed(1)}%` }), pct(share, 1))];
    }), { cls: "delinquency" }));

  out.append(h("h2", null, "By period"));
  if (!deal) {
    out.append(notice("empty", "No periods: the pool has no deal."));
    return out;
  }
  out.append(h("div", { class: "charts" }, ...periodCharts(history, deal, unit)));
  if (deal.tranches && deal.tranches.length) {
    out.append(h("h2", null, "Tranches"), trancheTable(deal.tranches, unit, slug));
  }
  return out;
}

function trigger(deal) {
  const t = deal.trigger || {};
  const breached = !!t.breached;
  return h("div", { class: `card ${breached ? "bad" : "good"}`, "data-trigger": breached ? "breached" : "ok" },
    h("div", { class: "card-label" }, "Default trigger"),
    h("div", { class: "card-value" }, breached ? "Breached" : "Not breached"),
    h("div", { class: "card-note" }, `cumulative defaults ${bps(t.cumulative_default_bps)} vs ${bps(t.default_trigger_bps)}`));
}

function moneyText(v, unit) {
  return money(v, unit).textContent;
}

export async function allPeriods(slug) {
  const items = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get(`/pools/${enc(slug)}/periods?limit=1000&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total || !page.items.length) return items;
  }
}

export function periodCharts(history, deal, unit) {
  const labels = ["closing", ...history.map((p) => String(p.period))];
  const first = history.length ? history[0].pool_balance_start : deal.initial_balance;
  const balance = [toFloat(first, unit.decimals), ...history.map((p) => toFloat(p.pool_balance_end, unit.decimals))];
  const periods = history.map((p) => String(p.period));
  const none = "No period reported yet: charts appear after the first servicer report.";
  const names = (deal.tranches || []).map((t) => t.symbol || t.name);
  return [
    chartPanel({ id: "pool-balance", title: "Pool balance", type: "line", fill: true, labels: history.length ? labels : [],
      datasets: [{ label: "pool balance", data: balance }], unit, empty: none, xTitle: "end of period" }),
    chartPanel({ id: "defaults", title: "Defaults and recoveries", type: "bar", labels: periods, unit, empty: none,
      zeroNote: "No defaults or recoveries reported so far.",
      datasets: [
        { label: "defaulted principal", data: history.map((p) => toFloat(p.defaulted_principal, unit.decimals)), color: "#c0392b" },
        { label: "recoveries", data: history.map((p) => toFloat(p.recoveries, unit.decimals)), color: "#2e8b57" },
      ] }),
    chartPanel({ id: "tranche-balances", title: "Tranche balances", type: "bar", stacked: true, labels: history.length ? labels : [],
      unit, empty: none, xTitle: "end of period",
      datasets: names.map((name, k) => ({
        label: name,
        data: [toFloat(history.length ? history[0].tranches[k]?.balance_start : deal.tranches[k].face, unit.decimals),
          ...history.map((p) => toFloat(p.tranches[k]?.balance_end, unit.decimals))],
      })) }),
  ];
}

export function trancheTable(tranches, unit, slug) {
  return table(["Tranche", `Balance (${unit.currency})`, "Factor", "Coupon", "Unpaid interest", "Credit enh."],
    tranches.map((t) => [
      h("a", { href: `#/pool/${enc(slug)}/tranches/${t.index}` }, `${t.name} (${t.symbol})`),
      money(t.balance, unit, true), pct(t.factor), t.residual ? "residual" : bps(t.coupon_bps),
      money(t.unpaid_interest, unit, true), bps(t.credit_enhancement_bps)]), { cls: "wide", stack: true });
}
