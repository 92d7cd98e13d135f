"""End to end with the real OpenTelemetry Python SDK: MeterProvider -> OTLP exporter -> server.

Every test runs twice, once through ``opentelemetry-exporter-otlp-proto-grpc`` and once through
``opentelemetry-exporter-otlp-proto-http``, against an ``otel-hms serve`` subprocess, and reads
back exact values through the SQL endpoint.  Readers use ``PeriodicExportingMetricReader`` with
an infinite interval: the SDK then starts no timer thread and exports exactly once per
``force_flush``, so a test decides how many points the server gets.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc import Compression as GrpcCompression
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from conftest import ServerProcess, StartServer, wait_until

SERVICE = "sdk-python-e2e"
SCOPE, SCOPE_VERSION = "otel_hms.tests.sdk_python", "1.2.3"
DELTA, CUMULATIVE = 1, 2


class Sdk:
    """Builds MeterProviders that export over one protocol, and shuts them down.

    The server is started on first use, so a test can point the helper at a server it started
    itself (``use``) without starting the default one too.
    """

    def __init__(self, start_server: StartServer, protocol: str,
                 caplog: pytest.LogCaptureFixture) -> None:
        self._start_server = start_server
        self._server: ServerProcess | None = None
        self.protocol = protocol
        self.caplog = caplog
        self.providers: list[MeterProvider] = []

    @property
    def server(self) -> ServerProcess:
        if self._server is None:
            self._server = self._start_server()
        return self._server

    def use(self, server: ServerProcess) -> None:
        self._server = server

    def name(self, base: str) -> str:
        """A metric name unique to the test and the protocol."""
        return f"sdk_py.{base}.{self.protocol}"

    def exporter(self, compression: str | None = None, **kwargs: Any) -> MetricExporter:
        if self.protocol == "grpc":
            return GrpcMetricExporter(
                endpoint=self.server.grpc, insecure=True, timeout=10,
                compression=GrpcCompression[compression] if compression else None, **kwargs)
        return HttpMetricExporter(
            endpoint=self.server.http_url, timeout=10,
            compression=HttpCompression[compression] if compression else None, **kwargs)

    def provider(self, views: Iterable[View] = (), service: str = SERVICE,
                 exporter: dict[str, Any] | None = None, **kwargs: Any) -> MeterProvider:
        """A provider whose one reader exports only when flushed."""
        reader = PeriodicExportingMetricReader(self.exporter(**(exporter or {})),
                                               export_interval_millis=math.inf)
        resource = Resource.create({"service.name": service, "deployment.environment": "test",
                                    "host.cores": 2})
        provider = MeterProvider(metric_readers=[reader], resource=resource, views=list(views),
                                 **kwargs)
        self.providers.append(provider)
        return provider

    def sdk_problems(self) -> list[str]:
        """What the SDK logged at WARNING or above (failed, retried or partial exports)."""
        return [f"{r.name}: {r.getMessage()}" for r in self.caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("opentelemetry")]

    def flush(self, provider: MeterProvider) -> None:
        """Export now; the SDK must have logged no failed or partial export."""
        assert provider.force_flush(timeout_millis=10_000)
        problems = self.sdk_problems()
        assert not problems, "the SDK reported export problems:\n" + "\n".join(problems)

    def rows(self, query: str, count: int = 1) -> list[dict[str, Any]]:
        """Poll the SQL endpoint until ``query`` returns ``count`` rows; returns them."""
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            found[:] = self.server.sql(query)
            return len(found) >= count

        wait_until(enough, timeout=10, message=f"{count} rows from: {query}")
        assert len(found) == count, found
        return found

    def shutdown(self) -> None:
        for provider in self.providers:
            provider.shutdown(timeout_millis=5_000)


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_* variables of the calling shell must not change what the SDK sends."""
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)


