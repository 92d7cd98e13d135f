"""OTLP series under Prometheus names, as the OpenTelemetry specification's Prometheus
compatibility section and the Collector's translator name them (docs/design/prometheus.md
§5): ``http.server.request.duration`` in seconds becomes
``http_server_request_duration_seconds``, a monotonic sum gets ``_total``, a unit-``1`` gauge
``_ratio``; attributes become sanitized labels; ``job`` and ``instance`` come from
``service.namespace``/``service.name`` and ``service.instance.id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_UNITS = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
          "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
          "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
          "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters",
          "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
          "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent"}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
              "y": "year"}


def _clean(suffix: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9]", "_", suffix)).strip("_")


def _unit_suffixes(unit: str) -> tuple[str, str]:
    """The main and the ``per_`` suffix of a UCUM unit (``m/s`` -> ``meters``,
    ``per_second``); a part in braces (``{request}``) is dropped."""
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_word = "" if "{" in main or "}" in main else _clean(_UNITS.get(main, main))
    per_word = "" if "{" in per or "}" in per else _clean(_PER_UNITS.get(per, per))
    return main_word, f"per_{per_word}" if per_word else ""


def metric_name(name: str, unit: str | None, kind: str, monotonic: bool | None) -> str:
    """The Prometheus metric name (the family's, for histograms: without ``_bucket``)."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]+", name) if t]
    main, per = _unit_suffixes(unit or "")
    if main and main not in tokens:
        tokens.append(main.rstrip("_") if per else main)
    if per and per not in "_".join(tokens):
        tokens.append(per)
    counter = kind == "sum" and bool(monotonic)
    if counter:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    elif kind in ("gauge", "sum") and (unit or "") == "1":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    joined = "_".join(tokens)
    return "_" + joined if joined[:1].isdigit() else joined


def metadata_unit(prom_name: str, unit: str | None) -> str:
    """The unit ``/api/v1/metadata`` gives: the unit's words (``seconds``,
    ``meters_per_second``, ``ratio`` for ``1``) when the name carries them as OpenMetrics
    asks (``x_seconds``, ``x_seconds_total``), else ``""``."""
    main, per = _unit_suffixes(unit or "")
    words = "_".join(w for w in (main.rstrip("_") if per else main, per) if w)
    if (unit or "") == "1":
        words = "ratio"
    base = prom_name.removesuffix("_total")
    return words if words and (base == words or base.endswith("_" + words)) else ""


def label_name(key: str) -> str:
    """A label name for an attribute key: non-alphanumerics to ``_`` (runs collapsed), a
    leading digit prefixed ``key_``, a single leading ``_`` prefixed ``key``."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9]", "_", key))
    if name[:1].isdigit():
        return "key_" + name
    if name.startswith("_") and not key.startswith("__"):
        return "key" + name
    if key.startswith("__"):
        return "__" + name.lstrip("_")
    return name


def series_labels(name: str, attributes: Mapping[str, str],
                  resource: Mapping[str, str]) -> dict[str, str]:
    """The Prometheus labels of one series (``__name__`` included; empty values dropped).

    Attributes mapping to one label name are joined with ``;`` in the order of their keys;
    ``job``/``instance`` from the resource win over attributes of those names."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for key, value in attributes.items():
        grouped.setdefault(label_name(key), []).append((key, value))
    labels = {label: ";".join(v for _, v in sorted(pairs)) for label, pairs in grouped.items()}
    service = resource.get("service.name")
    if service:
        namespace = resource.get("service.namespace")
        labels["job"] = f"{namespace}/{service}" if namespace else service
        labels["instance"] = resource.get("service.instance.id", "")
    labels["__name__"] = name
    return {k: v for k, v in labels.items() if v != ""}


__all__ = ["label_name", "metadata_unit", "metric_name", "series_labels"]
