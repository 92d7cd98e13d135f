"""OTLP names under Prometheus names (design §5, from the OpenTelemetry specification's
Prometheus compatibility section and the Collector's translator)."""

from __future__ import annotations

import pytest

from otel_hms.query.promql.labels import label_name, metadata_unit, metric_name, series_labels


@pytest.mark.parametrize(("name", "unit", "kind", "monotonic", "expected"), [
    ("system.filesystem.usage", "By", "gauge", None, "system_filesystem_usage_bytes"),
    ("http.server.request.duration", "s", "histogram", None,
     "http_server_request_duration_seconds"),
    ("requests_processed_total", "", "sum", True, "requests_processed_total"),
    ("requests_processed_total", "{request}", "sum", True, "requests_processed_total"),
    ("system.memory.utilization", "1", "gauge", None, "system_memory_utilization_ratio"),
    ("system.network.dropped", "{packets}", "sum", True, "system_network_dropped_total"),
    ("x", "m/s", "gauge", None, "x_meters_per_second"),
    ("x", "m/s", "sum", True, "x_meters_per_second_total"),
    ("queue.size", "{messages}", "sum", False, "queue_size"),
    ("foo.total.bar", "", "sum", True, "foo_bar_total"),
    ("http.server.requests", "{request}", "sum", True, "http_server_requests_total"),
    ("bytes.sent", "KiBy", "sum", True, "bytes_sent_kibibytes_total"),
    ("temp", "Cel", "gauge", None, "temp_celsius"),
    ("dur", "ms", "sum", True, "dur_milliseconds_total"),
    ("request_latency_seconds", "s", "histogram", None, "request_latency_seconds"),
    ("satisfaction_score", "1", "gauge", None, "satisfaction_score_ratio"),
    ("active_connections", "{connection}", "sum", False, "active_connections"),
    ("2xx.count", "", "gauge", None, "_2xx_count"),
    ("rate", "{request}/s", "gauge", None, "rate_per_second"),
])
def test_metric_names(name: str, unit: str, kind: str, monotonic: bool | None,
                      expected: str) -> None:
    assert metric_name(name, unit, kind, monotonic) == expected


@pytest.mark.parametrize(("key", "expected"), [
    ("http.route", "http_route"), ("1bad", "key_1bad"), ("_foo", "key_foo"),
    ("__x", "__x"), ("a..b", "a_b"), ("naïve", "na_ve"),
])
def test_label_names(key: str, expected: str) -> None:
    assert label_name(key) == expected


def test_job_and_instance_come_from_the_resource() -> None:
    assert series_labels("up", {"job": "mine", "a.b": "1", "a_b": "2", "empty": ""},
                         {"service.name": "permits", "service.namespace": "gov",
                          "service.instance.id": "i-1"}) == {
        "__name__": "up", "a_b": "1;2", "job": "gov/permits", "instance": "i-1"}
    assert series_labels("up", {"job": "mine"}, {}) == {"__name__": "up", "job": "mine"}
    assert series_labels("up", {}, {"service.name": "permits"}) == {
        "__name__": "up", "job": "permits"}


@pytest.mark.parametrize(("name", "unit", "expected"), [
    ("request_latency_seconds", "s", "seconds"), ("system_memory_usage_bytes", "By", "bytes"),
    ("x_meters_per_second_total", "m/s", "meters_per_second"),
    ("satisfaction_score_ratio", "1", "ratio"), ("http_server_requests_total", "{request}", ""),
    ("queue_size", "{messages}", ""), ("dur_milliseconds_total", "ms", "milliseconds"),
])
def test_metadata_units_are_the_unit_words_the_name_ends_with(name: str, unit: str,
                                                               expected: str) -> None:
    assert metadata_unit(name, unit) == expected
