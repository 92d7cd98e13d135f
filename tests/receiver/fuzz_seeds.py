"""The hand-made seeds of the fuzz corpus (``fuzz_corpus/<target>/seed-*`` beside this file):
requests of every kind and shape the receiver tests send, as protobuf, as OTLP/JSON and
encoded.

``python fuzz_otlp.py --seed`` writes them; the rest of the corpus is what fuzzing found
worth keeping (``fuzz_otlp.py``).
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import zstandard
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from test_otlp_handbuilt import kvs, make_request, mixed_request, otlp_json

from metric_builders import (
    DELTA,
    exp_metric,
    exp_point,
    gauge_metric,
    histogram_metric,
    histogram_point,
    number_point,
    request,
    sum_metric,
)


def _summary() -> metrics_pb2.Metric:
    point = metrics_pb2.SummaryDataPoint(
        attributes=kvs({"route": "/pay"}), time_unix_nano=1_767_225_600 * 10**9, count=4,
        sum=10.0, quantile_values=[
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0),
            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=4.0)])
    return metrics_pb2.Metric(name="latency.summary", summary=metrics_pb2.Summary(
        data_points=[point]))


def _exemplar_gauge() -> metrics_pb2.Metric:
    point = number_point({"host": "a"}, 1, 2.5)
    point.exemplars.add(as_double=1.5, time_unix_nano=point.time_unix_nano,
                        span_id=bytes(range(8)), trace_id=bytes(range(16)),
                        filtered_attributes=kvs({"user": "u1"}))
    return gauge_metric("exemplars", [point])


def seed_requests() -> dict[str, ExportMetricsServiceRequest]:
    """Named requests: each kind, both temporalities, odd values and rejected points."""
    every_value = {"s": "x", "b": True, "i": -7, "d": 1.5, "bytes": b"\x00\xff",
                   "list": [1, "two", [3.0]], "map": {"k": {"nested": None}}, "none": None}
    return {
        "gauge": request(gauge_metric("temperature", [
            number_point({"room": "a"}, 0, 21.5), number_point({"room": "b"}, 10, 19)])),
        "sum": request(sum_metric("requests", [
            number_point({"route": "/apply"}, 0, 3, start=-60),
            number_point({"route": "/apply"}, 10, 5, start=-60)])),
        "sum-delta": request(sum_metric("jobs", [number_point({}, 0, 2.0, start=-10)],
                                        temporality=DELTA, monotonic=False)),
        "histogram": request(histogram_metric("latency", [
            histogram_point({"route": "/pay"}, 0, [0.1, 1.0, 10.0], [1, 2, 3, 0])])),
        "exp-histogram": request(exp_metric("latency.exp", [
            exp_point({"route": "/pay"}, 0, scale=3, offset=-2, counts=[1, 0, 4], zero_count=1)])),
        "summary": request(_summary()),
        "exemplars": request(_exemplar_gauge()),
        "odd-values": request(gauge_metric("odd", [
            number_point({"k": "nan"}, 0, float("nan")), number_point({"k": "inf"}, 1,
                                                                      float("inf")),
            number_point({"k": "big"}, 2, 2**63 - 1), number_point({"k": "neg"}, 3, -2**63),
            number_point({"k": "flag"}, 4, 0.0, flags=1)])),
        "every-anyvalue": make_request(
            metrics_pb2.Metric(name="typed", gauge=metrics_pb2.Gauge(data_points=[
                metrics_pb2.NumberDataPoint(attributes=kvs(every_value),
                                            time_unix_nano=1_767_225_600 * 10**9, as_int=1)])),
            resource={"service.name": "svc", **every_value}),
        "too-many-attributes": request(gauge_metric("wide", [
            number_point({f"a{i}": str(i) for i in range(12)}, 0, 1.0)])),
        "partial": mixed_request("partial"),
        "two-resources": ExportMetricsServiceRequest(resource_metrics=[
            *request(gauge_metric("g", [number_point({}, 0, 1.0)]), service="a").resource_metrics,
            *request(gauge_metric("g", [number_point({}, 0, 2.0)]), service="b").resource_metrics]),
        "empty": ExportMetricsServiceRequest(),
    }


def write_seeds(corpus: Path) -> None:
    """Write every seed into ``corpus/<target>/seed-<name>``."""
    targets = {name: corpus / name for name in ("protobuf", "json", "encoded")}
    for directory in targets.values():
        directory.mkdir(parents=True, exist_ok=True)
    for name, req in seed_requests().items():
        body = req.SerializeToString()
        (targets["protobuf"] / f"seed-{name}").write_bytes(body)
        (targets["json"] / f"seed-{name}").write_bytes(json.dumps(otlp_json(req)).encode())
    # fuzz_encoded: the first byte picks the encoding (fuzz_otlp.ENCODINGS, then gRPC)
    body = seed_requests()["histogram"].SerializeToString()
    gzipped = gzip.compress(body, mtime=0)  # no time in the header: the same bytes each time
    encoded = {"gzip": b"\x00" + gzipped, "deflate": b"\x01" + zlib.compress(body),
               "raw-deflate": b"\x01" + zlib.compress(body)[2:-4],
               "zstd": b"\x02" + zstandard.ZstdCompressor().compress(body),
               "two-gzip-members": b"\x00" + gzipped + gzipped,
               "grpc-gzip": b"\x05" + gzipped, "grpc-plain": b"\x05" + body}
    for name, data in encoded.items():
        (targets["encoded"] / f"seed-{name}").write_bytes(data)
