// Alerts: the current alert instances, SLO error budgets and rule health, refreshed while live.

import * as api from "./api.js";
import { errorBox, h, labelChips, status, table } from "./dom.js";
import { ago, dateTime, number } from "./format.js";
import * as live from "./live.js";

const ORDER = { firing: 0, pending: 1, inactive: 2 };

function when(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const ms = seconds * 1000;
  return h("time", { datetime: new Date(ms).toISOString(), title: dateTime(ms), text: ago(ms) });
}

function budgetState(remaining) {
  if (remaining === null) return ["unknown", "no data"];
  if (remaining <= 0) return ["red", "budget spent"];
  if (remaining < 0.25) return ["amber", "budget low"];
  return ["green", "within budget"];
}

export class AlertsView {
  constructor(root) {
    this.root = root;
    this.poll = null;
  }

  show() {
    this.alerts = h("section", { "aria-labelledby": "alerts-title" });
    this.slos = h("section", { "aria-labelledby": "slos-title" });
    this.rules = h("section", { "aria-labelledby": "rules-title" });
    this.root.replaceChildren(h("h1", { text: "Alerts and SLOs" }), this.alerts, this.slos, this.rules);
    this.poll = live.add(new live.Poll(() => this.refresh(), 5));
  }

  hide() {
    if (this.poll) live.remove(this.poll);
    this.poll = null;
  }

  async refresh() {
    let alerts;
    let rules;
    let slos;
    try {
      [alerts, rules, slos] = await Promise.all([api.get("/api/v1/alerts"), api.get("/api/v1/rules"),
        api.get("/api/v1/slos")]);
    } catch (err) {
      this.alerts.replaceChildren(errorBox(err.message));
      return;
    }
    this.renderAlerts(alerts.alerts);
    this.renderSlos(slos.slos);
    this.renderRules(rules);
  }

  renderAlerts(items) {
    items.sort((a, b) => (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) || (b.activeAt - a.activeAt));
    const counts = ["firing", "pending", "inactive"].map((s) => [s, items.filter((a) => a.state === s).length]);
    setBadge(counts[0][1]);
    const rows = items.map((a) => [
      status(a.state), h("strong", { text: a.alertname }),
      labelChips(a.labels, ["alertname"]),
      a.value === null ? "–" : number(a.value),
      when(a.state === "firing" ? a.firedAt : a.state === "inactive" ? a.resolvedAt : a.activeAt),
      a.annotations.summary || a.annotations.error || a.annotations.description || "",
    ]);
    const t = table(["state", "alert", "labels", "value", "since", "summary"], rows);
    t.id = "alerts-table";
    t.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.dataset.alertname = items[i].alertname;
      tr.dataset.state = items[i].state;
    });
    this.alerts.replaceChildren(
      h("div", { class: "section-head" }, h("h2", { id: "alerts-title", text: "Alert instances" }),
        h("span", { class: "counts" }, counts.map(([s, n]) => status(s, `${n} ${s === "inactive" ? "resolved" : s}`)))),
      items.length ? t : h("p", { class: "muted", text: "No alert instances: every rule is quiet." }));
  }

  renderSlos(items) {
    const rows = items.map((s) => {
      const remaining = s.budgetRemaining === null ? null : Number(s.budgetRemaining);
      const [tone, word] = budgetState(remaining);
      const pct = remaining === null ? 0 : Math.max(0, Math.min(1, remaining));
      const bar = h("span", { class: `budget budget-${tone}`, role: "meter", "aria-valuemin": "0",
        "aria-valuemax": "100", "aria-valuenow": String(Math.round(pct * 100)),
        "aria-label": `error budget remaining for ${s.name}` }, h("span", { class: "budget-fill" }));
      bar.firstChild.style.width = `${pct * 100}%`;
      return [h("strong", { text: s.name }), `${number(Number(s.objective) * 100)} %`,
        s.sli === null ? "–" : `${number(Number(s.sli) * 100)} %`,
        s.total === null ? "–" : `${number(s.good)} / ${number(s.total)}`,
        h("span", { class: "budget-cell" }, bar,
          remaining === null ? "–" : `${number(remaining * 100)} %`), status(tone, word),
        s.error ? errorBox(s.error) : s.period ? `${s.period / 86400} d` : ""];
    });
    const t = table(["SLO", "objective", "SLI", "good / total", "budget left", "status", "period"], rows);
    t.id = "slos-table";
    this.slos.replaceChildren(h("h2", { id: "slos-title", text: "SLOs" }),
      items.length ? t : h("p", { class: "muted" }, "No SLOs: add ", h("code", { text: "slos:" }),
        " to a rules file or POST /api/v1/slos."));
  }

  renderRules(body) {
    const rows = [];
    for (const g of body.groups) {
      for (const r of g.rules) {
        rows.push([g.name, h("strong", { text: r.name }), status(r.health),
          r.lastError ? h("span", { class: "error-text", text: r.lastError }) : "–",
          when(r.lastEvaluation), r.evaluationSeconds ? `${number(r.evaluationSeconds * 1000)} ms` : "–",
          `${r.alerts.firing} firing, ${r.alerts.pending} pending`]);
      }
    }
    const t = table(["group", "rule", "health", "last error", "last run", "took", "instances"], rows);
    t.id = "rules-table";
    this.rules.replaceChildren(h("h2", { id: "rules-title", text: "Rules" }),
      rows.length ? t : h("p", { class: "muted" }, "No rules loaded: start with ",
        h("code", { text: "--rules rules.yaml" }), "."));
  }
}

function setBadge(count) {
  const badge = document.getElementById("alert-badge");
  badge.hidden = count === 0;
  badge.textContent = `${count} firing`;
}

/** The count of firing alerts in the navigation (the app refreshes it every 10 s). */
export async function refreshBadge() {
  try {
    setBadge((await api.get("/api/v1/alerts", { state: "firing" })).alerts.length);
  } catch {
    setBadge(0);
  }
}
