// The npm libraries the portal uses in the browser, served by the service from node_modules
// (/vendor/...): Chart.js for charts, js-sha3 for keccak256. Loaded on first use; when the
// service lacks them, the error says why (its 503 body names the fix).

let chart = null;
let sha3 = null;

async function missing(url, what) {
  let why = "";
  try {
    const response = await fetch(url);
    const body = await response.json();
    if (body && typeof body.error === "string") why = ` The service says: ${body.error}.`;
  } catch {
    why = " The service is not answering.";
  }
  return new Error(`Could not load ${what} from ${url}.${why}`);
}

/** window.Chart from chart.js's UMD build. */
export function loadChart() {
  if (!chart) {
    const url = "/vendor/chart.umd.min.js";
    chart = new Promise((resolve, reject) => {
      if (window.Chart) return resolve(window.Chart);
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => (window.Chart ? resolve(window.Chart) : reject(new Error(`${url} did not define Chart.`)));
      script.onerror = async () => reject(await missing(url, "the chart library (npm chart.js)"));
      document.head.append(script);
    });
    chart.catch(() => { chart = null; });
  }
  return chart;
}

/** js-sha3's ES module (keccak256 and friends). */
export function loadSha3() {
  if (!sha3) {
    const url = "/vendor/sha3.mjs";
    sha3 = import(url).catch(async () => { sha3 = null; throw await missing(url, "the keccak256 library (npm js-sha3)"); });
  }
  return sha3;
}