@pytest.fixture(params=["grpc", "http"])
def sdk(request: pytest.FixtureRequest, start_server: StartServer,
        caplog: pytest.LogCaptureFixture) -> Iterator[Sdk]:
    caplog.set_level(logging.WARNING)
    helper = Sdk(start_server, request.param, caplog)
    try:
        yield helper
    finally:
        helper.shutdown()


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_counter_of_ints_is_exact_and_keeps_int_type(sdk: Sdk) -> None:
    provider = sdk.provider()
    meter = provider.get_meter(SCOPE, SCOPE_VERSION)
    name = sdk.name("requests")
    counter = meter.create_counter(name, unit="{request}", description="Requests served.")
    before = time.time_ns()
    counter.add(3, {"route": "/a", "code": 200, "cached": False})
    counter.add(4, {"route": "/a", "code": 200, "cached": False})
    counter.add(5, {"route": "/b", "code": 404, "cached": True})
    sdk.flush(provider)
    after = time.time_ns()

    rows = sdk.rows(f"""
        SELECT Attributes['route'] AS route, Value, ValueInt, typeof(ValueInt) AS int_type,
               AggregationTemporality, IsMonotonic, MetricUnit, MetricDescription, ServiceName,
               ScopeName, ScopeVersion, Attributes, AttributesTyped, ResourceAttributes,
               StartTimeUnixNano, TimeUnixNano, Flags
        FROM otel_metrics_sum WHERE MetricName = {quoted(name)} ORDER BY route""", count=2)
    a, b = rows
    assert (a["route"], a["Value"], a["ValueInt"]) == ("/a", 7.0, 7)
    assert (b["route"], b["Value"], b["ValueInt"]) == ("/b", 5.0, 5)
    for row in rows:
        assert isinstance(row["ValueInt"], int) and row["int_type"] == "BIGINT"
        assert row["AggregationTemporality"] == CUMULATIVE
        assert row["IsMonotonic"] is True
        assert row["MetricUnit"] == "{request}"
        assert row["MetricDescription"] == "Requests served."
        assert row["ServiceName"] == SERVICE
        assert (row["ScopeName"], row["ScopeVersion"]) == (SCOPE, SCOPE_VERSION)
        assert row["Flags"] == 0
        resource = row["ResourceAttributes"]
        assert resource["service.name"] == SERVICE
        assert resource["deployment.environment"] == "test"
        assert resource["host.cores"] == "2"
        assert resource["telemetry.sdk.language"] == "python"
        assert resource["telemetry.sdk.name"] == "opentelemetry"
        assert before - 60 * 10**9 < row["StartTimeUnixNano"] <= row["TimeUnixNano"]
        assert before <= row["TimeUnixNano"] <= after
    # Non-string attributes: the string map renders them, the typed JSON keeps their type.
    assert a["Attributes"] == {"route": "/a", "code": "200", "cached": "false"}
    assert json.loads(a["AttributesTyped"]) == {
        "route": {"stringValue": "/a"}, "code": {"intValue": 200},
        "cached": {"boolValue": False}}
    assert json.loads(b["AttributesTyped"])["code"] == {"intValue": 404}


def test_counter_of_doubles_has_no_int_value(sdk: Sdk) -> None:
    provider = sdk.provider()
    name = sdk.name("bytes")
    counter = provider.get_meter(SCOPE).create_counter(name, unit="By")
    counter.add(0.5)
    counter.add(0.25)
    counter.add(1.125)
    sdk.flush(provider)
    [row] = sdk.rows(f"SELECT Value, ValueInt, Attributes FROM otel_metrics_sum "
                     f"WHERE MetricName = {quoted(name)}")
    assert row == {"Value": 1.875, "ValueInt": None, "Attributes": {}}


