// DOM building and number formatting. Text from the service always goes in as text, never HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** An integer (number, BigInt or decimal string) as a BigInt, or null. */
export function big(v) {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  return null;
}

/** Base units as a decimal with `shown` places (rounded half up), grouped: 1234567890 -> "1,234.57". */
export function units(v, decimals = 0, shown = 2) {
  const b = big(v);
  if (b === null) return "—";
  const neg = b < 0n;
  const abs = neg ? -b : b;
  const places = Math.min(shown, decimals);
  const base = 10n ** BigInt(decimals);
  const step = 10n ** BigInt(places);
  const scaled = (abs * step + base / 2n) / base;
  const whole = (scaled / step).toLocaleString("en-US");
  const frac = places ? "." + (scaled % step).toString().padStart(places, "0") : "";
  return (neg ? "-" : "") + whole + frac;
}

/** An amount with its unit (without it when `bare`, for tables that name it in the header);
 * the exact base units in the tooltip. */
export function money(v, unit, bare = false) {
  const b = big(v);
  return h("span", { class: "amount", title: b === null ? null : `${b} base units` },
    bare ? units(v, unit.decimals) : `${units(v, unit.decimals)} ${unit.currency}`);
}

export function count(v) {
  const b = big(v);
  return b === null ? "—" : b.toLocaleString("en-US");
}

export function pct(fraction, places = 2) {
  return typeof fraction === "number" && isFinite(fraction) ? `${(fraction * 100).toFixed(places)} %` : "—";
}

export function bps(v, places = 2) {
  return typeof v === "number" && isFinite(v) ? `${(v / 100).toFixed(places)} %` : "—";
}

/** Base units as a float in whole currency units, for charts only. */
export function toFloat(v, decimals) {
  const b = big(v);
  return b === null ? null : Number(b) / 10 ** decimals;
}

export function shortHex(hex, keep = 6) {
  if (typeof hex !== "string" || hex.length <= 2 * keep + 4) return hex ?? "—";
  return `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}`;
}

/** A long hex value shown short, whole in the tooltip and selectable. */
export function hexSpan(hex, keep = 6) {
  return h("code", { class: "hex", title: hex }, shortHex(hex, keep));
}

/** A table; `stack` lays each row out as a small card on a phone (cells labelled by header). */
export function table(headers, rows, { caption, numericFrom = 1, cls = "", stack = false } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { class: `${cls}${stack ? " stack" : ""}` },
      caption ? h("caption", null, caption) : null,
      h("thead", null, h("tr", null, headers.map((t, i) => h("th", { class: i >= numericFrom ? "num" : null, scope: "col" }, t)))),
      h("tbody", null, rows.map((r) => h("tr", null, r.map((c, i) => h(i === 0 ? "th" : "td",
        { class: i >= numericFrom ? "num" : null, scope: i === 0 ? "row" : null, "data-label": stack && i ? headers[i] : null }, c)))))));
}

export function card(label, value, note) {
  return h("div", { class: "card", "data-card": label.toLowerCase().replace(/[^a-z0-9]+/g, "-") }, h("div", { class: "card-label" }, label),
    h("div", { class: "card-value" }, value), note ? h("div", { class: "card-note" }, note) : null);
}

export function notice(kind, title, ...body) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("strong", null, title), body.length ? h("p", null, ...body) : null);
}
