// Cardinality: where the series are (GET /api/v1/status/cardinality), refreshed every 30 s
// while live (the answer takes seconds at a million series).
// A metric's name narrows the label tables to it (#/cardinality?metric=NAME), to find the
// label that makes it big.

import * as api from "./api.js";
import { errorBox, h, status, table } from "./dom.js";
import { number } from "./format.js";
import * as live from "./live.js";

function focus() {
  return new URLSearchParams(location.hash.split("?")[1] || "").get("metric") || "";
}

function percent(share) {
  return share === null || share === undefined ? "–" : `${number(share * 100)} %`;
}

// Use of a limit as a bar, its words beside it (never colour alone): green below 80 %.
function meter(share, label) {
  if (share === null || share === undefined) return h("span", { class: "muted", text: "no limit" });
  const pct = Math.max(0, Math.min(1, share));
  const tone = share >= 1 ? "red" : share >= 0.8 ? "amber" : "green";
  const bar = h("span", { class: `budget budget-${tone}`, role: "meter", "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": String(Math.round(pct * 100)), "aria-label": label },
  h("span", { class: "budget-fill" }));
  bar.firstChild.style.width = `${pct * 100}%`;
  return h("span", { class: "budget-cell" }, bar, percent(share));
}

export class CardinalityView {
  constructor(root) {
    this.root = root;
    this.poll = null;
  }

  show() {
    this.metric = focus();
    this.summary = h("section", { class: "card", "aria-labelledby": "card-summary-title" });
    this.metrics = h("section", { class: "card", "aria-labelledby": "card-metrics-title" });
    this.labels = h("section", { class: "card", "aria-labelledby": "card-labels-title" });
    this.pairs = h("section", { class: "card", "aria-labelledby": "card-pairs-title" });
    this.refused = h("section", { class: "card", "aria-labelledby": "card-refused-title" });
    this.root.replaceChildren(h("h1", { text: "Cardinality" }),
      h("p", { class: "muted" }, "Series per metric and label, against ", h("code", { text: "max_series" }),
        " and ", h("code", { text: "max_series_per_metric" }), ". Pick a metric to see which of its labels make it big."),
      h("div", { class: "cardinality" }, this.summary, this.metrics, this.labels, this.pairs, this.refused));
    this.poll = live.add(new live.Poll(() => this.refresh(), 30));
  }

  hide() {
    if (this.poll) live.remove(this.poll);
    this.poll = null;
  }

  hashChanged() {
    if (focus() === this.metric) return;
    this.metric = focus();
    this.refresh();
  }

  pick(metric) {
    history.replaceState(null, "", metric ? `#/cardinality?${new URLSearchParams({ metric })}` : "#/cardinality");
    this.hashChanged();
  }

  async refresh() {
    let body;
    try {
      body = await api.get("/api/v1/status/cardinality", { top: "20", ...(this.metric ? { metric: this.metric } : {}) });
    } catch (err) {
      this.summary.replaceChildren(h("h2", { id: "card-summary-title", text: "Series" }), errorBox(err.message));
      return;
    }
    this.body = body;
    this.renderSummary(body);
    this.renderMetrics(body);
    this.renderLabels(body);
    this.renderPairs(body);
    this.renderRefused(body);
  }

  renderSummary(b) {
    const rows = [
      ["series", number(b.series), b.max_series ? number(b.max_series) : "none",
        meter(b.usage, "series used of max_series")],
      [this.metric ? "series of this metric" : "series of the largest metric",
        number(b.top_metrics[0]?.series ?? 0),
        b.max_series_per_metric ? number(b.max_series_per_metric) : "none",
        meter(b.top_metrics[0]?.usage ?? (b.max_series_per_metric ? 0 : null), "use of max_series_per_metric")],
    ];
    const t = table(["", "stored", "limit", "used"], rows);
    t.id = "cardinality-summary";
    const refused = b.refused_series
      ? status("red", `${number(b.refused_series)} new series refused since start`)
      : status("green", "no series refused");
    this.summary.replaceChildren(
      h("div", { class: "section-head" }, h("h2", { id: "card-summary-title", text: "Series" }),
        h("span", { class: "counts" }, refused)),
      h("p", { class: "muted", text: `${number(b.series)} series of ${number(b.metrics)} metrics` }), t);
  }

  renderMetrics(b) {
    const rows = b.top_metrics.map((m) => [
      h("button", { type: "button", class: "link-button", "data-metric": m.metric, text: m.metric,
        "aria-pressed": String(m.metric === this.metric), onclick: () => this.pick(m.metric === this.metric ? "" : m.metric) }),
      number(m.series), percent(m.share), meter(m.usage, `${m.metric}: use of max_series_per_metric`),
      m.refused_points ? `${number(m.refused_points)} points, ${number(m.refused_series)} series` : "–"]);
    const t = table(["metric", "series", "share", "of max_series_per_metric", "refused"], rows);
    t.id = "cardinality-metrics";
    const head = h("div", { class: "section-head" },
      h("h2", { id: "card-metrics-title", text: this.metric ? `Metric ${this.metric}` : "Metrics with the most series" }),
      this.metric ? h("button", { type: "button", class: "small-button", id: "cardinality-all", text: "All metrics",
        onclick: () => this.pick("") }) : null);
    this.metrics.replaceChildren(head, rows.length ? t : h("p", { class: "muted", text: "No series stored yet." }));
  }

  renderLabels(b) {
    const rows = b.top_labels.map((l) => [h("strong", { text: l.label }), l.attributes,
      number(l.values), number(l.series)]);
    const t = table(["label", "attributes", "distinct values", "series"], rows);
    t.id = "cardinality-labels";
    this.labels.replaceChildren(h("h2", { id: "card-labels-title", text: "Labels with the most values" }),
      rows.length ? t : h("p", { class: "muted", text: "No labels." }));
  }

  renderPairs(b) {
    const rows = b.top_label_values.map((p) => [h("span", { class: "chip" }, h("b", { text: p.label }), `=${p.value}`),
      number(p.series)]);
    const t = table(["label=value", "series"], rows);
    t.id = "cardinality-pairs";
    this.pairs.replaceChildren(h("h2", { id: "card-pairs-title", text: "Label values in the most series" }),
      rows.length ? t : h("p", { class: "muted", text: "No point attributes." }));
  }

  renderRefused(b) {
    const rows = b.refused_metrics.map((r) => [h("strong", { text: r.metric }), number(r.points), number(r.series)]);
    const t = table(["metric", "points refused", "new series refused"], rows);
    t.id = "cardinality-refused";
    this.refused.replaceChildren(h("h2", { id: "card-refused-title", text: "Refused by the limits" }),
      rows.length ? t : h("p", { class: "muted", text: "Nothing refused since the server started." }));
  }
}
