// Talking to the otel-hms API: JSON requests and the Server-Sent Events stream, both with the
// bearer token when one is set (EventSource cannot send headers, so the stream is read with
// fetch). On 401 the page asks for the token once and retries.

import { noteClock } from "./clock.js";

const TOKEN_KEY = "otel-hms-token";
let askToken = null; // set by the app: () => Promise<string|null>
let pendingAsk = null;

export function onTokenNeeded(fn) {
  askToken = fn;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function ensureToken() {
  if (!askToken) return false;
  if (!pendingAsk) pendingAsk = askToken().finally(() => { pendingAsk = null; });
  const given = await pendingAsk;
  if (!given) return false;
  setToken(given);
  return true;
}

async function send(path, init, retried = false) {
  const response = await fetch(path, { ...init, headers: headers(init.headers) });
  if (response.status === 401 && !retried) {
    setToken(null);
    if (await ensureToken()) return send(path, init, true);
  }
  return response;
}

async function json(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status, `HTTP ${response.status}: the answer is not JSON`);
  }
  if (!response.ok) throw new ApiError(response.status, body.error || `HTTP ${response.status}`);
  noteClock(body);
  return body;
}

export async function get(path, params) {
  const query = params ? `?${new URLSearchParams(params)}` : "";
  return json(await send(path + query, { method: "GET" }));
}

export async function sql(text) {
  return json(await send("/api/v1/sql", {
    method: "POST", body: JSON.stringify({ sql: text }),
    headers: { "Content-Type": "application/json" },
  }));
}

/**
 * Follow /api/v1/stream: `onPoints(body)` for each `points` event, `onError(message, retry)`
 * when it fails (`retry`: the connection dropped, rather than the question being refused).
 * Returns a function that stops it.
 */
export function stream(params, onPoints, onError, onOpen) {
  const controller = new AbortController();
  (async () => {
    try {
      const response = await send(`/api/v1/stream?${new URLSearchParams(params)}`,
        { method: "GET", signal: controller.signal, headers: { Accept: "text/event-stream" } });
      if (!response.ok) await json(response); // throws the API's message
      if (onOpen) onOpen();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          dispatch(block, onPoints, onError);
        }
      }
      if (!controller.signal.aborted) onError("the live stream ended; reconnecting…", true);
    } catch (err) {
      // A refused question (4xx) stays refused; a dropped connection, or a metric that has
      // no points yet (404), is worth retrying.
      const retry = !(err instanceof ApiError && err.status < 500 && err.status !== 404);
      if (!controller.signal.aborted) onError(err.message || String(err), retry);
    }
  })();
  return () => controller.abort();
}

function dispatch(block, onPoints, onError) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length) return;
  const body = JSON.parse(data.join("\n"));
  noteClock(body);
  if (event === "points") onPoints(body);
  else if (event === "error") onError(body.error);
}
