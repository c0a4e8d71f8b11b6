// The portal's shell: hash routes, the pool picker, the service status line and the banner.
//
//   #/                               the pool overview (or the list, with several pools)
//   #/pool/<pool>                    pool overview
//   #/pool/<pool>/tranches[/<i>]     tranches, one tranche's history
//   #/pool/<pool>/periods[/<n>]      periods, one period's full waterfall
//   #/pool/<pool>/loans[/<loan id>]  the loan checker
//   #/investor[/<address>]           an investor's position

import { get, onReachability } from "./api.js";
import { h, notice } from "./format.js";
import { overviewPage, poolListPage } from "./pages/overview.js";
import { tranchesPage } from "./pages/tranches.js";
import { periodsPage } from "./pages/periods.js";
import { investorPage } from "./pages/investor.js";
import { loanPage } from "./pages/loan.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const picker = document.getElementById("pool-picker");
const banner = document.getElementById("banner");
const status = document.getElementById("status");

let pools = null; // [{slug, name, ...}] from GET /pools
let currentPool = null;
let renderSeq = 0;

export async function loadPools(force = false) {
  if (!pools || force) {
    const page = await get("/pools?limit=1000");
    pools = page.items;
    fillPicker();
  }
  return pools;
}

function fillPicker() {
  picker.replaceChildren(...pools.map((p) => h("option", { value: p.slug }, p.name)));
  picker.hidden = pools.length < 2;
  if (currentPool) picker.value = currentPool;
}

picker.addEventListener("change", () => {
  const rest = parse(location.hash).rest;
  location.hash = `#/pool/${encodeURIComponent(picker.value)}${rest ? "/" + rest.split("/")[0] : ""}`;
});

function parse(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").map((p) => decodeURIComponent(p));
  if (parts[0] === "pool" && parts[1]) return { pool: parts[1], section: parts[2] || "", arg: parts.slice(3).join("/"), rest: parts.slice(2).join("/") };
  if (parts[0] === "investor") return { section: "investor", arg: parts.slice(1).join("/") };
  return { section: parts[0] || "" };
}

function setNav(route) {
  const pool = currentPool ? `#/pool/${encodeURIComponent(currentPool)}` : "#/";
  const links = [
    ["overview", "Overview", pool],
    ["tranches", "Tranches", currentPool ? `${pool}/tranches` : null],
    ["periods", "Periods", currentPool ? `${pool}/periods` : null],
    ["investor", "Investor", "#/investor"],
    ["loans", "Loan checker", currentPool ? `${pool}/loans` : null],
  ];
  const active = route.section || "overview";
  nav.replaceChildren(...links.filter(([, , href]) => href).map(([key, label, href]) =>
    h("a", { href, class: key === active ? "active" : null, "aria-current": key === active ? "page" : null }, label)));
}

function noSuchPage(section) {
  return notice("error", "No such page", `The portal has no page "${section}". `, h("a", { href: "#/" }, "Back to the overview."));
}

async function render() {
  const seq = ++renderSeq;
  const route = parse(location.hash);
  const ctx = { route, unit: null, pool: null, pools: null, stale: () => seq !== renderSeq };
  view.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    ctx.pools = await loadPools();
    if (route.pool) {
      const summary = ctx.pools.find((p) => p.slug === route.pool || (p.address || "").toLowerCase() === route.pool.toLowerCase());
      if (!summary) {
        currentPool = null;
        setNav(route);
        view.replaceChildren(notice("error", "Unknown pool", `There is no pool named "${route.pool}". `,
          h("a", { href: "#/" }, "See the pools.")));
        return;
      }
      currentPool = summary.slug;
      ctx.pool = summary;
      ctx.unit = { decimals: summary.decimals, currency: summary.currency };
    } else if (!currentPool && ctx.pools.length) {
      currentPool = ctx.pools[0].slug;
    }
    if (currentPool) picker.value = currentPool;
    setNav(route);
    let page;
    if (route.section === "investor") page = await investorPage(ctx);
    else if (!route.pool && route.section) page = noSuchPage(route.section);
    else if (!route.pool) {
      if (ctx.pools.length === 1) {
        ctx.pool = ctx.pools[0];
        ctx.unit = { decimals: ctx.pool.decimals, currency: ctx.pool.currency };
        page = await overviewPage(ctx);
      } else page = poolListPage(ctx);
    } else if (route.section === "" || route.section === "overview") page = await overviewPage(ctx);
    else if (route.section === "tranches") page = await tranchesPage(ctx);
    else if (route.section === "periods") page = await periodsPage(ctx);
    else if (route.section === "loans") page = await loanPage(ctx);
    else page = noSuchPage(route.section);
    if (!ctx.stale()) view.replaceChildren(page);
  } catch (err) {
    if (ctx.stale()) return;
    setNav(route);
    view.replaceChildren(notice("error", err.down ? "Service unavailable" : "Something went wrong", err.message));
  }
  if (!ctx.stale()) document.title = `${view.querySelector("h1")?.textContent || "chainabs"} · chainabs portal`;
}

onReachability((up) => {
  banner.hidden = up;
  if (!up) banner.textContent = "The chainabs service is not answering: figures on this page may be out of date. Retrying…";
});

async function pollHealth() {
  try {
    const health = await get("/health");
    status.textContent = `chain ${health.chain_id} · head ${health.chain_head ?? "?"} · indexed ${health.indexed_head ?? "none"}` +
      (health.lag ? ` (${health.lag} behind)` : "");
    status.className = "";
  } catch (err) {
    status.textContent = err.down ? "service unreachable" : `service: ${err.message}`;
    status.className = "bad";
  }
}

window.addEventListener("hashchange", render);
render();
pollHealth();
setInterval(pollHealth, 15000);
