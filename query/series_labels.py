"""Labels that tell the series of an ungrouped ``/api/v1/query`` answer apart.

The SQL helpers label an ungrouped series with its point attributes and ``service.name``, so
two replicas of a service (or the same metric from two hosts) would come back with the same
labels.  A Prometheus or VictoriaMetrics user expects the ``instance`` label there: every
series gets ``service.instance.id`` when its resource has one, and series that still look
alike get the resource attributes they differ in, then ``otel.scope.name`` /
``otel.scope.version`` (the Prometheus exporters' scope labels), and as a last resort
``otel.series_id``.  Look-alikes are found among all the metric's series, not only the
answer's, so a series keeps its labels whatever the range (the stream relies on that).
Only look-alikes are read in full: for the others the instance id is all it takes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

INSTANCE = "service.instance.id"

# Per series of metric ``?``: its instance id and, when other series share its helper labels
# (point attributes over service.name) and instance id, what is needed to tell them apart.
LABELS_SQL = """
    WITH s AS (
        SELECT *, coalesce(attributes['service.instance.id'],
                           resource_attributes['service.instance.id']) AS instance,
               count(*) OVER (
                   PARTITION BY coalesce(attributes['service.name'], service_name, ''),
                                CASE WHEN attributes['service.name'] IS NULL THEN attributes
                                     ELSE map_from_entries(list_filter(map_entries(attributes),
                                         lambda e: e.key <> 'service.name')) END,
                                instance) AS alike
        FROM series WHERE metric_name = ?
    )
    SELECT series_id, instance, alike > 1,
           CASE WHEN alike > 1 THEN service_name END,
           CASE WHEN alike > 1 THEN map_keys(attributes) END,
           CASE WHEN alike > 1 THEN map_values(attributes) END,
           CASE WHEN alike > 1 THEN map_keys(resource_attributes) END,
           CASE WHEN alike > 1 THEN map_values(resource_attributes) END,
           CASE WHEN alike > 1 THEN scope_name END,
           CASE WHEN alike > 1 THEN scope_version END
    FROM s
"""


class SeriesInfo(NamedTuple):
    """What the ``series`` table says about one series of the metric."""

    labels: dict[str, str]  # point attributes and service.name, as the helpers label it
    resource: dict[str, str]
    scope: dict[str, str]  # otel.scope.name / otel.scope.version, when set


def extra_labels(rows: Iterable[tuple[Any, ...]]) -> dict[int, dict[str, str]]:
    """``LABELS_SQL`` rows to the labels each series adds to its helper labels."""
    extra: dict[int, dict[str, str]] = {}
    alike = []
    for sid, instance, lookalike, *info in rows:
        if lookalike:
            alike.append((sid, *info))
        elif instance is not None:
            extra[sid] = {INSTANCE: instance}
    extra.update(distinct_labels(series_info(alike)))
    return extra


def series_info(rows: Iterable[tuple[Any, ...]]) -> dict[int, SeriesInfo]:
    """Rows of (series id, service name, attribute keys, values, resource keys, values,
    scope name, scope version) to ``{series id: SeriesInfo}``."""
    out = {}
    for sid, service, keys, values, rkeys, rvalues, scope_name, scope_version in rows:
        labels = {"service.name": service or "", **dict(zip(keys, values))}
        scope = {k: v for k, v in (("otel.scope.name", scope_name),
                                   ("otel.scope.version", scope_version)) if v}
        out[sid] = SeriesInfo(labels, dict(zip(rkeys, rvalues)), scope)
    return out


def distinct_labels(infos: dict[int, SeriesInfo]) -> dict[int, dict[str, str]]:
    """Per series id, labels no other series of ``infos`` has."""
    labels = {}
    for sid, info in infos.items():
        own = dict(info.labels)
        if INSTANCE in info.resource:
            own.setdefault(INSTANCE, info.resource[INSTANCE])
        labels[sid] = own
    _add_differences(labels, lambda sid: infos[sid].resource)
    _add_differences(labels, lambda sid: infos[sid].scope)
    _add_differences(labels, lambda sid: {"otel.series_id": str(sid)})
    return labels


def _add_differences(labels: dict[int, dict[str, str]],
                     source: Callable[[int], dict[str, str]]) -> None:
    """Give series with equal labels the keys of ``source`` whose values differ among them."""
    alike: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for sid, own in labels.items():
        alike[tuple(sorted(own.items()))].append(sid)
    for sids in alike.values():
        if len(sids) < 2:
            continue
        extra = [source(sid) for sid in sids]
        keys = sorted({k for e in extra for k in e})
        differing = [k for k in keys if len({e.get(k) for e in extra}) > 1]
        for sid, e in zip(sids, extra):
            for k in differing:
                if k in e:
                    labels[sid].setdefault(k, e[k])
