// Small DOM helpers shared by the views.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Status shown three ways: colour, icon and word (never colour alone).
const STATES = {
  firing: ["bad", "▲", "Firing"], pending: ["warn", "◆", "Pending"],
  inactive: ["good", "✓", "Resolved"], ok: ["good", "✓", "OK"], error: ["bad", "✕", "Error"],
  nodata: ["warn", "○", "No data"], unknown: ["neutral", "…", "Not run yet"],
  red: ["bad", "▲", null], amber: ["warn", "◆", null], green: ["good", "✓", null],
  blue: ["info", "●", null], grey: ["neutral", "●", null],
};

export function status(state, label) {
  const [tone, icon, word] = STATES[state] || ["neutral", "●", state];
  return h("span", { class: `status status-${tone}`, "data-state": state },
    h("span", { class: "status-icon", "aria-hidden": "true", text: icon }),
    h("span", { class: "status-text", text: label || word || state }));
}

export function errorBox(message) {
  return h("div", { class: "error-box", role: "alert" },
    h("span", { class: "status-icon", "aria-hidden": "true", text: "✕" }), ` ${message}`);
}

export function labelChips(labels, skip = []) {
  return h("span", { class: "chips" }, Object.entries(labels || {})
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => h("span", { class: "chip" }, h("b", { text: k }), `=${v}`)));
}

export function table(columns, rows, className = "data") {
  return h("table", { class: className },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((cell) => h("td", {},
      cell instanceof Node ? cell : (cell === null || cell === undefined ? "" : String(cell))))))));
}
