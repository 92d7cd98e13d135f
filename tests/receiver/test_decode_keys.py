"""The decoder's series cache keys: cut from a point's serialization, exactly its attributes."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.receiver.decode import (
    _EXP_ATTRIBUTES,
    _HISTOGRAM_ATTRIBUTES,
    _NUMBER_ATTRIBUTES,
    _SUMMARY_ATTRIBUTES,
    _attributes_key,
)

from metric_builders import attributes

ATTRS = attributes({"http.route": "/a", "method": "GET", "empty": ""})


def only_attributes(message: type) -> bytes:
    return b"\x00" + message(attributes=ATTRS).SerializeToString()


def test_histogram_key_is_its_attribute_run() -> None:
    dp = metrics_pb2.HistogramDataPoint(
        attributes=ATTRS, start_time_unix_nano=1, time_unix_nano=2, count=3, sum=4.5,
        bucket_counts=[1, 2], explicit_bounds=[1.0], flags=1, min=0.5, max=3.0,
        exemplars=[metrics_pb2.Exemplar(as_double=1.0, time_unix_nano=2, span_id=b"\x4a" * 8)])
    assert _attributes_key(dp, _HISTOGRAM_ATTRIBUTES) == only_attributes(
        metrics_pb2.HistogramDataPoint)


def test_other_kinds() -> None:
    number = metrics_pb2.NumberDataPoint(attributes=ATTRS, time_unix_nano=2, as_int=-5,
                                         exemplars=[metrics_pb2.Exemplar(as_int=3)])
    assert _attributes_key(number, _NUMBER_ATTRIBUTES) == only_attributes(
        metrics_pb2.NumberDataPoint)
    exp = metrics_pb2.ExponentialHistogramDataPoint(
        attributes=ATTRS, time_unix_nano=2, scale=-3, zero_count=1,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=-2,
                                                                   bucket_counts=[1, 300]))
    assert _attributes_key(exp, _EXP_ATTRIBUTES) == only_attributes(
        metrics_pb2.ExponentialHistogramDataPoint)
    summary = metrics_pb2.SummaryDataPoint(attributes=ATTRS, time_unix_nano=2, count=1,
                                           sum=2.0)
    assert _attributes_key(summary, _SUMMARY_ATTRIBUTES) == only_attributes(
        metrics_pb2.SummaryDataPoint)


def test_no_attributes_and_unknown_fields() -> None:
    assert _attributes_key(metrics_pb2.HistogramDataPoint(count=1),
                           _HISTOGRAM_ATTRIBUTES) == b"\x00"
    # field 100 (a two-byte tag) from a newer sender: the key falls back to the KeyValues
    raw = metrics_pb2.HistogramDataPoint(attributes=ATTRS, count=1).SerializeToString()
    dp = metrics_pb2.HistogramDataPoint.FromString(raw + b"\xa0\x06\x01")
    key = _attributes_key(dp, _HISTOGRAM_ATTRIBUTES)
    assert key.startswith(b"\x01")
    assert key != _attributes_key(metrics_pb2.HistogramDataPoint(count=1),
                                  _HISTOGRAM_ATTRIBUTES)


def test_keys_of_different_attribute_lists_differ() -> None:
    # [{a: "v"}] and [{a}, {"": "v"}] concatenate to the same KeyValue bytes
    one = [KeyValue(key="a", value=attributes({"x": "v"})[0].value)]
    two = [KeyValue(key="a"),
           KeyValue(value=attributes({"x": "v"})[0].value)]
    keys = {_attributes_key(metrics_pb2.HistogramDataPoint(attributes=a), _HISTOGRAM_ATTRIBUTES)
            for a in (one, two)}
    assert len(keys) == 2
