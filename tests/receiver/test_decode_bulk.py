"""The bulk decoding paths (request bytes walked, points read with numpy) agree with upb.

Each request is decoded twice by two decoders: one from its bytes (``decode_bytes``, the gRPC
path) and one from the parsed message (``decode``, the path every odd request falls back to).
The first pass fills the series caches; a second one finds them not yet committed (their
rows must come along again); the series are then marked committed, so the next passes take
the bulk paths for every cached series.  Both passes must give the same rows,
series, rejections and messages.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.receiver.anyvalue import Attributes, typed
from otel_hms.receiver.decode import Decoder
from otel_hms.receiver.payload import parse_protobuf
from otel_hms.storage.arrow_batches import points_table
from otel_hms.storage.batch import DecodedBatch

T = 1_767_225_600 * 10**9
ATTRS = [
    [KeyValue(key="route", value=AnyValue(string_value=f"/r{i}")),
     KeyValue(key="code", value=AnyValue(int_value=200 + i))]
    for i in range(4)
] + [[]]


def rows(batch: DecodedBatch) -> dict[str, list[tuple[Any, ...]]]:
    """Every decoded point as a tuple, NaN made comparable, in a fixed order."""
    out = {}
    for kind in sorted({*batch.columns, *batch.tables}):
        table = points_table(kind, batch.columns.get(kind, {}), batch.tables.get(kind, ()))
        if table is None:
            continue
        out[kind] = sorted((tuple(_comparable(v) for v in row.values())
                            for row in table.to_pylist()), key=repr)
    return out


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):  # an exemplar: its value may be NaN too
        return {k: _comparable(v) for k, v in value.items()}
    return value


def summary(batch: DecodedBatch) -> tuple[Any, ...]:
    # Which five messages are kept depends on the order problems are met in.
    errors = sorted(batch.errors) if batch.problems <= len(batch.errors) else len(batch.errors)
    return (rows(batch), sorted(batch.series), batch.accepted, batch.rejected,
            batch.problems, errors)


BULK_ROWS: list[int] = []  # points read in bulk by the last ``decode_both``'s third pass


def decode_both(body: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(bytes path, message path) of the warm pass; asserts the cold passes agree too."""
    by_bytes, by_message = Decoder(), Decoder()
    cold_bytes = by_bytes.decode_bytes(body)
    cold_message = by_message.decode(parse_protobuf(body))
    assert summary(cold_bytes) == summary(cold_message)
    # not committed yet: the series rows come again, now from the bulk path's slots
    assert summary(by_bytes.decode_bytes(body)) == summary(
        by_message.decode(parse_protobuf(body)))
    by_bytes.known.update(cold_bytes.series)
    by_message.known.update(cold_message.series)
    warm = by_bytes.decode_bytes(body), by_message.decode(parse_protobuf(body))
    # a third pass reads every cached series in bulk
    third = by_bytes.decode_bytes(body)
    assert summary(third) == summary(warm[0])
    BULK_ROWS[:] = [sum(t.num_rows for ts in third.tables.values() for t in ts)]
    return summary(warm[0]), summary(warm[1])


def request(*metrics: metrics_pb2.Metric) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    rm.scope_metrics.add(metrics=metrics)
    return req.SerializeToString()


def number(i: int, t: int, value: float | int, start: int = 0, flags: int = 0,
           exemplar: bool = False) -> metrics_pb2.NumberDataPoint:
    dp = metrics_pb2.NumberDataPoint(attributes=ATTRS[i % len(ATTRS)], time_unix_nano=t,
                                     start_time_unix_nano=start, flags=flags)
    if isinstance(value, int):
        dp.as_int = value
    else:
        dp.as_double = value
    if exemplar:
        dp.exemplars.add(as_double=1.5, time_unix_nano=t, span_id=b"\x01" * 8)
    return dp


def histogram(i: int, t: int, buckets: list[int], bounds: list[float], start: int = 0,
              sum_: float | None = None, min_: float | None = None,
              max_: float | None = None, flags: int = 0) -> metrics_pb2.HistogramDataPoint:
    dp = metrics_pb2.HistogramDataPoint(attributes=ATTRS[i % len(ATTRS)], time_unix_nano=t,
                                        start_time_unix_nano=start, count=sum(buckets) % 2**64,
                                        bucket_counts=buckets, explicit_bounds=bounds,
                                        flags=flags)
    for name, value in (("sum", sum_), ("min", min_), ("max", max_)):
        if value is not None:
            setattr(dp, name, value)
    return dp


