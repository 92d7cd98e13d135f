// SQL console: one read-only query on the sandboxed endpoint, shown as a table or a chart.

import * as api from "./api.js";
import { TimeChart } from "./chart.js";
import { errorBox, h, table } from "./dom.js";
import { sqlSeries } from "./panels.js";

const EXAMPLE = `-- Ctrl+Enter runs. One read-only SELECT; the SQL helpers are there.
SELECT MetricName, MetricType, count(*) AS series
FROM otel_series GROUP BY ALL ORDER BY MetricName`;

export class SqlView {
  constructor(root) {
    this.root = root;
    this.text = sessionStorage.getItem("otel-hms-sql") || EXAMPLE;
    this.mode = "table";
  }

  show() {
    this.editor = h("textarea", { id: "sql-input", class: "sql-input", spellcheck: "false",
      "aria-label": "SQL query", rows: "8",
      onkeydown: (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.run(); } } });
    this.editor.value = this.text;
    this.status = h("p", { class: "muted small", id: "sql-status", "aria-live": "polite" });
    this.out = h("div", { class: "sql-out card" });
    this.tabs = h("div", { class: "seg", role: "group", "aria-label": "Show result as" },
      h("button", { type: "button", id: "sql-as-table", "aria-pressed": "true", onclick: () => this.setMode("table"), text: "Table" }),
      h("button", { type: "button", id: "sql-as-chart", "aria-pressed": "false", onclick: () => this.setMode("chart"), text: "Chart" }));
    this.root.replaceChildren(h("h1", { text: "SQL console" }),
      h("p", { class: "muted" }, "Read-only: one SELECT, with the server's time and row limits. Tables: ",
        h("code", { text: "otel_metrics_gauge" }), ", ", h("code", { text: "otel_metrics_sum" }), ", ",
        h("code", { text: "otel_metrics_histogram" }), ", ", h("code", { text: "otel_series" }), ", ",
        h("code", { text: "alerts" }), "; helpers ", h("code", { text: "rate()" }), ", ",
        h("code", { text: "histogram_quantile()" }), ", ", h("code", { text: "sla_adherence()" }), " …"),
      this.editor,
      h("div", { class: "sql-actions" },
        h("button", { type: "button", class: "primary", id: "sql-run", onclick: () => this.run(), text: "Run (Ctrl+Enter)" }),
        this.tabs, this.status),
      this.out);
  }

  hide() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
  }

  setMode(mode) {
    this.mode = mode;
    for (const b of this.tabs.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b.id === `sql-as-${mode}`));
    }
    if (this.result) this.render();
  }

  async run() {
    this.text = this.editor.value;
    sessionStorage.setItem("otel-hms-sql", this.text);
    this.status.textContent = "Running…";
    const started = performance.now();
    try {
      this.result = await api.sql(this.text);
    } catch (err) {
      this.result = null;
      this.status.textContent = "";
      this.out.replaceChildren(errorBox(err.message));
      return;
    }
    const ms = Math.round(performance.now() - started);
    const n = this.result.rows.length;
    this.status.textContent = `${n} row${n === 1 ? "" : "s"} in ${ms} ms${this.result.truncated ? " (truncated at the row limit)" : ""}`;
    this.render();
  }

  render() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
    const r = this.result;
    if (this.mode === "chart") {
      const series = sqlSeries(r);
      if (!series) {
        this.out.replaceChildren(errorBox("a chart needs a time column (TIMESTAMP) and a number column"));
        return;
      }
      const holder = h("div");
      this.out.replaceChildren(holder);
      const times = series.flatMap((s) => s.points.map((p) => p[0]));
      this.chart = new TimeChart(holder, { title: "query result", height: 320 });
      this.chart.setData(series, Math.min(...times), Math.max(...times));
      return;
    }
    const rows = r.rows.map((row) => row.map((v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : v)));
    const t = table(r.columns, rows);
    t.id = "sql-result";
    t.querySelectorAll("thead th").forEach((th, i) => { th.title = r.types[i]; });
    this.out.replaceChildren(h("div", { class: "table-scroll" }, t));
  }
}
