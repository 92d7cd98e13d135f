// Live updates: a source is something that fetches (once, or as a stream); the active view's
// sources run while live, stop on pause, restart on resume. Browsers allow ~6 connections
// per host over HTTP/1.1, so at most MAX_STREAMS streams are open; further sources poll.

import * as api from "./api.js";

export const MAX_STREAMS = 4;
let streams = 0;
let live = true;
const sources = new Set();
const listeners = new Set();

export function openStreams() {
  return streams;
}

export function isLive() {
  return live;
}

export function setLive(value) {
  live = value;
  for (const s of sources) { s.stop(); s.start(); }
  for (const fn of listeners) fn(live);
}

export function onLiveChange(fn) {
  listeners.add(fn);
}

/** Stop and forget every source (the view changed). */
export function clear() {
  for (const s of [...sources]) s.stop();
  sources.clear();
}

export function add(source) {
  sources.add(source);
  source.start();
  return source;
}

export function remove(source) {
  source.stop();
  sources.delete(source);
}

/** Calls `run()` now and, while live, every `seconds`. */
export class Poll {
  constructor(run, seconds) {
    this.run = run;
    this.seconds = seconds;
    this.timer = null;
  }

  start() {
    this.run();
    if (live) this.timer = setInterval(() => this.run(), this.seconds * 1000);
  }

  stop() {
    clearInterval(this.timer); // also clears a pending reconnect (same timer ids)
    this.timer = null;
  }
}

/**
 * A query API question answered into `handlers`: `full(body)` with the whole range and, while
 * live, `update(body)` with changed points from the stream (or `full` again when polling).
 * Fixed ranges (params.start/end) are fetched once.
 */
export class QuerySource {
  constructor(params, handlers) {
    this.params = params;
    this.handlers = handlers;
    this.cancel = null;
    this.timer = null;
    this.streaming = false;
  }

  async fetchOnce() {
    try {
      this.handlers.full(await api.get("/api/v1/query", this.params));
    } catch (err) {
      this.handlers.error(err.message);
    }
  }

  start() {
    const fixed = this.params.start || this.params.end;
    if (!live || fixed) { this.fetchOnce(); return; }
    if (streams >= MAX_STREAMS) {
      this.fetchOnce();
      this.timer = setInterval(() => this.fetchOnce(), 5000);
      return;
    }
    streams += 1;
    this.streaming = true;
    let first = true;
    this.cancel = api.stream(this.params, (body) => {
      if (first) { first = false; this.handlers.full(body); } else this.handlers.update(body);
    }, (message, retry) => {
      this.release();
      this.handlers.error(message);
      if (retry && live) this.timer = setTimeout(() => { this.stop(); this.start(); }, 5000);
    });
  }

  release() {
    if (this.streaming) { streams -= 1; this.streaming = false; }
  }

  stop() {
    if (this.cancel) { this.cancel(); this.cancel = null; }
    this.release();
    clearInterval(this.timer); // also clears a pending reconnect (same timer ids)
    this.timer = null;
  }
}