def test_every_layout_of_number_points() -> None:
    points = [number(0, T, 1.5, start=T - 10), number(1, T, -7), number(2, T + 1, 2**62),
              number(3, T, math.nan, flags=1), number(4, T, 0.0), number(0, T + 5, 3.25),
              number(1, 0, 5), number(2, 2**64 - 1, 5), number(3, T, 1, start=2**63),
              number(0, T + 9, 4.0, exemplar=True), number(1, T + 2, -0.0, start=1)]
    body = request(
        metrics_pb2.Metric(name="g", gauge=metrics_pb2.Gauge(data_points=points)),
        metrics_pb2.Metric(name="s", sum=metrics_pb2.Sum(data_points=points,
                                                          aggregation_temporality=2,
                                                          is_monotonic=True)))
    fast, slow = decode_both(body)
    assert fast == slow
    assert fast[2] == 16 and fast[3] == 6  # times of 0 and past int64, start past int64
    assert BULK_ROWS == [14]  # all but the exemplar points


def test_every_layout_of_histogram_points() -> None:
    bounds = [0.1, 1.0, 10.0]
    points = [histogram(0, T, [1, 2, 3, 4], bounds, start=T - 5, sum_=4.5, min_=0.01,
                        max_=20.0),
              histogram(1, T, [0, 0, 0, 1], bounds, start=T - 5, sum_=0.0, min_=0.0,
                        max_=0.0),
              histogram(2, T, [5, 0, 0, 0], bounds, start=T - 5, sum_=1.0, min_=0.5,
                        max_=0.5, flags=1),
              histogram(3, T, [1, 1, 1], [1.0, math.nan], start=T - 5, sum_=1.0, min_=0.5,
                        max_=0.5),
              histogram(4, T, [1, 1, 1, 1], [3.0, 2.0, 1.0], start=T - 5, sum_=1.0,
                        min_=0.5, max_=0.5),
              histogram(0, T + 1, [], []), histogram(1, 0, [1], []),
              histogram(2, T + 2, [1, 2], [5.0]), histogram(3, T + 3, [1, 2, 3], [5.0])]
    body = request(metrics_pb2.Metric(name="h", histogram=metrics_pb2.Histogram(
        data_points=points, aggregation_temporality=1)))
    fast, slow = decode_both(body)
    assert fast == slow
    assert fast[3] == 4
    assert BULK_ROWS == [2]  # those of the first point's template


def test_changed_temporality_and_unspecified() -> None:
    pts = [number(i, T + i, i) for i in range(4)]
    metrics = [metrics_pb2.Metric(name="s", sum=metrics_pb2.Sum(
        data_points=pts, aggregation_temporality=t, is_monotonic=m))
        for t, m in ((2, True), (1, True), (2, False), (0, False))]
    fast, slow = decode_both(request(*metrics))
    assert fast == slow
    assert fast[2] == 12 and fast[3] == 4


def test_points_not_in_canonical_form() -> None:
    """Fields repeated or out of order: the last one wins, as upb reads them."""
    dp = number(0, T, 2.5, start=T - 1)
    canonical = dp.SerializeToString()
    later_time = metrics_pb2.NumberDataPoint(time_unix_nano=T + 99).SerializeToString()
    unknown = b"\xa0\x06\x01"  # field 100, varint 1
    flags = metrics_pb2.NumberDataPoint(flags=1).SerializeToString()
    variants = [canonical, canonical + later_time, canonical + unknown, later_time + canonical,
                canonical + flags, flags + canonical, canonical + canonical]
    for variant in variants:
        gauge = b"".join(b"\x0a" + _varint(len(v)) + v for v in (canonical, variant))
        metric = (metrics_pb2.Metric(name="g").SerializeToString()
                  + b"\x2a" + _varint(len(gauge)) + gauge)
        fast, slow = decode_both(_replace_metric(request(), metric))
        assert fast == slow, variant


