// Explore: pick a metric, an aggregation, group-by keys, filters and a time range; see it live.

import * as api from "./api.js";
import { errorBox, h } from "./dom.js";
import { aggUnit, ago, unitLabel } from "./format.js";
import { MetricChart, seconds } from "./panels.js";
import { coveredRange, rangeChoices, rangeFromHash } from "./ranges.js";

export { RANGES } from "./ranges.js";
const AGGS = {
  counter: ["rate", "increase", "sum", "avg", "min", "max", "last", "count"],
  number: ["avg", "sum", "min", "max", "last", "count"],
  histogram: ["p50", "p90", "p95", "p99"],
};
const AGG_NAMES = { rate: "rate (per second)", increase: "increase per step", avg: "average",
  sum: "sum", min: "minimum", max: "maximum", last: "last value", count: "count of points",
  p50: "p50 (median)", p90: "p90", p95: "p95", p99: "p99" };

function aggsFor(metric) {
  if (!metric) return AGGS.number;
  if (metric.kind === "histogram" || metric.kind === "exponential_histogram") return AGGS.histogram;
  if (metric.kind === "sum" && metric.monotonic) return AGGS.counter;
  return AGGS.number;
}

function quote(text) {
  return `'${String(text).replaceAll("'", "''")}'`;
}

/** Attribute keys of a metric's series and up to 50 values each (for group-by and filters). */
async function attributes(metric) {
  const m = quote(metric);
  const result = await api.sql(`
    SELECT key, list(DISTINCT value ORDER BY value)[1:50] AS vals FROM (
      SELECT unnest(map_keys(Attributes)) AS key, unnest(map_values(Attributes)) AS value
      FROM otel_series WHERE MetricName = ${m}
      UNION ALL SELECT 'service.name', ServiceName FROM otel_series
      WHERE MetricName = ${m} AND ServiceName IS NOT NULL)
    GROUP BY key ORDER BY key`);
  return result.rows.map(([key, vals]) => ({ key, values: vals }));
}

function readHash() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

export class ExploreView {
  constructor(root) {
    this.root = root;
    this.metrics = [];
    this.chart = null;
    // range null: not chosen, so the span the metric's data covers (at most 1h)
    this.state = { metric: null, agg: null, by: [], where: "", range: null, start: "", end: "" };
  }

  async show() {
    const params = readHash();
    for (const key of ["metric", "agg", "where", "start", "end"]) {
      if (params.get(key)) this.state[key] = params.get(key);
    }
    if (rangeFromHash()) this.state.range = rangeFromHash();
    if (params.get("by")) this.state.by = params.get("by").split(",").filter(Boolean);
    this.root.replaceChildren(this.layout());
    await this.loadMetrics();
  }

  /** The address changed while Explore shows (a pasted or edited link): follow it. */
  hashChanged() {
    this.hide();
    this.state = { metric: null, agg: null, by: [], where: "", range: null, start: "", end: "" };
    this.show();
  }

  /** The chosen range, else the one the metric's points cover (at most 1h). */
  range() {
    const chosen = this.state.range;
    return chosen && seconds(chosen) ? chosen : coveredRange([this.metric && this.metric.first_seen], "1h");
  }

  hide() {
    if (this.chart) this.chart.stop();
    this.chart = null;
  }

  layout() {
    this.search = h("input", { type: "search", id: "metric-search", placeholder: "Search metrics…",
      "aria-label": "Search metrics by name or description", oninput: () => this.renderList() });
    this.list = h("ul", { class: "metric-list", id: "metric-list", "aria-label": "Metrics" });
    this.count = h("p", { class: "muted small" });
    this.main = h("div", { class: "explore-main" });
    return h("div", { class: "explore" },
      h("aside", { class: "sidebar", "aria-label": "Metrics" },
        h("h2", { class: "side-title", text: "Metrics" }), this.search, this.count, this.list),
      this.main);
  }

  async loadMetrics() {
    try {
      this.metrics = (await api.get("/api/v1/metrics")).metrics;
    } catch (err) {
      this.main.replaceChildren(errorBox(err.message));
      return;
    }
    this.renderList();
    const chosen = this.metrics.find((m) => m.name === this.state.metric);
    if (chosen) this.choose(chosen, false);
    else this.main.replaceChildren(h("div", { class: "empty-state" },
      h("h2", { text: this.metrics.length ? "Pick a metric" : "No metrics yet" }),
      h("p", { text: this.metrics.length
        ? "Choose a metric on the left to chart it; the chart follows new points live."
        : "Point an OpenTelemetry SDK or Collector at the OTLP endpoint; metrics appear here." })));
  }

  renderList() {
    const words = this.search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = this.metrics.filter((m) => words.every((w) =>
      `${m.name} ${m.description || ""} ${m.kind}`.toLowerCase().includes(w)));
    this.count.textContent = `${shown.length} of ${this.metrics.length} metrics`;
    this.list.replaceChildren(...shown.map((m) => h("li", {},
      h("button", { type: "button", class: "metric-item", "data-metric": m.name,
        "aria-current": m.name === this.state.metric ? "true" : null,
        onclick: () => this.choose(m, true) },
      h("span", { class: "metric-name", text: m.name }),
      h("span", { class: "metric-meta" },
        h("span", { class: `kind kind-${m.kind}`, text: m.kind === "sum" && m.monotonic ? "counter" : m.kind }),
        m.unit ? h("span", { class: "unit", text: unitLabel(m.unit) || m.unit }) : null,
        h("span", { class: "muted", text: `${m.series} series` })),
      m.description ? h("span", { class: "metric-desc", text: m.description }) : null))));
  }

