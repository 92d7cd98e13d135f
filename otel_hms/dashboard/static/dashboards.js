// Dashboards: the YAML dashboards of --dashboards DIR, each panel live.

import * as api from "./api.js";
import { errorBox, h } from "./dom.js";
import { aggUnit, unitLabel } from "./format.js";
import { MetricChart, SqlPanel, seconds } from "./panels.js";
import { coveredRange, rangeChoices, rangeFromHash } from "./ranges.js";

export class DashboardsView {
  constructor(root) {
    this.root = root;
    this.panels = [];
    this.range = null; // chosen in the picker or the address; else the span the data covers
  }

  async show() {
    this.root.replaceChildren(h("p", { class: "muted", text: "Loading dashboards…" }));
    let listing;
    let metrics;
    try {
      [listing, metrics] = await Promise.all([api.get("/api/v1/dashboards"), api.get("/api/v1/metrics")]);
    } catch (err) {
      this.root.replaceChildren(errorBox(err.message));
      return;
    }
    this.units = Object.fromEntries(metrics.metrics.map((m) => [m.name, m.unit]));
    this.firstSeen = Object.fromEntries(metrics.metrics.map((m) => [m.name, m.first_seen]));
    this.listing = listing;
    const id = (location.hash.split("/")[2] || "").split("?")[0];
    const chosen = listing.dashboards.find((d) => d.id === id) || listing.dashboards[0];
    this.range = rangeFromHash();
    this.render(chosen);
  }

  /** The address changed while a dashboard shows (a pasted or edited link): follow it. */
  hashChanged() {
    this.hide();
    this.show();
  }

  /** The chosen range, else back to the first point of the panels' metrics, at most the
   * file's `range` (1h unless it says otherwise); SQL panels' data cannot be known here. */
  rangeOf(dashboard) {
    return this.range || coveredRange(dashboard.panels.map((p) => this.firstSeen[p.metric]),
      dashboard.range);
  }

  hide() {
    for (const p of this.panels) p.stop();
    this.panels = [];
  }

  render(dashboard) {
    this.hide();
    const errors = this.listing.errors.map((e) => errorBox(e));
    if (!dashboard) {
      this.root.replaceChildren(...errors, h("div", { class: "empty-state" },
        h("h2", { text: "No dashboards" }),
        h("p", {}, "Start the server with ", h("code", { text: "--dashboards DIR" }),
          " pointing at a directory of dashboard YAML files (see the README's Dashboard section).")));
      return;
    }
    const address = `#/dashboards/${dashboard.id}${this.range ? `?range=${this.range}` : ""}`;
    if (location.hash !== address) history.replaceState(null, "", address);
    const range = this.rangeOf(dashboard);
    const picker = h("select", { id: "dashboard-pick", "aria-label": "Dashboard",
      onchange: (e) => { this.range = null; this.render(this.listing.dashboards.find((d) => d.id === e.target.value)); } },
    this.listing.dashboards.map((d) => h("option", { value: d.id, selected: d.id === dashboard.id, text: d.title })));
    const ranges = rangeChoices(range);
    const rangePick = h("select", { id: "dashboard-range", "aria-label": "Time range",
      onchange: (e) => { this.range = e.target.value; this.render(dashboard); } },
    ranges.map((r) => h("option", { value: r, selected: r === range, text: `last ${r}` })));
    const grid = h("div", { class: "panel-grid" });
    this.root.replaceChildren(...errors,
      h("div", { class: "dash-head" },
        h("div", {}, h("h1", { text: dashboard.title }),
          dashboard.description ? h("p", { class: "muted", text: dashboard.description }) : null),
        h("div", { class: "dash-controls" }, picker, rangePick)),
      grid);
    dashboard.panels.forEach((panel, i) => grid.append(this.panel(panel, i, range)));
  }

  panel(panel, index, range) {
    const unit = panel.unit ?? aggUnit(this.units[panel.metric], panel.agg);
    const card = h("article", { class: `card panel panel-${panel.type}`, "data-panel": String(index),
      "aria-labelledby": `panel-title-${index}` },
    h("div", { class: "card-tools" },
      h("h2", { class: "card-title", id: `panel-title-${index}`, text: panel.title }),
      unitLabel(unit) ? h("span", { class: "unit", text: unitLabel(unit) }) : null,
      panel.description ? h("span", { class: "muted small", text: panel.description }) : null));
    const common = { unit, decimals: panel.decimals ?? undefined, thresholds: panel.thresholds,
      title: panel.title, height: 190, type: panel.type };
    let view;
    if (panel.sql) {
      view = new SqlPanel(card, { ...common, sql: panel.sql, rangeSeconds: seconds(range) });
    } else {
      const params = { metric: panel.metric, range };
      if (panel.agg) params.agg = panel.agg;
      if (panel.step) params.step = panel.step;
      if (panel.by.length) params.by = panel.by.join(",");
      const where = Object.entries(panel.where).map(([k, v]) => `${k}=${v}`).join(",");
      if (where) params.where = where;
      view = new MetricChart(card, { ...common, params });
    }
    this.panels.push(view);
    view.start();
    return card;
  }
}