def test_cumulative_counter_keeps_its_start_time_across_exports(sdk: Sdk) -> None:
    provider = sdk.provider()
    name = sdk.name("cumulative")
    counter = provider.get_meter(SCOPE).create_counter(name)
    counter.add(3)
    sdk.flush(provider)
    sdk.rows(f"SELECT 1 FROM otel_metrics_sum WHERE MetricName = {quoted(name)}")
    counter.add(4)
    sdk.flush(provider)
    first, second = sdk.rows(f"""
        SELECT ValueInt, StartTimeUnixNano, TimeUnixNano, AggregationTemporality, SeriesId
        FROM otel_metrics_sum WHERE MetricName = {quoted(name)} ORDER BY TimeUnixNano""",
                             count=2)
    assert (first["ValueInt"], second["ValueInt"]) == (3, 7)
    assert first["StartTimeUnixNano"] == second["StartTimeUnixNano"]
    assert first["TimeUnixNano"] < second["TimeUnixNano"]
    assert first["SeriesId"] == second["SeriesId"]
    assert first["AggregationTemporality"] == second["AggregationTemporality"] == CUMULATIVE
    assert sdk.server.scalar(f"SELECT count(*) FROM otel_series "
                             f"WHERE MetricName = {quoted(name)}") == 1


def test_up_down_counter_goes_negative(sdk: Sdk) -> None:
    provider = sdk.provider()
    name = sdk.name("queue_depth")
    gauge_like = provider.get_meter(SCOPE).create_up_down_counter(name)
    gauge_like.add(5, {"queue": "q1"})
    gauge_like.add(-8, {"queue": "q1"})
    gauge_like.add(2, {"queue": "q2"})
    sdk.flush(provider)
    rows = sdk.rows(f"""
        SELECT Attributes['queue'] AS queue, Value, ValueInt, IsMonotonic,
               AggregationTemporality
        FROM otel_metrics_sum WHERE MetricName = {quoted(name)} ORDER BY queue""", count=2)
    assert rows == [
        {"queue": "q1", "Value": -3.0, "ValueInt": -3, "IsMonotonic": False,
         "AggregationTemporality": CUMULATIVE},
        {"queue": "q2", "Value": 2.0, "ValueInt": 2, "IsMonotonic": False,
         "AggregationTemporality": CUMULATIVE},
    ]


def test_explicit_bucket_histogram(sdk: Sdk) -> None:
    name = sdk.name("latency")
    provider = sdk.provider(views=[View(
        instrument_name=name,
        aggregation=ExplicitBucketHistogramAggregation(boundaries=[1.0, 10.0, 100.0]))])
    histogram = provider.get_meter(SCOPE).create_histogram(name, unit="ms")
    # Upper bounds are inclusive: 1 lands in (-inf, 1], 10 in (1, 10].
    for value in (0.5, 1, 5, 10, 50, 500):
        histogram.record(value, {"route": "/h"})
    sdk.flush(provider)
    [row] = sdk.rows(f"""
        SELECT Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality,
               Attributes['route'] AS route, MetricUnit, ServiceName
        FROM otel_metrics_histogram WHERE MetricName = {quoted(name)}""")
    assert row == {
        "Count": 6, "Sum": 566.5, "Min": 0.5, "Max": 500.0,
        "BucketCounts": [2, 2, 1, 1], "ExplicitBounds": [1.0, 10.0, 100.0],
        "AggregationTemporality": CUMULATIVE, "route": "/h", "MetricUnit": "ms",
        "ServiceName": SERVICE,
    }


def test_histogram_default_and_advisory_buckets(sdk: Sdk) -> None:
    provider = sdk.provider()
    meter = provider.get_meter(SCOPE)
    default_name, advised_name = sdk.name("default_buckets"), sdk.name("advised_buckets")
    default = meter.create_histogram(default_name)
    advised = meter.create_histogram(advised_name,
                                     explicit_bucket_boundaries_advisory=[0.1, 0.2])
    for count in (7, 7, 3000):
        default.record(count)
    for seconds in (0.05, 0.15, 0.15, 0.3):
        advised.record(seconds)
    sdk.flush(provider)
    rows = sdk.rows(f"""
        SELECT MetricName, Count, Sum, Min, Max, BucketCounts, ExplicitBounds
        FROM otel_metrics_histogram
        WHERE MetricName IN ({quoted(default_name)}, {quoted(advised_name)})
        ORDER BY MetricName = {quoted(advised_name)}""", count=2)
    default_bounds = [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0,
                      2500.0, 5000.0, 7500.0, 10000.0]
    expected_default = [0] * 16
    expected_default[2] = 2  # 7 in (5, 10]
    expected_default[12] = 1  # 3000 in (2500, 5000]
    assert rows[0] == {"MetricName": default_name, "Count": 3, "Sum": 3014.0, "Min": 7.0,
                       "Max": 3000.0, "BucketCounts": expected_default,
                       "ExplicitBounds": default_bounds}
    assert rows[1] == {"MetricName": advised_name, "Count": 4, "Sum": 0.05 + 0.15 + 0.15 + 0.3,
                       "Min": 0.05, "Max": 0.3, "BucketCounts": [1, 2, 1],
                       "ExplicitBounds": [0.1, 0.2]}


