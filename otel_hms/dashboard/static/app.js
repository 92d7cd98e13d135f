// The page: views behind #/explore, #/dashboards, #/alerts, #/sql, #/cardinality; live
// pause/resume; token.

import * as api from "./api.js";
import { AlertsView, refreshBadge } from "./alerts.js";
import { CardinalityView } from "./cardinality.js";
import { DashboardsView } from "./dashboards.js";
import { ExploreView } from "./explore.js";
import * as live from "./live.js";
import { SqlView } from "./sqlconsole.js";

const views = {
  explore: new ExploreView(document.getElementById("view-explore")),
  dashboards: new DashboardsView(document.getElementById("view-dashboards")),
  alerts: new AlertsView(document.getElementById("view-alerts")),
  sql: new SqlView(document.getElementById("view-sql")),
  cardinality: new CardinalityView(document.getElementById("view-cardinality")),
};
let current = null;

function askToken() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(input.value.trim() || null), { once: true });
    dialog.showModal();
    input.focus();
  });
}

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const next = name in views ? name : "explore";
  if (next === current) { // an edited or pasted address: the view follows it if it can
    if (views[next].hashChanged) views[next].hashChanged();
    return;
  }
  if (current) views[current].hide();
  live.clear();
  for (const [key, view] of Object.entries(views)) view.root.hidden = key !== next;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === next) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  current = next;
  document.title = `${next[0].toUpperCase()}${next.slice(1)} · otel-hms`;
  views[next].show();
}

function liveControl() {
  const button = document.getElementById("live-toggle");
  const state = document.getElementById("live-state");
  const paint = (on) => {
    button.textContent = on ? "Pause" : "Resume";
    button.setAttribute("aria-pressed", String(!on));
    state.textContent = on ? "● Live" : "❚❚ Paused";
    state.classList.toggle("paused", !on);
  };
  button.addEventListener("click", () => live.setLive(!live.isLive()));
  live.onLiveChange(paint);
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName);
    if (e.key === "p" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) live.setLive(!live.isLive());
  });
  paint(true);
}

api.onTokenNeeded(askToken);
liveControl();
window.addEventListener("hashchange", route);
route();
refreshBadge();
setInterval(refreshBadge, 10000);
window.otelHms = { views, live };
