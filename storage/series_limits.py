"""The cardinality guard: how many series the store holds, in all and per metric, and which
new series fit under ``max_series`` and ``max_series_per_metric``.

The writer decides at commit time, in its own thread, so decode workers running side by
side can never overshoot a limit together.  A series refused now stays refused while the
store holds as many series (series are never deleted), so points of series already stored
are always accepted and only new series are turned away.  A limit of 0 means none.

``admit`` plans a group's admissions without changing the counts; ``count`` applies them once
the group has committed.  Refused series are counted per metric for the cardinality view;
the refused points are reported, counted and logged by the receiver like every refusal.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

import duckdb

# Metrics whose refusals are counted by name; more share the "(other metrics)" entry.
_REFUSED_METRICS_KEPT = 1000
OTHER_METRICS = "(other metrics)"


def limit_of(reason: str) -> str:
    """The setting a refusal's reason names (its first word): the key it is counted under."""
    return reason.split(" ", 1)[0]


class SeriesLimits:
    """Series counts of the store and the limits new series must fit under."""

    def __init__(self, max_series: int = 0, max_series_per_metric: int = 0, total: int = 0,
                 per_metric: dict[str, int] | None = None) -> None:
        self.max_series = max_series
        self.max_series_per_metric = max_series_per_metric
        self.total = total
        self.per_metric: Counter[str] = Counter(per_metric or {})
        # Refusals since start: a series refused in several commits counts each time.
        self.refused_series = 0
        self.refused_by_metric: dict[str, list[int]] = {}  # metric -> [points, series]
        self._lock = threading.Lock()  # the counts are read by status requests

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, max_series: int = 0,
             max_series_per_metric: int = 0) -> SeriesLimits:
        """The limits over what the store at ``con`` holds now."""
        rows = con.execute("SELECT metric_name, count(*) FROM series GROUP BY ALL").fetchall()
        per_metric = {name: int(n) for name, n in rows}
        return cls(max_series, max_series_per_metric, sum(per_metric.values()), per_metric)

    def admit(self, new: Iterable[tuple[int, str]]) -> dict[int, str]:
        """Of the new series ``(series id, metric name)``, in order, those that do not fit,
        each with the reason: the limit by setting name, value and (per metric) the metric."""
        refused: dict[int, str] = {}
        total = self.total
        added: Counter[str] = Counter()
        for sid, metric in new:
            if self.max_series and total >= self.max_series:
                refused[sid] = f"max_series ({self.max_series}) reached"
            elif (self.max_series_per_metric
                  and self.per_metric[metric] + added[metric] >= self.max_series_per_metric):
                refused[sid] = (f"max_series_per_metric ({self.max_series_per_metric}) "
                                f"reached for metric {metric}")
            else:
                total += 1
                added[metric] += 1
        return refused

    def count(self, metrics: Iterable[str]) -> None:
        """New series of these metrics are stored (one name per series)."""
        added = Counter(metrics)
        with self._lock:
            self.per_metric.update(added)
            self.total += sum(added.values())

    def refused(self, points: int, series: int, metric: str) -> None:
        """Count a refusal of ``points`` points of ``series`` new series of ``metric``."""
        with self._lock:
            self.refused_series += series
            key = metric if (metric in self.refused_by_metric
                             or len(self.refused_by_metric) < _REFUSED_METRICS_KEPT) \
                else OTHER_METRICS
            entry = self.refused_by_metric.setdefault(key, [0, 0])
            entry[0] += points
            entry[1] += series

    def usage(self, top: int = 0) -> dict[str, object]:
        """Counts and limits for ``/api/v1/status`` (and the ``top`` metrics by refused
        points)."""
        with self._lock:
            out: dict[str, object] = {
                "series": self.total, "metrics": len(self.per_metric),
                "max_series": self.max_series,
                "max_series_per_metric": self.max_series_per_metric,
                "refused_series": self.refused_series}
            if top:
                worst = sorted(self.refused_by_metric.items(), key=lambda kv: -kv[1][0])[:top]
                out["refused_by_metric"] = [{"metric": m, "points": p, "series": n}
                                            for m, (p, n) in worst]
            return out