def _exp_bucket_index(value: float, scale: int) -> int:
    """The data model's bucket of ``abs(value)``: index i covers (base**i, base**(i+1)]."""
    mantissa, exponent = math.frexp(abs(value))
    if mantissa == 0.5:  # an exact power of two is the upper bound of its bucket
        power = exponent - 1
        return (power << scale) - 1 if scale >= 0 else (power - 1) >> -scale
    return math.ceil(math.log2(abs(value)) * 2.0 ** scale) - 1


def _largest_fitting_scale(values: list[float], max_size: int) -> int:
    """The scale an exponential histogram of ``values`` has: the finest that fits both ranges."""
    for scale in range(20, -11, -1):
        fits = True
        for side in ([v for v in values if v > 0], [v for v in values if v < 0]):
            indices = [_exp_bucket_index(v, scale) for v in side]
            if indices and max(indices) - min(indices) + 1 > max_size:
                fits = False
        if fits:
            return scale
    raise AssertionError("no scale fits")


def _expected_buckets(values: list[float], scale: int, offset: int, size: int) -> list[int]:
    counts = [0] * size
    for value in values:
        counts[_exp_bucket_index(value, scale) - offset] += 1
    return counts


def test_exponential_histogram(sdk: Sdk) -> None:
    name = sdk.name("exp_latency")
    provider = sdk.provider(views=[View(instrument_name=name,
                                        aggregation=ExponentialBucketHistogramAggregation())])
    histogram = provider.get_meter(SCOPE).create_histogram(name, unit="s")
    values = [1.0, 2.0, 4.0, 3.0, 0.0]
    for value in values:
        histogram.record(value, {"op": "read"})
    sdk.flush(provider)
    [row] = sdk.rows(f"""
        SELECT Count, Sum, Min, Max, Scale, ZeroCount, ZeroThreshold, PositiveOffset,
               PositiveBucketCounts, NegativeOffset, NegativeBucketCounts,
               AggregationTemporality, Attributes, ServiceName
        FROM otel_metrics_exp_histogram WHERE MetricName = {quoted(name)}""")
    assert (row["Count"], row["Sum"], row["Min"], row["Max"]) == (5, 10.0, 0.0, 4.0)
    assert (row["ZeroCount"], row["ZeroThreshold"]) == (1, 0.0)
    # The SDK sends an empty negative range as one zero bucket.
    assert sum(row["NegativeBucketCounts"]) == 0
    assert row["AggregationTemporality"] == CUMULATIVE
    assert row["Attributes"] == {"op": "read"} and row["ServiceName"] == SERVICE
    counts = row["PositiveBucketCounts"]
    assert sum(counts) + row["ZeroCount"] == row["Count"]
    # 1..4 spans two octaves; the largest scale that fits them in 160 buckets is 6
    # (indices -1..127: 129 buckets; scale 7 would need 257).  The SDK pads the range with
    # empty buckets up to its size, so only the occupied ones are compared.
    assert row["Scale"] == 6
    assert row["PositiveOffset"] == -1
    assert 129 <= len(counts) <= 160
    assert _largest_fitting_scale(values, 160) == 6
    assert counts == _expected_buckets([v for v in values if v > 0], row["Scale"],
                                       row["PositiveOffset"], len(counts))
    assert [i for i, c in enumerate(counts) if c] == [0, 64, 102, 128]


