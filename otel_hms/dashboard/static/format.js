// Numbers with their OpenTelemetry units (UCUM): s, ms, us, ns, By, KiBy, %, 1, {things}.

import { serverNow } from "./clock.js";

const TIME_UNITS = { ns: 1e-9, us: 1e-6, "μs": 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600, d: 86400 };
const BYTE_UNITS = { By: 1, KBy: 1e3, MBy: 1e6, GBy: 1e9, KiBy: 1024, MiBy: 1024 ** 2, GiBy: 1024 ** 3 };

function trim(text) {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

export function number(value, decimals) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "+∞" : "−∞";
  if (decimals !== undefined && decimals !== null) return value.toFixed(decimals);
  const abs = Math.abs(value);
  if (abs === 0) return "0";
  if (abs >= 1e15 || abs < 1e-4) return value.toExponential(2);
  if (abs >= 1e6) {
    const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"]];
    for (const [size, suffix] of units) if (abs >= size) return trim((value / size).toFixed(2)) + suffix;
  }
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return trim(value.toFixed(1));
  if (abs >= 1) return trim(value.toFixed(2));
  return trim(value.toPrecision(3));
}

function duration(seconds, decimals) {
  const abs = Math.abs(seconds);
  if (abs === 0) return "0 s";
  const steps = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"], [1e-3, "ms"], [1e-6, "µs"], [1e-9, "ns"]];
  for (const [size, suffix] of steps) {
    if (abs >= size || size === 1e-9) return `${number(seconds / size, decimals)} ${suffix}`;
  }
  return `${number(seconds, decimals)} s`;
}

function bytes(value, decimals) {
  const abs = Math.abs(value);
  const steps = [[1024 ** 4, "TiB"], [1024 ** 3, "GiB"], [1024 ** 2, "MiB"], [1024, "KiB"]];
  for (const [size, suffix] of steps) if (abs >= size) return `${number(value / size, decimals)} ${suffix}`;
  return `${number(value, decimals)} B`;
}

/** The display name of a unit: `{request}` reads "request", `1` reads "" (a plain ratio). */
export function unitLabel(unit) {
  if (!unit || unit === "1") return "";
  return unit.replace(/[{}]/g, "");
}

/** `value` in `unit`, e.g. 0.25 s → "250 ms", 1536 By → "1.5 KiB", 99.5 % → "99.5 %". */
export function withUnit(value, unit, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return number(value);
  if (unit && unit in TIME_UNITS) return duration(value * TIME_UNITS[unit], decimals);
  if (unit && unit in BYTE_UNITS) return bytes(value * BYTE_UNITS[unit], decimals);
  if (unit === "%") return `${number(value, decimals)} %`;
  if (unit && unit.endsWith("/s") && unit.slice(0, -2) in BYTE_UNITS) {
    return `${bytes(value * BYTE_UNITS[unit.slice(0, -2)], decimals)}/s`;
  }
  // Annotations like {request} name what is counted: the panel header says it, not each value.
  const rest = (unit || "").replace(/\{[^}]*\}/g, "");
  if (!rest || rest === "1") return number(value, decimals);
  return rest.startsWith("/") ? `${number(value, decimals)}${rest}` : `${number(value, decimals)} ${rest}`;
}

/** The unit an aggregation answers in: rate is per second, count has none. */
export function aggUnit(unit, agg) {
  if (agg === "count") return "";
  if (agg === "rate") return unit && unit !== "1" ? `${unit}/s` : "/s";
  return unit || "";
}

export function time(ms, withSeconds = true) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

export function dateTime(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(ms)}`;
}

/** "3 min ago", "2 h ago" for an ISO time or epoch ms. */
export function ago(when, now = serverNow()) {
  const ms = typeof when === "number" ? when : Date.parse(when);
  if (!Number.isFinite(ms)) return "–";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function labelText(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return "all series";
  return entries.map(([k, v]) => `${k}=${v}`).join(", ");
}
