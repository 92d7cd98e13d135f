// Time ranges of Explore and the dashboards: the choices offered, the one the address asks
// for (`#/dashboards/permits?range=15m`), and the default, the span the data covers.

import { serverNow } from "./clock.js";
import { seconds } from "./panels.js";

export const RANGES = ["5m", "15m", "1h", "6h", "24h", "7d", "30d"];

/** The address's `range` when it is a duration the API takes (`15m`, `90s`, `2h`), else null. */
export function rangeFromHash() {
  const range = new URLSearchParams(location.hash.split("?")[1] || "").get("range");
  return range && seconds(range) ? range : null;
}

/**
 * Where a chart starts when nobody chose a range: back to the first point of `firstSeen`
 * (ISO times) in whole minutes, so two minutes of data fill the chart instead of being
 * squeezed against the right edge of an hour; never longer than `cap`.
 */
export function coveredRange(firstSeen, cap) {
  const capSeconds = seconds(cap) || 3600;
  const times = firstSeen.filter(Boolean).map((t) => Date.parse(t)).filter(Number.isFinite);
  if (!times.length) return cap;
  const minutes = Math.max(1, Math.ceil((serverNow() - Math.min(...times)) / 60000));
  return minutes * 60 >= capSeconds ? cap : `${minutes}m`;
}

/** The choices of a range picker: the usual ones, and `current` when it is not among them. */
export function rangeChoices(current) {
  return RANGES.includes(current) ? RANGES
    : [current, ...RANGES].sort((a, b) => seconds(a) - seconds(b));
}