def _replace_metric(body: bytes, metric: bytes) -> bytes:
    """``body`` (one resource, one scope, one metric) with the metric's bytes as given."""
    req = ExportMetricsServiceRequest.FromString(body)
    req.resource_metrics[0].scope_metrics[0].ClearField("metrics")
    sm = req.resource_metrics[0].scope_metrics[0].SerializeToString()
    sm += b"\x12" + _varint(len(metric)) + metric
    rm = req.resource_metrics[0]
    rm.ClearField("scope_metrics")
    rm_bytes = rm.SerializeToString() + b"\x12" + _varint(len(sm)) + sm
    return b"\x0a" + _varint(len(rm_bytes)) + rm_bytes


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_requests_the_walk_leaves_to_upb() -> None:
    pts = [number(i, T + i, float(i)) for i in range(3)]
    body = request(metrics_pb2.Metric(name="g", gauge=metrics_pb2.Gauge(data_points=pts)))
    resource = b"\x0a\x00"  # an empty Resource, repeated: upb merges the two
    for odd in (body + b"\xa0\x06\x01",  # unknown request field
                b"\x0a" + _varint(len(body[2:]) + 2) + body[2:] + resource,
                body[:-3]):  # truncated: both fail the same way below
        try:
            expected: Any = decode_both(odd)
        except Exception as exc:  # noqa: BLE001 - compared with the bytes path's error
            expected = type(exc).__name__
            try:
                Decoder().decode_bytes(odd)
            except Exception as again:  # noqa: BLE001
                assert type(again).__name__ == expected
            else:
                raise AssertionError("the bytes path accepted what upb refused") from exc
            continue
        assert expected[0] == expected[1]


attrs_index = st.integers(0, len(ATTRS) - 1)
times = st.one_of(st.just(T), st.integers(0, 2**64 - 1), st.integers(T, T + 10**12))
doubles = st.floats(allow_nan=True, allow_infinity=True)
ints = st.integers(-(2**63), 2**63 - 1)
number_points = st.builds(
    number, attrs_index, times, st.one_of(doubles, ints),
    start=st.one_of(st.just(0), times), flags=st.sampled_from([0, 1, 2, 300]),
    exemplar=st.booleans())
histogram_points = st.builds(
    histogram, attrs_index, times, st.lists(st.integers(0, 2**64 - 1), max_size=4),
    st.lists(st.floats(allow_infinity=False), max_size=3),
    start=st.one_of(st.just(0), times), sum_=st.one_of(st.none(), doubles),
    min_=st.one_of(st.none(), doubles), max_=st.one_of(st.none(), doubles),
    flags=st.sampled_from([0, 1, 200]))


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(number_points, max_size=12), st.lists(histogram_points, max_size=8))
def test_random_points_agree(numbers: list[metrics_pb2.NumberDataPoint],
                             histograms: list[metrics_pb2.HistogramDataPoint]) -> None:
    body = request(
        metrics_pb2.Metric(name="g", gauge=metrics_pb2.Gauge(data_points=numbers)),
        metrics_pb2.Metric(name="s", sum=metrics_pb2.Sum(data_points=numbers,
                                                          aggregation_temporality=1)),
        metrics_pb2.Metric(name="h", histogram=metrics_pb2.Histogram(
            data_points=histograms, aggregation_temporality=2)))
    fast, slow = decode_both(body)
    assert fast == slow


any_values = st.recursive(
    st.one_of(st.builds(lambda v: AnyValue(string_value=v), st.text()),
              st.builds(lambda v: AnyValue(int_value=v), ints),
              st.builds(lambda v: AnyValue(double_value=v), doubles),
              st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
              st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=8)),
              st.just(AnyValue())),
    lambda inner: st.builds(lambda vs: AnyValue(array_value={"values": vs}),
                            st.lists(inner, max_size=3)),
    max_leaves=6)


@settings(max_examples=80, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "é", "", "a\u2028", "z"]), any_values),
                max_size=6))
def test_attribute_json_is_what_json_dumps_writes(pairs: list[tuple[str, AnyValue]]) -> None:
    """Series ids hash this text: it must not change with how it is put together."""
    kvs = [KeyValue(key=k, value=v) for k, v in pairs]
    expected = json.dumps({kv.key: typed(kv.value) for kv in kvs}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)
    assert Attributes(kvs).typed_json == expected
    assert Attributes(kvs).typed_json == expected  # from the cache
