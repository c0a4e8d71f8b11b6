// Calls to the audit API, with one error type whose message is a sentence for the page.
//
// Amounts are integers in base units; the service sends those beyond 2^53 as decimal strings,
// and any integer literal too big for a double is parsed as a BigInt here, never rounded.

export class ApiError extends Error {
  constructor(message, { status = 0, down = false } = {}) {
    super(message);
    this.status = status; // HTTP status, 0 when the service did not answer
    this.down = down;     // the service is not reachable at all
  }
}

function bigIntReviver(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export function parseJson(text) {
  return JSON.parse(text, bigIntReviver);
}

const listeners = new Set();

/** Called with (up: boolean) after every request: the page's "service down" banner. */
export function onReachability(fn) {
  listeners.add(fn);
}

function notify(up) {
  for (const fn of listeners) fn(up);
}

/** GET a JSON document from the service; ApiError on anything but 2xx. */
export async function get(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch {
    notify(false);
    throw new ApiError(`The chainabs service at ${location.host} is not answering: is \`chainabs serve\` running?`,
      { down: true });
  }
  notify(response.status !== 502 && response.status !== 504);
  const text = await response.text();
  let body = null;
  try {
    body = text ? parseJson(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const said = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(sentence(said), { status: response.status, down: response.status >= 502 });
  }
  if (body === null) throw new ApiError("The service answered with something that is not JSON.", { status: response.status });
  return body;
}

function sentence(text) {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

export const enc = encodeURIComponent;
