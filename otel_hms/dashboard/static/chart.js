// A small time-series chart on a canvas: axes, lines, threshold lines, legend, hover values,
// keyboard cursor. The data stays readable in the DOM too (legend values, a table view).

import { dateTime, labelText, number, time, withUnit } from "./format.js";

// Okabe–Ito: told apart with the common colour-vision deficiencies.
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
  "#7A5195", "#4D4D4D"];
export const STATUS = { red: "#C4420A", amber: "#B87800", green: "#00795A", blue: "#0072B2",
  grey: "#6B6B6B" };

const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800, 604800].map((s) => s * 1000);

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export class TimeChart {
  /**
   * @param {HTMLElement} root where the chart goes
   * @param {{unit?: string, decimals?: number, thresholds?: Array, height?: number, title?: string}} options
   */
  constructor(root, options = {}) {
    this.options = options;
    this.series = []; // [{key, label, labels, points: [[ms, value]], color, hidden}]
    this.start = null;
    this.end = null;
    this.cursor = null; // index into this.times
    this.times = [];
    this.root = root;
    root.classList.add("chart");
    this.canvas = el("canvas", { tabindex: "0", role: "img", class: "chart-canvas" });
    this.tooltip = el("div", { class: "chart-tooltip", hidden: "" });
    this.empty = el("div", { class: "chart-empty", text: "No data in this range" });
    this.legend = el("ul", { class: "chart-legend", "aria-label": "Series" });
    this.live = el("div", { class: "sr-only", "aria-live": "polite" });
    this.table = el("div", { class: "chart-table", hidden: "" });
    this.frame = el("div", { class: "chart-frame" }, this.canvas, this.tooltip, this.empty);
    root.append(this.frame, this.legend, this.table, this.live);
    this.canvas.style.height = `${options.height || 240}px`;
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => this.setCursor(null));
    this.canvas.addEventListener("keydown", (e) => this.key(e));
    this.canvas.addEventListener("blur", () => this.setCursor(null));
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.frame);
  }

  destroy() {
    this.resize.disconnect();
  }

  /** Replace every series; `series` is the API's `[{labels, points}]`. */
  setData(series, start, end) {
    const hidden = new Set(this.series.filter((s) => s.hidden).map((s) => s.key));
    this.series = series.map((s, i) => {
      const key = s.key || JSON.stringify(s.labels || {});
      return { key, label: s.label || labelText(s.labels), labels: s.labels || {},
        points: s.points.slice().sort((a, b) => a[0] - b[0]),
        color: PALETTE[i % PALETTE.length], dash: i >= PALETTE.length ? [6, 3] : [],
        hidden: hidden.has(key) };
    });
    this.setRange(start, end);
  }

  /** Merge points keyed by time into the series with these labels (the live stream). */
  merge(updates, start, end) {
    for (const update of updates) {
      const key = JSON.stringify(update.labels || {});
      let s = this.series.find((x) => x.key === key);
      if (!s) {
        const i = this.series.length;
        s = { key, label: labelText(update.labels), labels: update.labels || {}, points: [],
          color: PALETTE[i % PALETTE.length], dash: i >= PALETTE.length ? [6, 3] : [],
          hidden: false };
        this.series.push(s);
      }
      const byTime = new Map(s.points.map((p) => [p[0], p]));
      for (const [t, v] of update.points) {
        const p = byTime.get(t);
        if (p) p[1] = v; else s.points.push([t, v]);
      }
      s.points.sort((a, b) => a[0] - b[0]);
    }
    this.setRange(start, end);
  }

  setRange(start, end) {
    this.start = start;
    this.end = end;
    for (const s of this.series) s.points = s.points.filter((p) => p[0] >= start && p[0] <= end);
    const times = new Set();
    for (const s of this.series) for (const p of s.points) times.add(p[0]);
    this.times = [...times].sort((a, b) => a - b);
    if (this.cursor !== null && this.cursor >= this.times.length) this.cursor = null;
    this.renderLegend();
    if (!this.table.hidden) this.renderTable();
    this.canvas.setAttribute("aria-label", this.summary());
    this.draw();
  }

  summary() {
    const title = this.options.title || "Chart";
    if (!this.times.length) return `${title}: no data`;
    const parts = this.series.map((s) => `${s.label} latest ${this.fmt(this.latest(s))}`);
    return `${title}: ${parts.join("; ")}. Arrow keys read the values.`;
  }

  latest(s) {
    for (let i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== null) return s.points[i][1];
    return null;
  }

  fmt(v) {
    return withUnit(v, this.options.unit, this.options.decimals);
  }

  axisFmt(v) {
    return withUnit(v, this.options.unit);
  }

  renderLegend() {
    this.legend.replaceChildren(...this.series.map((s) => {
      const button = el("button", { type: "button", class: "legend-item",
        "aria-pressed": String(!s.hidden), title: "Show or hide this series" },
      el("span", { class: "swatch" }),
      el("span", { class: "legend-label", text: s.label }),
      el("span", { class: "legend-value", text: this.fmt(this.latest(s)) }));
      button.querySelector(".swatch").style.background = s.color;
      button.dataset.series = s.key;
      button.dataset.latest = String(this.latest(s));
      button.addEventListener("click", () => {
        s.hidden = !s.hidden;
        button.setAttribute("aria-pressed", String(!s.hidden));
        this.draw();
      });
      return el("li", {}, button);
    }));
    this.empty.hidden = this.times.length > 0;
  }

  toggleTable() {
    this.table.hidden = !this.table.hidden;
    if (!this.table.hidden) this.renderTable();
    return !this.table.hidden;
  }

  renderTable() {
    const head = el("tr", {}, el("th", { scope: "col", text: "time" }),
      ...this.series.map((s) => el("th", { scope: "col", text: s.label })));
    const rows = this.times.slice().reverse().map((t) => el("tr", {},
      el("th", { scope: "row", text: dateTime(t) }),
      ...this.series.map((s) => {
        const p = s.points.find((x) => x[0] === t);
        const cell = el("td", { text: p ? this.fmt(p[1]) : "" });
        if (p) cell.dataset.value = String(p[1]);
        return cell;
      })));
    this.table.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  // -- drawing ----------------------------------------------------------------------------

  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) {
      if (s.hidden) continue;
      for (const [, v] of s.points) {
        if (v === null || !Number.isFinite(v)) continue;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    for (const t of this.options.thresholds || []) {
      if (lo === Infinity) break;
      lo = Math.min(lo, t.value);
      hi = Math.max(hi, t.value);
    }
    if (lo === Infinity) return [0, 1];
    if (lo >= 0 && (this.options.zero !== false)) lo = 0;
    if (hi === lo) hi = lo === 0 ? 1 : lo + Math.abs(lo) * 0.1;
    const step = niceStep(hi - lo, 4);
    return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(this.root);
    const ink = styles.getPropertyValue("--chart-ink").trim() || "#333";
    const grid = styles.getPropertyValue("--chart-grid").trim() || "#e5e5e5";
    ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

    const [lo, hi, ystep] = this.extent();
    const yTicks = [];
    for (let v = lo; v <= hi + ystep / 1e6; v += ystep) yTicks.push(Number(v.toPrecision(12)));
    const yLabels = yTicks.map((v) => this.axisFmt(v));
    const left = Math.ceil(Math.max(...yLabels.map((t) => ctx.measureText(t).width))) + 14;
    const plot = { x: left, y: 10, w: Math.max(10, width - left - 14), h: Math.max(10, height - 34) };
    this.plot = plot;
    const start = this.start ?? (this.times[0] || 0);
    const end = this.end ?? (this.times[this.times.length - 1] || 1);
    const x = (t) => plot.x + ((t - start) / Math.max(1, end - start)) * plot.w;
    const y = (v) => plot.y + plot.h - ((v - lo) / (hi - lo)) * plot.h;
    this.scale = { x, y, start, end };

    // grid and y labels
    ctx.strokeStyle = grid;
    ctx.fillStyle = ink;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    yTicks.forEach((v, i) => {
      const py = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(plot.x, py);
      ctx.lineTo(plot.x + plot.w, py);
      ctx.stroke();
      ctx.fillText(yLabels[i], plot.x - 6, py);
    });
    // x labels
    const span = end - start;
    const tstep = TIME_STEPS.find((s) => span / s <= plot.w / 90) || TIME_STEPS.at(-1);
    const offset = new Date(start).getTimezoneOffset() * 60000;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil((start - offset) / tstep) * tstep + offset; t <= end; t += tstep) {
      const px = Math.round(x(t)) + 0.5;
      const d = new Date(t);
      const label = tstep >= 86400000 ? `${d.getMonth() + 1}-${String(d.getDate()).padStart(2, "0")}`
        : time(t, tstep < 60000);
      const half = ctx.measureText(label).width / 2;
      if (px - half < plot.x - 2 || px + half > width - 2) continue; // would run into the y labels
      ctx.beginPath();
      ctx.moveTo(px, plot.y + plot.h);
      ctx.lineTo(px, plot.y + plot.h + 4);
      ctx.stroke();
      ctx.fillText(label, px, plot.y + plot.h + 7);
    }
    ctx.strokeStyle = ink;
    ctx.beginPath();
    ctx.moveTo(plot.x, plot.y + plot.h + 0.5);
    ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
    ctx.stroke();

    // thresholds: dashed lines with their label
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y - 2, plot.w, plot.h + 4);
    ctx.clip();
    for (const t of this.options.thresholds || []) {
      const py = Math.round(y(t.value)) + 0.5;
      ctx.strokeStyle = STATUS[t.color] || STATUS.red;
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = 2;
      ctx.setLineDash([8, 4]);
      ctx.beginPath();
      ctx.moveTo(plot.x, py);
      ctx.lineTo(plot.x + plot.w, py);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.textAlign = "right";
      const below = py - 16 < plot.y;
      ctx.textBaseline = below ? "top" : "bottom";
      ctx.fillText(t.label || this.fmt(t.value), plot.x + plot.w - 4, below ? py + 4 : py - 3);
    }
    // series
    for (const s of this.series) {
      if (s.hidden) continue;
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dash);
      ctx.beginPath();
      let drawing = false;
      let alone = [];
      s.points.forEach(([t, v], i) => {
        if (v === null || !Number.isFinite(v)) { drawing = false; return; }
        const prev = s.points[i - 1];
        const next = s.points[i + 1];
        const isolated = (!prev || prev[1] === null) && (!next || next[1] === null);
        if (isolated) alone.push([t, v]);
        if (drawing) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
        drawing = true;
      });
      ctx.stroke();
      ctx.setLineDash([]);
      for (const [t, v] of alone) {
        ctx.beginPath();
        ctx.arc(x(t), y(v), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
      alone = [];
    }
    ctx.restore();
    this.drawCursor(ctx);
  }

  drawCursor(ctx) {
    if (this.cursor === null || !this.scale) return;
    const t = this.times[this.cursor];
    const { x, y } = this.scale;
    const px = Math.round(x(t)) + 0.5;
    ctx.strokeStyle = "rgba(0,0,0,0.45)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(px, this.plot.y);
    ctx.lineTo(px, this.plot.y + this.plot.h);
    ctx.stroke();
    for (const s of this.series) {
      if (s.hidden) continue;
      const p = s.points.find((q) => q[0] === t);
      if (!p || p[1] === null) continue;
      ctx.fillStyle = s.color;
      ctx.strokeStyle = "#fff";
      ctx.beginPath();
      ctx.arc(px, y(p[1]), 4, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  }

  // -- hover and keyboard -------------------------------------------------------------------

  hover(event) {
    if (!this.times.length || !this.scale) return;
    const rect = this.canvas.getBoundingClientRect();
    const px = event.clientX - rect.left;
    let best = 0;
    let bestDist = Infinity;
    this.times.forEach((t, i) => {
      const d = Math.abs(this.scale.x(t) - px);
      if (d < bestDist) { bestDist = d; best = i; }
    });
    this.setCursor(best);
  }

  key(event) {
    if (!this.times.length) return;
    const last = this.times.length - 1;
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (event.key === "Escape") { this.setCursor(null); return; }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const from = this.cursor === null ? (moves[event.key] > 0 ? -1 : last + 1) : this.cursor;
    this.setCursor(Math.min(last, Math.max(0, from + moves[event.key])));
  }

  setCursor(index) {
    this.cursor = index;
    this.draw();
    if (index === null) { this.tooltip.hidden = true; return; }
    const t = this.times[index];
    const rows = this.series.filter((s) => !s.hidden).map((s) => {
      const p = s.points.find((q) => q[0] === t);
      return { s, v: p ? p[1] : null };
    }).sort((a, b) => (b.v ?? -Infinity) - (a.v ?? -Infinity));
    this.tooltip.replaceChildren(el("div", { class: "tooltip-time", text: dateTime(t) }),
      ...rows.map(({ s, v }) => {
        const row = el("div", { class: "tooltip-row" }, el("span", { class: "swatch" }),
          el("span", { class: "tooltip-label", text: s.label }),
          el("span", { class: "tooltip-value", text: this.fmt(v) }));
        row.querySelector(".swatch").style.background = s.color;
        return row;
      }));
    this.tooltip.hidden = false;
    const px = this.scale.x(t);
    const box = this.frame.clientWidth;
    const tipWidth = this.tooltip.offsetWidth;
    this.tooltip.style.left = `${Math.min(Math.max(0, px + 12), Math.max(0, box - tipWidth))}px`;
    if (px + 12 + tipWidth > box) this.tooltip.style.left = `${Math.max(0, px - tipWidth - 12)}px`;
    this.live.textContent = `${dateTime(t)}: ` + rows.map(({ s, v }) => `${s.label} ${this.fmt(v)}`).join(", ");
  }
}

export { number };
