// Charts fed by the query API (live) or by SQL, and single-number stats with thresholds.

import * as api from "./api.js";
import { TimeChart } from "./chart.js";
import { serverNow } from "./clock.js";
import { errorBox, h, status } from "./dom.js";
import { labelText, withUnit } from "./format.js";
import * as live from "./live.js";

const SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function seconds(duration) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(String(duration).trim());
  return m ? Number(m[1]) * SECONDS[m[2]] : null;
}

/** The threshold a value is at or above (the highest such), or null. */
export function thresholdFor(value, thresholds) {
  let best = null;
  for (const t of thresholds || []) if (value !== null && value >= t.value && (!best || t.value >= best.value)) best = t;
  return best;
}

/** A stat: the big number, and its threshold as colour, icon and words. */
export class StatView {
  constructor(root, options) {
    this.options = options;
    this.root = root;
    root.classList.add("stat");
  }

  show(value, note) {
    const t = thresholdFor(value, this.options.thresholds);
    const big = h("div", { class: `stat-value${t ? ` tone-${t.color}` : ""}`,
      "data-value": value === null ? "" : String(value),
      text: withUnit(value, this.options.unit, this.options.decimals) });
    const parts = [big];
    if (t) parts.push(status(t.color, t.label || `at or above ${withUnit(t.value, this.options.unit)}`));
    if (note) parts.push(h("div", { class: "stat-note", text: note }));
    this.root.replaceChildren(...parts);
  }

  error(message) {
    this.root.replaceChildren(errorBox(message));
  }
}

/** A chart (or stat) of one query API question; follows the stream while live. */
export class MetricChart {
  constructor(root, { params, unit, decimals, thresholds, title, height, type, onMeta }) {
    this.params = params;
    this.type = type || "chart";
    this.onMeta = onMeta;
    this.message = h("div", { class: "panel-message" });
    this.body = h("div");
    root.append(this.message, this.body);
    const options = { unit, decimals, thresholds, title, height };
    this.view = this.type === "stat" ? new StatView(this.body, options) : new TimeChart(this.body, options);
    this.span = null;
    this.end = null;
    this.latestSeries = [];
    this.source = null;
  }

  start() {
    this.source = live.add(new live.QuerySource(this.params, {
      full: (body) => this.full(body), update: (body) => this.update(body),
      error: (message) => this.error(message),
    }));
    // While live, the window moves with the clock even when no point arrives.
    const fixed = this.params.start || this.params.end;
    if (this.type === "chart" && !fixed) {
      this.tick = setInterval(() => {
        if (!live.isLive() || this.span === null) return;
        this.end = Math.max(this.end, serverNow());
        this.view.setRange(this.end - this.span, this.end);
      }, 5000);
    }
  }

  stop() {
    clearInterval(this.tick);
    if (this.source) live.remove(this.source);
    this.source = null;
    if (this.view.destroy) this.view.destroy();
  }

  full(body) {
    this.message.replaceChildren();
    this.span = body.end_ms - body.start_ms;
    this.end = body.end_ms;
    this.latestSeries = body.series;
    if (this.onMeta) this.onMeta(body);
    if (this.type === "stat") this.showStat();
    else this.view.setData(body.series, body.start_ms, body.end_ms);
  }

  update(body) {
    this.end = Math.max(this.end, body.end_ms);
    if (this.type === "stat") {
      for (const s of body.series) {
        const key = JSON.stringify(s.labels);
        const old = this.latestSeries.find((x) => JSON.stringify(x.labels) === key);
        if (old) old.points = [...old.points.filter((p) => !s.points.some((q) => q[0] === p[0])), ...s.points]
          .sort((a, b) => a[0] - b[0]);
        else this.latestSeries.push(s);
      }
      this.showStat();
      return;
    }
    this.view.merge(body.series, this.end - this.span, this.end);
  }

  showStat() {
    const first = this.latestSeries[0];
    const points = first ? first.points.filter((p) => p[1] !== null) : [];
    const last = points.length ? points[points.length - 1][1] : null;
    this.view.show(last, first && this.latestSeries.length > 1 ? labelText(first.labels) : null);
  }