  async choose(metric, fresh) {
    if (fresh) {
      this.state = { ...this.state, metric: metric.name, agg: null, by: [], where: "" };
    }
    this.metric = metric;
    const aggs = aggsFor(metric);
    if (!aggs.includes(this.state.agg)) this.state.agg = aggs[0];
    this.renderList();
    this.attrs = [];
    this.renderForm();
    try {
      this.attrs = await attributes(metric.name);
    } catch {
      this.attrs = [];
    }
    this.renderForm();
    this.run();
  }

  renderForm() {
    const m = this.metric;
    const field = (label, control, id) => h("div", { class: "field" }, h("label", { for: id, text: label }), control);
    const agg = h("select", { id: "agg", onchange: (e) => { this.state.agg = e.target.value; this.run(); } },
      aggsFor(m).map((a) => h("option", { value: a, selected: a === this.state.agg, text: AGG_NAMES[a] || a })));
    const by = h("fieldset", { class: "field by" }, h("legend", { text: "Group by" }),
      this.attrs.length ? this.attrs.map(({ key }) => h("label", { class: "check" },
        h("input", { type: "checkbox", value: key, checked: this.state.by.includes(key),
          onchange: (e) => {
            this.state.by = e.target.checked ? [...this.state.by, key] : this.state.by.filter((k) => k !== key);
            this.run();
          } }), ` ${key}`)) : h("span", { class: "muted small", text: "no attributes" }));
    const suggestions = h("datalist", { id: "where-values" },
      this.attrs.flatMap(({ key, values }) => values.map((v) => h("option", { value: `${key}=${v}` }))));
    const where = h("input", { id: "where", type: "text", list: "where-values", value: this.state.where,
      placeholder: "route=/apply, status=200",
      onchange: (e) => { this.state.where = e.target.value; this.run(); } });
    const range = h("select", { id: "range", onchange: (e) => {
      this.state.range = e.target.value;
      if (e.target.value !== "custom") { this.state.start = ""; this.state.end = ""; }
      this.renderForm();
      if (e.target.value !== "custom") this.run();
    } }, [...rangeChoices(this.range()).map((r) => h("option", { value: r, selected: !this.state.start && r === this.range(), text: `last ${r}` })),
      h("option", { value: "custom", selected: Boolean(this.state.start) || this.state.range === "custom", text: "custom…" })]);
    const custom = (this.state.range === "custom" || this.state.start) ? h("div", { class: "custom-range" },
      field("From", h("input", { id: "start", type: "datetime-local", step: "1", value: this.state.start }), "start"),
      field("To", h("input", { id: "end", type: "datetime-local", step: "1", value: this.state.end }), "end"),
      h("button", { type: "button", class: "primary", onclick: () => {
        this.state.start = this.root.querySelector("#start").value;
        this.state.end = this.root.querySelector("#end").value;
        this.run();
      }, text: "Apply" })) : null;
    this.card = h("div", { class: "card chart-card" });
    this.meta = h("p", { class: "muted small chart-meta", "aria-live": "polite" });
    this.main.replaceChildren(
      h("div", { class: "explore-head" },
        h("h1", { id: "chart-title", text: m.name }),
        h("p", { class: "metric-summary" },
          h("span", { class: `kind kind-${m.kind}`, text: m.kind === "sum" && m.monotonic ? "counter" : m.kind }),
          m.unit ? h("span", { class: "unit", text: `unit ${m.unit}` }) : null,
          m.description ? h("span", { text: m.description }) : null,
          m.last_seen ? h("span", { class: "muted", text: `last point ${ago(m.last_seen)}` }) : null)),
      h("form", { class: "query-bar", onsubmit: (e) => { e.preventDefault(); this.run(); } },
        field("Aggregation", agg, "agg"), field("Filter", where, "where"), suggestions,
        field("Time range", range, "range"), custom),
      by, this.card, this.meta);
  }

  params() {
    const p = { metric: this.metric.name, agg: this.state.agg };
    if (this.state.by.length) p.by = this.state.by.join(",");
    if (this.state.where.trim()) p.where = this.state.where.trim();
    if (this.state.start && this.state.end) {
      p.start = new Date(this.state.start).toISOString();
      p.end = new Date(this.state.end).toISOString();
    } else {
      p.range = this.range();
    }
    return p;
  }

  run() {
    if (!this.metric) return;
    const params = this.params();
    const hash = new URLSearchParams({ ...params });
    if (params.start) { hash.set("start", this.state.start); hash.set("end", this.state.end); }
    if (!seconds(this.state.range)) hash.delete("range"); // a default follows the data next time
    history.replaceState(null, "", `#/explore?${hash}`);
    if (this.chart) this.chart.stop();
    this.card.replaceChildren();
    const unit = aggUnit(this.metric.unit, this.state.agg);
    const toolbar = h("div", { class: "card-tools" },
      h("span", { class: "card-title", text: `${this.state.agg} of ${this.metric.name}` }),
      unitLabel(unit) ? h("span", { class: "unit", text: unitLabel(unit) }) : null,
      h("button", { type: "button", class: "small-button", id: "table-toggle", "aria-pressed": "false",
        onclick: (e) => e.target.setAttribute("aria-pressed", String(this.chart.view.toggleTable())),
        text: "Table" }));
    this.card.append(toolbar);
    this.chart = new MetricChart(this.card, {
      params, unit, title: `${this.state.agg} of ${this.metric.name}`, height: 300,
      onMeta: (body) => {
        const step = body.step_ms >= 60000 ? `${body.step_ms / 60000} min` : `${body.step_ms / 1000} s`;
        this.meta.textContent = `${body.series.length} series · step ${step} · from ${body.source === "raw" ? "raw points" : `${body.source} roll-ups`}`
          + (params.start ? " · fixed range (not live)" : "");
      },
    });
    this.chart.start();
  }
}