def test_exponential_histogram_negative_values_and_negative_scale(sdk: Sdk) -> None:
    name = sdk.name("exp_wide")
    provider = sdk.provider(views=[View(
        instrument_name=name, aggregation=ExponentialBucketHistogramAggregation(max_size=4))])
    # Histograms take no negative values; an up-down counter aggregated as a histogram does.
    instrument = provider.get_meter(SCOPE).create_up_down_counter(name)
    values = [-1.0, -8.0, -3.0, 0.001, 1e6, 2.0, 0.0, 0.0]
    for value in values:
        instrument.add(value)
    sdk.flush(provider)
    [row] = sdk.rows(f"""
        SELECT Count, Sum, Min, Max, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts,
               NegativeOffset, NegativeBucketCounts
        FROM otel_metrics_exp_histogram WHERE MetricName = {quoted(name)}""")
    assert (row["Count"], row["Min"], row["Max"], row["ZeroCount"]) == (8, -8.0, 1e6, 2)
    assert row["Sum"] == pytest.approx(sum(values), rel=1e-15)
    # 0.001 .. 1e6 spans 30 octaves: in 4 buckets that takes scale -4 (16 octaves a bucket).
    scale = _largest_fitting_scale(values, 4)
    assert scale == -4
    assert row["Scale"] == scale
    positive, negative = row["PositiveBucketCounts"], row["NegativeBucketCounts"]
    assert len(positive) <= 4 and len(negative) <= 4
    assert positive == _expected_buckets([v for v in values if v > 0], scale,
                                         row["PositiveOffset"], len(positive))
    assert negative == _expected_buckets([v for v in values if v < 0], scale,
                                         row["NegativeOffset"], len(negative))
    assert sum(positive) + sum(negative) + row["ZeroCount"] == row["Count"]


def test_observable_gauge_and_counters(sdk: Sdk) -> None:
    provider = sdk.provider()
    meter = provider.get_meter(SCOPE)
    gauge_name = sdk.name("temperature")
    counter_name = sdk.name("cpu_time")
    updown_name = sdk.name("threads")
    calls: list[str] = []

    def temperatures(options: CallbackOptions) -> Iterable[Observation]:
        calls.append("gauge")
        return [Observation(21.5, {"room": "a"}), Observation(-3, {"room": "b"})]

    def cpu_time(options: CallbackOptions) -> Iterable[Observation]:
        calls.append("counter")
        return [Observation(42, {"cpu": "0"})]

    def threads(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(-2.5)]

    meter.create_observable_gauge(gauge_name, [temperatures], unit="Cel")
    meter.create_observable_counter(counter_name, [cpu_time], unit="s")
    meter.create_observable_up_down_counter(updown_name, [threads])
    sdk.flush(provider)
    assert sorted(calls) == ["counter", "gauge"]

    gauges = sdk.rows(f"""
        SELECT Attributes['room'] AS room, Value, ValueInt, MetricUnit, ServiceName
        FROM otel_metrics_gauge WHERE MetricName = {quoted(gauge_name)} ORDER BY room""",
                      count=2)
    assert gauges == [
        {"room": "a", "Value": 21.5, "ValueInt": None, "MetricUnit": "Cel",
         "ServiceName": SERVICE},
        {"room": "b", "Value": -3.0, "ValueInt": -3, "MetricUnit": "Cel",
         "ServiceName": SERVICE},
    ]
    [counter] = sdk.rows(f"""
        SELECT Value, ValueInt, IsMonotonic, AggregationTemporality, Attributes
        FROM otel_metrics_sum WHERE MetricName = {quoted(counter_name)}""")
    assert counter == {"Value": 42.0, "ValueInt": 42, "IsMonotonic": True,
                       "AggregationTemporality": CUMULATIVE, "Attributes": {"cpu": "0"}}
    [updown] = sdk.rows(f"""
        SELECT Value, ValueInt, IsMonotonic, AggregationTemporality
        FROM otel_metrics_sum WHERE MetricName = {quoted(updown_name)}""")
    assert updown == {"Value": -2.5, "ValueInt": None, "IsMonotonic": False,
                      "AggregationTemporality": CUMULATIVE}
    # The gauge is not in the sum table and vice versa.
    assert sdk.server.scalar(f"SELECT count(*) FROM otel_metrics_sum "
                             f"WHERE MetricName = {quoted(gauge_name)}") == 0


