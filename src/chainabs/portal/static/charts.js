// Charts by period, drawn with Chart.js. Amounts are plotted in whole currency units.

import { loadChart } from "./vendor.js";
import { h, notice } from "./format.js";

const PALETTE = ["#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];

/**
 * A chart panel: title, canvas, and an empty or error state in its place when needed.
 * spec: {title, type: "line"|"bar", labels, datasets: [{label, data}], stacked, unit: {decimals, currency}}
 */
export function chartPanel(spec) {
  const box = h("figure", { class: "chart", "data-chart": spec.id },
    h("figcaption", null, spec.title));
  const hasData = spec.labels.length > 0 && spec.datasets.some((d) => d.data.some((v) => v !== null));
  if (!hasData) {
    box.append(notice("empty", spec.empty || "No data yet."));
    return box;
  }
  if (spec.zeroNote && spec.datasets.every((d) => d.data.every((v) => !v))) {
    box.append(h("p", { class: "chart-note" }, spec.zeroNote));
  }
  const holder = h("div", { class: "chart-canvas" });
  const canvas = h("canvas", { role: "img", "aria-label": spec.title });
  holder.append(canvas);
  box.append(holder);
  loadChart().then((Chart) => draw(Chart, canvas, spec)).catch((err) => {
    holder.replaceWith(notice("error", "Chart unavailable", err.message));
  });
  return box;
}

function draw(Chart, canvas, spec) {
  const unit = spec.unit;
  const datasets = spec.datasets.map((d, i) => ({
    label: d.label,
    data: d.data,
    borderColor: d.color || PALETTE[i % PALETTE.length],
    backgroundColor: (d.color || PALETTE[i % PALETTE.length]) + (spec.type === "line" ? "33" : "cc"),
    fill: spec.type === "line" && spec.fill ? (spec.stacked ? (i === 0 ? "origin" : "-1") : "origin") : false,
    tension: 0.15,
    pointRadius: 2,
  }));
  new Chart(canvas, {
    type: spec.type,
    data: { labels: spec.labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx) => `${ctx.dataset.label}: ${ctx.parsed.y.toLocaleString("en-US", { maximumFractionDigits: 2 })} ${unit.currency}`,
          },
        },
      },
      scales: {
        x: { stacked: !!spec.stacked, title: { display: true, text: spec.xTitle || "period" } },
        y: {
          stacked: !!spec.stacked,
          beginAtZero: true,
          title: { display: true, text: unit.currency },
          ticks: { callback: (v) => compact(v) },
        },
      },
    },
  });
}

function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}bn`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}m`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(0)}k`;
  return String(v);
}