  error(message) {
    this.message.replaceChildren(errorBox(message));
  }
}

/** `$__range` and `$__step` in panel SQL as INTERVAL literals. */
export function expandSql(sql, rangeSeconds, stepSeconds) {
  return sql.replaceAll("$__range", `INTERVAL '${rangeSeconds} seconds'`)
    .replaceAll("$__step", `INTERVAL '${stepSeconds} seconds'`);
}

/**
 * A SQL result as chart series: the first time column is x, numeric columns are values,
 * string columns tell the series apart. Returns null when there is no time column.
 */
export function sqlSeries(result) {
  const types = result.types.map((t) => t.toUpperCase());
  const timeCol = types.findIndex((t) => t.startsWith("TIMESTAMP") || t === "DATE");
  if (timeCol < 0) return null;
  const numeric = types.map((t, i) => i !== timeCol && /INT|DOUBLE|FLOAT|DECIMAL|REAL|HUGEINT|NUMERIC/.test(t));
  const text = types.map((t, i) => i !== timeCol && t === "VARCHAR");
  const valueCols = numeric.map((n, i) => (n ? i : -1)).filter((i) => i >= 0);
  const named = valueCols.filter((i) => result.columns[i].toLowerCase() === "value");
  const chosen = named.length ? named : valueCols;
  const series = new Map();
  for (const row of result.rows) {
    const t = Date.parse(row[timeCol]);
    const group = {};
    text.forEach((isText, i) => { if (isText && row[i] !== null) group[result.columns[i]] = row[i]; });
    for (const i of chosen) {
      const labels = chosen.length > 1 ? { ...group, column: result.columns[i] } : group;
      const key = JSON.stringify(labels);
      const label = Object.keys(labels).length ? undefined : result.columns[i];
      if (!series.has(key)) series.set(key, { labels, label, points: [] });
      const v = row[i] === null ? null : Number(row[i]);
      series.get(key).points.push([t, Number.isFinite(v) ? v : null]);
    }
  }
  return [...series.values()];
}

/** The number a SQL stat shows: the last row's `Value` column, else its first number. */
export function sqlStat(result) {
  if (!result.rows.length) return null;
  const row = result.rows[result.rows.length - 1];
  let i = result.columns.findIndex((c) => c.toLowerCase() === "value");
  if (i < 0) i = result.types.findIndex((t) => /INT|DOUBLE|FLOAT|DECIMAL/.test(t.toUpperCase()));
  if (i < 0 || row[i] === null) return null;
  return Number(row[i]);
}

/** A panel answered by one SQL query, re-run every 15 s while live. */
export class SqlPanel {
  constructor(root, { sql, rangeSeconds, unit, decimals, thresholds, title, height, type }) {
    this.sql = sql;
    this.rangeSeconds = rangeSeconds;
    this.stepSeconds = Math.max(60, Math.ceil(rangeSeconds / 60 / 60) * 60);
    this.type = type || "chart";
    this.message = h("div", { class: "panel-message" });
    this.body = h("div");
    root.append(this.message, this.body);
    const options = { unit, decimals, thresholds, title, height };
    this.view = this.type === "stat" ? new StatView(this.body, options) : new TimeChart(this.body, options);
    this.poll = null;
  }

  start() {
    this.poll = live.add(new live.Poll(() => this.run(), 15));
  }

  stop() {
    if (this.poll) live.remove(this.poll);
    if (this.view.destroy) this.view.destroy();
  }

  async run() {
    let result;
    try {
      result = await api.sql(expandSql(this.sql, this.rangeSeconds, this.stepSeconds));
    } catch (err) {
      this.message.replaceChildren(errorBox(err.message));
      return;
    }
    this.message.replaceChildren();
    if (this.type === "stat") {
      this.view.show(sqlStat(result));
      return;
    }
    const series = sqlSeries(result);
    if (!series) {
      this.message.replaceChildren(errorBox("a chart panel's SQL needs a time column (e.g. TimeUnix)"));
      return;
    }
    const end = serverNow();
    this.view.setData(series, end - this.rangeSeconds * 1000, end);
  }
}