def test_delta_temporality_from_exporter_preference(sdk: Sdk) -> None:
    delta = AggregationTemporality.DELTA
    provider = sdk.provider(exporter={"preferred_temporality": {
        Counter: delta, Histogram: delta, ObservableCounter: delta,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    }})
    meter = provider.get_meter(SCOPE)
    counter_name, histogram_name = sdk.name("delta_requests"), sdk.name("delta_sizes")
    updown_name = sdk.name("delta_updown")
    counter = meter.create_counter(counter_name)
    histogram = meter.create_histogram(histogram_name)
    updown = meter.create_up_down_counter(updown_name)

    counter.add(3)
    histogram.record(2)
    histogram.record(4)
    updown.add(1)
    sdk.flush(provider)
    sums = f"""
        SELECT MetricName, ValueInt, AggregationTemporality, IsMonotonic,
               StartTimeUnixNano, TimeUnixNano
        FROM otel_metrics_sum WHERE MetricName IN ({quoted(counter_name)},
                                                   {quoted(updown_name)})
        ORDER BY MetricName, TimeUnixNano"""
    sdk.rows(sums, count=2)
    counter.add(4)
    histogram.record(8)
    updown.add(1)
    sdk.flush(provider)

    c1, c2, u1, u2 = sdk.rows(sums, count=4)
    assert [r["MetricName"] for r in (c1, c2, u1, u2)] == [counter_name] * 2 + [updown_name] * 2
    # Delta points count only what happened since the previous export, and each starts
    # where the previous one ended.
    assert (c1["ValueInt"], c2["ValueInt"]) == (3, 4)
    assert c1["AggregationTemporality"] == c2["AggregationTemporality"] == DELTA
    assert c1["IsMonotonic"] is True
    assert c2["StartTimeUnixNano"] == c1["TimeUnixNano"]
    # The up-down counter was asked for cumulative: it accumulates, from one start time.
    assert (u1["ValueInt"], u2["ValueInt"]) == (1, 2)
    assert u1["AggregationTemporality"] == u2["AggregationTemporality"] == CUMULATIVE
    assert u1["StartTimeUnixNano"] == u2["StartTimeUnixNano"]

    h1, h2 = sdk.rows(f"""
        SELECT Count, Sum, Min, Max, AggregationTemporality, StartTimeUnixNano, TimeUnixNano
        FROM otel_metrics_histogram WHERE MetricName = {quoted(histogram_name)}
        ORDER BY TimeUnixNano""", count=2)
    assert (h1["Count"], h1["Sum"], h1["Min"], h1["Max"]) == (2, 6.0, 2.0, 4.0)
    assert (h2["Count"], h2["Sum"], h2["Min"], h2["Max"]) == (1, 8.0, 8.0, 8.0)
    assert h1["AggregationTemporality"] == h2["AggregationTemporality"] == DELTA
    assert h2["StartTimeUnixNano"] == h1["TimeUnixNano"]


def test_exemplars_carry_the_active_span(sdk: Sdk) -> None:
    # The default filter keeps exemplars of measurements made inside a sampled span only.
    provider = sdk.provider()
    name = sdk.name("exemplar_requests")
    counter = provider.get_meter(SCOPE).create_counter(name)
    tracer_provider = TracerProvider()
    try:
        with tracer_provider.get_tracer(SCOPE).start_as_current_span("work") as span:
            counter.add(9, {"route": "/x"})
        context = span.get_span_context()
    finally:
        tracer_provider.shutdown()
    sdk.flush(provider)
    [row] = sdk.rows(f"SELECT ValueInt, Exemplars, SeriesId FROM otel_metrics_sum "
                     f"WHERE MetricName = {quoted(name)}")
    assert row["ValueInt"] == 9
    [exemplar] = row["Exemplars"]
    assert exemplar["TraceId"] == format(context.trace_id, "032x")
    assert exemplar["SpanId"] == format(context.span_id, "016x")
    assert (exemplar["Value"], exemplar["ValueInt"]) == (9.0, 9)

    # Outside a span the next export carries no exemplar; the series is the same one.
    counter.add(1, {"route": "/x"})
    sdk.flush(provider)
    first, second = sdk.rows(f"""
        SELECT ValueInt, Exemplars, SeriesId FROM otel_metrics_sum
        WHERE MetricName = {quoted(name)} ORDER BY TimeUnixNano""", count=2)
    assert first == row
    assert second["ValueInt"] == 10
    assert not second["Exemplars"]
    assert second["SeriesId"] == first["SeriesId"]


def test_exemplars_of_every_measurement(sdk: Sdk) -> None:
    provider = sdk.provider(exemplar_filter=AlwaysOnExemplarFilter())
    name = sdk.name("exemplar_all")
    histogram = provider.get_meter(SCOPE).create_histogram(name)
    histogram.record(3.5, {"route": "/y"})
    sdk.flush(provider)
    [row] = sdk.rows(f"SELECT Count, Exemplars FROM otel_metrics_histogram "
                     f"WHERE MetricName = {quoted(name)}")
    assert row["Count"] == 1
    [exemplar] = row["Exemplars"]
    assert (exemplar["Value"], exemplar["ValueInt"]) == (3.5, None)
    assert exemplar["TraceId"] is None and exemplar["SpanId"] is None
    assert exemplar["TimeUnix"] is not None


@pytest.mark.parametrize("compression", ["Gzip", "Deflate"])
def test_compressed_exports(sdk: Sdk, compression: str) -> None:
    provider = sdk.provider(exporter={"compression": compression})
    name = sdk.name(f"compressed_{compression.lower()}")
    counter = provider.get_meter(SCOPE).create_counter(name)
    counter.add(11, {"payload": "x" * 2000})  # large enough to be worth compressing
    sdk.flush(provider)
    [row] = sdk.rows(f"SELECT ValueInt, length(Attributes['payload']) AS n "
                     f"FROM otel_metrics_sum WHERE MetricName = {quoted(name)}")
    assert row == {"ValueInt": 11, "n": 2000}


def test_bearer_token(sdk: Sdk, start_server: StartServer, tmp_path: Path) -> None:
    token = "s3cret-token"
    server = start_server("--auth-token", token, db=tmp_path / "auth.duckdb")
    server.token = token
    sdk.use(server)
    name = sdk.name("authorized")
    good = sdk.provider(exporter={"headers": {"authorization": f"Bearer {token}"}})
    bad = sdk.provider(exporter={"headers": {"authorization": "Bearer wrong"}})
    good.get_meter(SCOPE).create_counter(name).add(1, {"who": "good"})
    bad.get_meter(SCOPE).create_counter(name).add(1, {"who": "bad"})
    sdk.flush(good)
    [row] = sdk.rows(f"SELECT Attributes['who'] AS who FROM otel_metrics_sum "
                     f"WHERE MetricName = {quoted(name)}")
    assert row == {"who": "good"}

    # A wrong token is refused (not retried): the SDK logs the failure, nothing is stored.
    started = time.monotonic()
    bad.force_flush(timeout_millis=10_000)
    assert time.monotonic() - started < 5, "a refused export must not be retried"
    problems = sdk.sdk_problems()
    assert problems, "the SDK did not report the refused export"
    assert any("401" in p or "UNAUTHENTICATED" in p or "Unauthorized" in p
               for p in problems), problems
    assert server.scalar(f"SELECT count(*) FROM otel_metrics_sum "
                         f"WHERE MetricName = {quoted(name)}") == 1


def test_many_series_split_over_several_requests(sdk: Sdk) -> None:
    provider = sdk.provider(exporter={"max_export_batch_size": 400})
    name = sdk.name("fanout")
    counter = provider.get_meter(SCOPE).create_counter(name)
    series = 1500
    for i in range(series):
        counter.add(i, {"shard": i, "parity": "even" if i % 2 == 0 else "odd"})
        counter.add(1, {"shard": i, "parity": "even" if i % 2 == 0 else "odd"})
    sdk.flush(provider)
    query = f"""
        SELECT count(*) AS points, count(DISTINCT SeriesId) AS series, sum(ValueInt) AS total,
               count(*) FILTER (WHERE Attributes['parity'] = 'odd') AS odd,
               min(ValueInt) AS low, max(ValueInt) AS high
        FROM otel_metrics_sum WHERE MetricName = {quoted(name)}"""
    wait_until(lambda: sdk.server.scalar(query) == series, timeout=10,
               message=f"{series} points of {name}")
    [row] = sdk.server.sql(query)
    assert row == {"points": series, "series": series,
                   "total": sum(range(series)) + series, "odd": series // 2,
                   "low": 1, "high": series}
    assert sdk.server.scalar(f"SELECT count(*) FROM otel_series "
                             f"WHERE MetricName = {quoted(name)}") == series


def test_attribute_value_types(sdk: Sdk) -> None:
    provider = sdk.provider()
    name = sdk.name("attribute_types")
    gauge = provider.get_meter(SCOPE).create_gauge(name)
    gauge.set(1.5, {
        "text": "Grüße, 世界 'quoted'", "int": -42, "float": 0.25, "bool": True,
        "strings": ["a", "b"], "ints": [1, 2, 3],
    })
    sdk.flush(provider)
    [row] = sdk.rows(f"""
        SELECT Value, Attributes, AttributesTyped, ResourceAttributesTyped,
               Attributes['text'] AS text
        FROM otel_metrics_gauge WHERE MetricName = {quoted(name)}""")
    assert row["Value"] == 1.5
    assert row["text"] == "Grüße, 世界 'quoted'"
    assert row["Attributes"] == {
        "text": "Grüße, 世界 'quoted'", "int": "-42", "float": "0.25", "bool": "true",
        "strings": '["a","b"]', "ints": "[1,2,3]",
    }
    assert json.loads(row["AttributesTyped"]) == {
        "text": {"stringValue": "Grüße, 世界 'quoted'"},
        "int": {"intValue": -42},
        "float": {"doubleValue": 0.25},
        "bool": {"boolValue": True},
        "strings": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
        "ints": {"arrayValue": {"values": [{"intValue": 1}, {"intValue": 2},
                                           {"intValue": 3}]}},
    }
    resource = json.loads(row["ResourceAttributesTyped"])
    assert resource["host.cores"] == {"intValue": 2}
    assert resource["service.name"] == {"stringValue": SERVICE}


def test_same_metric_from_two_services_is_two_series(sdk: Sdk) -> None:
    name = sdk.name("shared_name")
    for service, amount in (("svc-a", 2), ("svc-b", 5)):
        provider = sdk.provider(service=service)
        provider.get_meter(SCOPE).create_counter(name).add(amount, {"route": "/"})
        sdk.flush(provider)
    rows = sdk.rows(f"""
        SELECT ServiceName, ResourceAttributes['service.name'] AS resource_service, ValueInt
        FROM otel_metrics_sum WHERE MetricName = {quoted(name)} ORDER BY ServiceName""",
                    count=2)
    assert rows == [
        {"ServiceName": "svc-a", "resource_service": "svc-a", "ValueInt": 2},
        {"ServiceName": "svc-b", "resource_service": "svc-b", "ValueInt": 5},
    ]
