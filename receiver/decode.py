"""Decode an OTLP ``ExportMetricsServiceRequest`` into columnar batches for the store.

Per-point Python is where ingest time goes, so it does the least per point.  A serialized
request is walked as bytes down to each metric's points (``wire``); points of series already
committed are found by their attribute bytes (``SeriesSlots``) and read in bulk with numpy
(``number_points``, ``histogram_points``).  Everything else — the first point of a series,
exemplars, exponential histograms, summaries, any request not in the plain form — is parsed
by upb and read field by field, with the same results.  Everything per series (typed
attributes, the canonical identity hash) is computed once, on a cache miss.  Invalid points
are rejected one by one (OTLP ``partial_success``); the rest of the request is kept.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_hms.storage.batch import DecodedBatch, SeriesRow

from . import histogram_points, number_points, wire
from .anyvalue import Attributes, typed
from .payload import parse_protobuf
from .series_slots import SeriesSlots

MAX_INT64 = (1 << 63) - 1
# Serialized NumberDataPoint prefixes the hot loop reads in one unpack: start_time_unix_nano
# (tag 0x11), time_unix_nano (0x19), then as_double (0x21) or as_int (0x31), each a tag and 8
# bytes.  Times are read signed, so values past int64 show up negative and go the slow way.
_START_TIME_DOUBLE = struct.Struct("<xqxqxd").unpack_from
_START_TIME_INT = struct.Struct("<xqxqxq").unpack_from
_TIME_DOUBLE = struct.Struct("<xqxd").unpack_from
_TIME_INT = struct.Struct("<xqxq").unpack_from
_OWNER_CACHE_LIMIT = 4096

class KnownSeries(Protocol):
    """Series ids known to be stored: a set, or a bounded cache of them."""

    def __contains__(self, sid: object) -> bool: ...

    def update(self, ids: Iterable[int]) -> None: ...


@dataclass(frozen=True, eq=False)
class _Owner:
    """The resource and scope a group of metrics shares."""

    resource: Attributes
    service_name: str | None
    resource_dropped: int
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope: Attributes
    scope_dropped: int
    scope_schema_url: str

    @classmethod
    def of(cls, rm: Any, sm: Any) -> _Owner:
        resource = Attributes(rm.resource.attributes)
        return cls(resource, dict(resource.strings).get("service.name"),
                   rm.resource.dropped_attributes_count, rm.schema_url, sm.scope.name,
                   sm.scope.version, Attributes(sm.scope.attributes),
                   sm.scope.dropped_attributes_count, sm.schema_url)


@dataclass(frozen=True)
class _Context:
    """What a metric's points share: resource, scope and metric identity."""

    digest: bytes
    metric_type: str
    metric_name: str
    metric_description: str
    metric_unit: str
    aggregation_temporality: int | None
    is_monotonic: bool | None
    service_name: str | None
    resource: Attributes
    resource_dropped: int
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope: Attributes
    scope_dropped: int
    scope_schema_url: str
    metric_metadata: str | None


@dataclass
class _Decoding(DecodedBatch):
    """A batch while its request is decoded: the points the scans found, read in bulk at the
    end of the request (``Decoder._bulk_points``)."""

    scans: list[tuple[_Context, bytes, number_points.NumberScan]] = field(default_factory=list)
    histogram_scans: list[tuple[_Context, bytes, histogram_points.HistogramScan]] = field(
        default_factory=list)


class Decoder:
    """Turns requests into ``DecodedBatch``es; keeps a cache of series ids across requests.

    ``known`` holds series ids already stored (the writer's own in-process, a bounded
    ``storage.recent_ids.RecentIds`` in a decode worker); a series row is emitted only for
    ids not in it (the writer re-checks, so a stale or partial view of the set is harmless).
    The caches of series are bounded by ``series_cache_size``: the slots keep two
    generations, so series in use stay and the others are dropped, to be looked up again on
    their next point.
    """

    def __init__(self, max_attributes: int = 256, known: KnownSeries | None = None,
                 series_cache_size: int = 1_000_000) -> None:
        self.max_attributes = max_attributes
        self.series_cache_size = series_cache_size
        self.known: KnownSeries = known if known is not None else set()
        # metric context digest -> attribute key bytes -> (series id, flags of the hot loop),
        # for committed series only; ``_previous`` is the generation before (read on a miss).
        self._slots = SeriesSlots()
        self._previous: SeriesSlots | None = None
        # (context digest, key) -> (series id, row) of series not yet committed.
        self._pending: dict[tuple[bytes, bytes], tuple[int, SeriesRow]] = {}
        # Resources and scopes by their bytes, metric contexts by owner and header.
        self._owners: dict[tuple[bytes, str, bytes, str], _Owner] = {}
        self._contexts: dict[tuple[Any, ...], _Context] = {}
        self._shapes: dict[tuple[Any, ...], tuple[int | None, bool | None]] = {}

    def decode(self, request: ExportMetricsServiceRequest) -> DecodedBatch:
        batch = _Decoding()
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                owner = _Owner.of(rm, sm)
                for metric in sm.metrics:
                    self._decode_metric(batch, owner, metric)
        self._bulk_points(batch)
        return batch

    def decode_bytes(self, body: bytes) -> DecodedBatch:
        """Decode a serialized request: walked as bytes when plain (``wire``), else parsed.

        Raises ``InvalidRequest`` for a body that is not a request.
        """
        try:
            return self._decode_plain(body)
        except (wire.NotPlain, DecodeError, IndexError, ValueError):
            return self.decode(parse_protobuf(body))

    def _decode_plain(self, body: bytes) -> DecodedBatch:
        batch = _Decoding()
        for rm_start, rm_end in wire.resource_metrics(body):
            resource, rm_schema, scopes = wire.resource_parts(body, rm_start, rm_end)
            if not scopes:  # its resource would go unread, unchecked: upb checks it
                raise wire.NotPlain("a resource without scopes")
            for sm_start, sm_end in scopes:
                scope, sm_schema, metrics = wire.scope_parts(body, sm_start, sm_end)
                owner = self._owner(resource, rm_schema, scope, sm_schema)
                for start, end in metrics:
                    m = wire.metric(body, start, end)
                    if m is None or not m.name or not self._plain_metric(batch, owner, m):
                        self._decode_metric(batch, owner,
                                            metrics_pb2.Metric.FromString(body[start:end]))
        self._bulk_points(batch)
        return batch

    def _plain_metric(self, batch: _Decoding, owner: _Owner, m: wire.MetricBytes) -> bool:
        """Decode a metric from its data message's bytes; False leaves it to upb (an
        UNSPECIFIED temporality, which is rejected there with its message).

        The temporality and monotonicity are part of the metric's identity but come after
        the points, so the points are looked up under the values this metric had last time
        and looked up again in the rare case they changed.
        """
        shape_key = (owner, m.name, m.description, m.unit, m.kind)
        shape = self._shapes.get(shape_key) or _DEFAULT_SHAPE[m.kind]
        ctx = self._context(owner, m.name, m.description, m.unit, m.kind, *shape, None)
        scan = _SCANNERS[m.kind]
        found = scan(m.data, self._slots, ctx.digest)
        actual = wire.data_tail(m.data, found.stop, m.kind)
        if m.kind != "gauge" and actual[0] == 0:
            return False
        if actual != shape:
            self._shapes[shape_key] = actual
            ctx = self._context(owner, m.name, m.description, m.unit, m.kind, *actual, None)
            found = scan(m.data, self._slots, ctx.digest)
        if isinstance(found, histogram_points.HistogramScan):
            self._histogram_found(batch, ctx, m.data, found)
        else:
            self._number_found(batch, ctx, m.data, found)
        return True

    def _owner(self, resource: bytes, rm_schema: str, scope: bytes, sm_schema: str) -> _Owner:
        key = (resource, rm_schema, scope, sm_schema)
        owner = self._owners.get(key)
        if owner is None:
            if len(self._owners) >= _OWNER_CACHE_LIMIT:
                self._owners, self._contexts, self._shapes = {}, {}, {}
            rm = metrics_pb2.ResourceMetrics(schema_url=rm_schema)
            rm.resource.MergeFromString(resource)
            sm = metrics_pb2.ScopeMetrics(schema_url=sm_schema)
            sm.scope.MergeFromString(scope)
            owner = self._owners[key] = _Owner.of(rm, sm)
        return owner

    def _decode_metric(self, batch: _Decoding, owner: _Owner,
                       metric: metrics_pb2.Metric) -> None:
        which = metric.WhichOneof("data")
        kind = str(which) if which else ""
        data = getattr(metric, kind) if kind else None
        count = len(data.data_points) if data is not None else 0
        if not metric.name:
            batch.reject(count, "metric without a name: every metric needs a non-empty name")
            return
        if data is None:
            batch.reject(0, f"metric {metric.name!r} has no data (gauge, sum, histogram, "
                         "exponential_histogram or summary)")
            return
        temporality = getattr(data, "aggregation_temporality", None)
        if temporality is not None and kind != "gauge" and temporality == 0:
            batch.reject(count, f"metric {metric.name!r}: aggregation_temporality is "
                         "UNSPECIFIED; set DELTA (1) or CUMULATIVE (2)")
            return
        monotonic = data.is_monotonic if kind == "sum" else None
        metadata = None
        if len(getattr(metric, "metadata", ())):
            metadata = json.dumps({kv.key: typed(kv.value) for kv in metric.metadata},
                                  sort_keys=True)
        ctx = self._context(owner, metric.name, metric.description, metric.unit, kind,
                            temporality, monotonic, metadata)
        decode_points = _POINT_DECODERS[kind]
        decode_points(self, batch, ctx, data)

    def _context(self, owner: _Owner, name: str, description: str, unit: str, kind: str,
                 temporality: int | None, monotonic: bool | None, metadata: str | None
                 ) -> _Context:
        """The metric's context, built once per owner and metric header."""
        key = (owner, name, description, unit, kind, temporality, monotonic, metadata)
        ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        identity = json.dumps([
            name, kind, unit, temporality, monotonic,
            owner.resource.typed_json, owner.resource_schema_url, owner.scope_name,
            owner.scope_version, owner.scope.typed_json, owner.scope_schema_url,
        ], separators=(",", ":"), ensure_ascii=False)
        ctx = _Context(
            digest=hashlib.blake2b(identity.encode(), digest_size=16).digest(),
            metric_type=kind, metric_name=name, metric_description=description,
            metric_unit=unit, aggregation_temporality=temporality, is_monotonic=monotonic,
            service_name=owner.service_name, resource=owner.resource,
            resource_dropped=owner.resource_dropped,
            resource_schema_url=owner.resource_schema_url, scope_name=owner.scope_name,
            scope_version=owner.scope_version, scope=owner.scope,
            scope_dropped=owner.scope_dropped, scope_schema_url=owner.scope_schema_url,
            metric_metadata=metadata,
        )
        if len(self._contexts) >= _OWNER_CACHE_LIMIT * 16:
            self._contexts = {}
        self._contexts[key] = ctx
        return ctx

    # -- series -----------------------------------------------------------------------------

    def series_id(self, batch: _Decoding, ctx: _Context, key: bytes,
                  attributes: Any, flags: int = 0, bulk_key: bool = False) -> int:
        """The series id of a point whose attribute cache key is ``key`` (the slow path).

        Series already committed go to ``_slots``, which the hot loop reads without
        further checks; series still on their way to the store wait in ``_pending`` with
        their row, so each batch until the commit carries the row without rebuilding it.
        A ``bulk_key`` (the key of a canonical point, see ``number_points``) goes to
        ``_slots`` at once, with the row.
        """
        pending_key = (ctx.digest, key)
        pending = self._pending.get(pending_key)
        if pending is None and self._previous is not None:
            slot = self._previous.lookup(ctx.digest).get(key)
            if slot is not None and self._previous.sid_list[slot] in self.known:
                sid = self._previous.sid_list[slot]
                self._remember(ctx.digest, key, sid, self._previous.flag_list[slot])
                return sid
        if pending is None:
            attrs = Attributes(attributes)
            digest = hashlib.blake2b(ctx.digest + attrs.typed_json.encode(),
                                     digest_size=8).digest()
            sid = int.from_bytes(digest, "little")
            row = None if sid in self.known else self._series_row(ctx, attrs, sid)
        else:
            sid, row = pending
        if sid in self.known:
            self._pending.pop(pending_key, None)
            self._remember(ctx.digest, key, sid, flags)
            return sid
        if row is None:
            row = self._series_row(ctx, Attributes(attributes), sid)
        if bulk_key:
            self._remember(ctx.digest, key, sid, flags, row)
        elif pending is None:
            if len(self._pending) >= self.series_cache_size // 4:
                # Rows are rebuilt on the next miss; iterating ``known`` here would race the
                # writer thread that adds to it.
                self._pending = {}
            self._pending[pending_key] = (sid, row)
        batch.series.setdefault(sid, row)
        return sid

    def _remember(self, digest: bytes, key: bytes, sid: int, flags: int,
                  row: SeriesRow | None = None) -> None:
        if len(self._slots) >= self.series_cache_size // 2:
            # replaced, not cleared: readers may hold the old one
            self._previous, self._slots = self._slots, SeriesSlots()
        self._slots.add(digest, key, sid, flags, row)

    def _pending_slots(self, batch: _Decoding, table: SeriesSlots, slots: list[int]
                       ) -> None:
        """Rows of the not yet committed series among ``slots`` go with the batch."""
        for slot in table.pending_slots(slots):
            row = table.rows[slot]
            if row is None:
                continue
            if row.series_id in self.known:
                table.confirm(slot)
            else:
                batch.series.setdefault(row.series_id, row)

    @staticmethod
    def _series_row(ctx: _Context, attrs: Attributes, sid: int) -> SeriesRow:
        return SeriesRow(
            series_id=sid, metric_type=ctx.metric_type, metric_name=ctx.metric_name,
            metric_description=ctx.metric_description, metric_unit=ctx.metric_unit,
            aggregation_temporality=ctx.aggregation_temporality,
            is_monotonic=ctx.is_monotonic, service_name=ctx.service_name,
            resource_attributes=ctx.resource.strings,
            resource_attributes_typed=ctx.resource.typed_json,
            resource_dropped_attributes_count=ctx.resource_dropped,
            resource_schema_url=ctx.resource_schema_url, scope_name=ctx.scope_name,
            scope_version=ctx.scope_version, scope_attributes=ctx.scope.strings,
            scope_attributes_typed=ctx.scope.typed_json,
            scope_dropped_attributes_count=ctx.scope_dropped,
            scope_schema_url=ctx.scope_schema_url, attributes=attrs.strings,
            attributes_typed=attrs.typed_json, metric_metadata=ctx.metric_metadata,
        )

    def _check_point(self, batch: _Decoding, ctx: _Context, dp: Any) -> bool:
        """Reject what the data model forbids; True when the point may be stored."""
        if dp.time_unix_nano == 0 or dp.time_unix_nano > MAX_INT64:
            batch.reject(1, f"metric {ctx.metric_name!r}: time_unix_nano must be set to a "
                         f"time after 1970 (got {dp.time_unix_nano})")
            return False
        if dp.start_time_unix_nano > MAX_INT64:
            batch.reject(1, f"metric {ctx.metric_name!r}: start_time_unix_nano out of range")
            return False
        if len(dp.attributes) > self.max_attributes:
            batch.reject(1, f"metric {ctx.metric_name!r}: a point has {len(dp.attributes)} "
                         f"attributes, more than the limit of {self.max_attributes} "
                         "(setting max_attributes_per_point)")
            return False
        return True

    # -- points by kind ---------------------------------------------------------------------

    def _number_points(self, batch: _Decoding, ctx: _Context, data: Any) -> None:
        """The hot loop: points of cached series are found here and read in bulk at the end
        of the request (``_bulk_points``).

        The rest (first points of a series, odd layouts, exemplars) go one by one through
        ``_number_point``.
        """
        self._number_buf(batch, ctx, data.SerializeToString())

    def _number_buf(self, batch: _Decoding, ctx: _Context, buf: bytes) -> None:
        self._number_found(batch, ctx, buf, number_points.scan(buf, self._slots, ctx.digest))

    def _number_found(self, batch: _Decoding, ctx: _Context, buf: bytes,
                      found: number_points.NumberScan) -> None:
        if found.plain or found.started:
            batch.scans.append((ctx, buf, found))
        if found.slow:
            cols = batch.kind_columns(ctx.metric_type)
            for body, end in found.slow:
                batch.accepted += self._number_point(batch, ctx, cols, buf[body:end])

    def _bulk_points(self, batch: _Decoding) -> None:
        for _, _, found in batch.scans:
            if found.table.pending_count:
                self._pending_slots(batch, found.table, found.plain_slots + found.started_slots)
        for _, _, hist_found in batch.histogram_scans:
            if hist_found.table.pending_count:
                self._pending_slots(batch, hist_found.table, hist_found.slots)
        by_kind: dict[str, list[tuple[_Context, bytes, number_points.NumberScan]]] = {}
        for item in batch.scans:
            by_kind.setdefault(item[0].metric_type, []).append(item)
        batch.scans = []
        for kind, items in by_kind.items():
            table, odd = number_points.columns([(buf, found) for _, buf, found in items])
            if table is not None:
                batch.tables.setdefault(kind, []).append(table)
                batch.accepted += table.num_rows
            for i, raw in odd:
                batch.accepted += self._number_point(batch, items[i][0],
                                                     batch.kind_columns(kind), raw)
        hist = batch.histogram_scans
        batch.histogram_scans = []
        if hist:
            tables, rejected = histogram_points.columns([(buf, found) for _, buf, found in hist])
            for table in tables:
                batch.tables.setdefault("histogram", []).append(table)
                batch.accepted += table.num_rows
            for i, raw in rejected:
                self._histogram_point(batch, hist[i][0], batch.kind_columns("histogram"), raw)

    def _number_point(self, batch: _Decoding, ctx: _Context, cols: dict[str, list[Any]],
                      raw: bytes) -> int:
        """One point from its serialization: 1 if stored, 0 if rejected.

        When it starts with the fixed-width fields and has no exemplars, one ``struct`` call
        reads the times and value and the rest of the bytes is the series cache key, which
        also determines ``flags``; anything else is parsed and read field by field.
        """
        tag = start = t = 0
        value: float = 0
        key = b""
        if len(raw) >= 27 and raw[0] == 0x11 and raw[9] == 0x19:
            tag, key = raw[18], raw[27:]
            if tag == 0x21:
                start, t, value = _START_TIME_DOUBLE(raw)
            elif tag == 0x31:
                start, t, value = _START_TIME_INT(raw)
        elif len(raw) >= 18 and raw[0] == 0x19:
            tag, key = raw[9], raw[18:]
            if tag == 0x21:
                t, value = _TIME_DOUBLE(raw)
            elif tag == 0x31:
                t, value = _TIME_INT(raw)
        dp = metrics_pb2.NumberDataPoint.FromString(raw)
        # Not the common layout, times out of range, or exemplars (0x2a) present.
        if tag not in (0x21, 0x31) or t <= 0 or start < 0 or key[:1] == b"\x2a":
            return self._number_point_slow(batch, ctx, cols, dp)
        slots = self._slots
        slot = slots.lookup(ctx.digest).get(key)
        if slot is not None:
            sid, flags = slots.sid_list[slot], slots.flag_list[slot]
            self._pending_slots(batch, slots, [slot])
        elif dp.SerializeToString() != raw:
            # Fields out of order or repeated (the last one wins): only the parsed message
            # says what the point holds, and its key must not stand for others.
            return self._number_point_slow(batch, ctx, cols, dp)
        else:
            hit = self._series_for(batch, ctx, key, dp)
            if hit is None:
                return 0
            sid, flags = hit
        cols["series_id"].append(sid)
        cols["flags"].append(flags)
        cols["start_time_unix_nano"].append(start)
        cols["time_unix_nano"].append(t)
        cols["value" if tag == 0x21 else "value_int"].append(value)
        cols["value_int" if tag == 0x21 else "value"].append(None)
        cols["exemplars"].append(None)
        return 1

    def _series_for(self, batch: _Decoding, ctx: _Context, key: bytes, dp: Any
                    ) -> tuple[int, int] | None:
        """Cache-miss path of the hot loop: check the attribute limit, then find the series."""
        if len(dp.attributes) > self.max_attributes:
            self._check_point(batch, ctx, dp)
            return None
        return self.series_id(batch, ctx, key, dp.attributes, dp.flags, bulk_key=True), dp.flags

    def _number_point_slow(self, batch: _Decoding, ctx: _Context,
                           cols: dict[str, list[Any]], dp: Any) -> int:
        if not self._check_point(batch, ctx, dp):
            return 0
        self._common(batch, ctx, cols, dp, _NUMBER_ATTRIBUTES)
        which = dp.WhichOneof("value")
        cols["value_int"].append(dp.as_int if which == "as_int" else None)
        cols["value"].append(dp.as_double if which == "as_double" else None)
        cols["flags"].append(dp.flags)
        cols["exemplars"].append(_exemplars(dp.exemplars) if len(dp.exemplars) else None)
        return 1

    def _histogram_points(self, batch: _Decoding, ctx: _Context, data: Any) -> None:
        """Points that fit their metric's template are read in bulk at the end of the request
        (see ``histogram_points``); the rest one by one."""
        self._histogram_buf(batch, ctx, data.SerializeToString())

    def _histogram_buf(self, batch: _Decoding, ctx: _Context, buf: bytes) -> None:
        self._histogram_found(batch, ctx, buf,
                              histogram_points.scan(buf, self._slots, ctx.digest))

    def _histogram_found(self, batch: _Decoding, ctx: _Context, buf: bytes,
                         found: histogram_points.HistogramScan) -> None:
        if found.bodies:
            batch.histogram_scans.append((ctx, buf, found))
        if found.slow:
            cols = batch.kind_columns(ctx.metric_type)
            for body, end in found.slow:
                self._histogram_point(batch, ctx, cols, buf[body:end])

    def _histogram_point(self, batch: _Decoding, ctx: _Context, cols: dict[str, list[Any]],
                         raw: bytes) -> None:
        dp = metrics_pb2.HistogramDataPoint.FromString(raw)
        if not self._check_point(batch, ctx, dp):
            return
        bounds = list(dp.explicit_bounds)
        buckets = list(dp.bucket_counts)
        problem = _histogram_problem(bounds, buckets)
        if problem:
            batch.reject(1, f"metric {ctx.metric_name!r}: {problem}")
            return
        key = self._common(batch, ctx, cols, dp, _HISTOGRAM_ATTRIBUTES)
        sid = cols["series_id"][-1]
        if (key[:1] == b"\x00" and self._slots.lookup(ctx.digest).get(key[1:]) is None
                and dp.SerializeToString() == raw):
            # the bulk path looks series up by the bare attribute run
            self._remember(ctx.digest, key[1:], sid, 0,
                           None if sid in self.known else batch.series.get(sid))
        cols["count"].append(dp.count)
        cols["sum"].append(dp.sum if dp.HasField("sum") else None)
        cols["min"].append(dp.min if dp.HasField("min") else None)
        cols["max"].append(dp.max if dp.HasField("max") else None)
        cols["bucket_counts"].append(buckets)
        cols["explicit_bounds"].append(bounds)
        cols["flags"].append(dp.flags)
        cols["exemplars"].append(_exemplars(dp.exemplars) if len(dp.exemplars) else None)
        batch.accepted += 1

    def _exp_histogram_points(self, batch: _Decoding, ctx: _Context, data: Any) -> None:
        cols = batch.kind_columns(ctx.metric_type)
        for dp in data.data_points:
            if not self._check_point(batch, ctx, dp):
                continue
            if not -10 <= dp.scale <= 20:
                batch.reject(1, f"metric {ctx.metric_name!r}: exponential histogram scale "
                             f"{dp.scale} outside -10..20")
                continue
            self._common(batch, ctx, cols, dp, _EXP_ATTRIBUTES)
            cols["count"].append(dp.count)
            cols["sum"].append(dp.sum if dp.HasField("sum") else None)
            cols["min"].append(dp.min if dp.HasField("min") else None)
            cols["max"].append(dp.max if dp.HasField("max") else None)
            cols["scale"].append(dp.scale)
            cols["zero_count"].append(dp.zero_count)
            cols["zero_threshold"].append(dp.zero_threshold)
            cols["positive_offset"].append(dp.positive.offset)
            cols["positive_bucket_counts"].append(list(dp.positive.bucket_counts))
            cols["negative_offset"].append(dp.negative.offset)
            cols["negative_bucket_counts"].append(list(dp.negative.bucket_counts))
            cols["flags"].append(dp.flags)
            cols["exemplars"].append(_exemplars(dp.exemplars) if len(dp.exemplars) else None)
            batch.accepted += 1

    def _summary_points(self, batch: _Decoding, ctx: _Context, data: Any) -> None:
        cols = batch.kind_columns(ctx.metric_type)
        for dp in data.data_points:
            if not self._check_point(batch, ctx, dp):
                continue
            self._common(batch, ctx, cols, dp, _SUMMARY_ATTRIBUTES)
            cols["count"].append(dp.count)
            cols["sum"].append(dp.sum)
            cols["quantile_values"].append(
                [{"quantile": q.quantile, "value": q.value} for q in dp.quantile_values])
            cols["flags"].append(dp.flags)
            batch.accepted += 1

    def _common(self, batch: _Decoding, ctx: _Context, cols: dict[str, list[Any]],
                dp: Any, attributes_tag: int) -> bytes:
        """Append the series id and times of ``dp``; returns its series cache key."""
        key = _attributes_key(dp, attributes_tag)
        slots = self._slots
        slot = slots.lookup(ctx.digest).get(key)
        sid = (slots.sid_list[slot] if slot is not None
               else self.series_id(batch, ctx, key, dp.attributes))
        cols["series_id"].append(sid)
        cols["start_time_unix_nano"].append(dp.start_time_unix_nano)
        cols["time_unix_nano"].append(dp.time_unix_nano)
        return key


# Tags of the repeated ``attributes`` field in each point message.
_NUMBER_ATTRIBUTES, _HISTOGRAM_ATTRIBUTES, _EXP_ATTRIBUTES, _SUMMARY_ATTRIBUTES = (
    0x3A, 0x4A, 0x0A, 0x3A)


def _attributes_key(dp: Any, tag: int) -> bytes:
    """The series cache key of a point: its serialized attributes, cut from its serialization.

    Fields serialize in field-number order and repeated ones contiguously, so the attributes
    are one run of ``tag`` fields; cutting them out costs one serialization and a short walk
    over the other fields' tags, less than serializing each KeyValue.  The leading zero byte
    keeps these keys apart from the number hot loop's (see ``_number_points``).  Points with
    multi-byte tags (unknown fields) fall back to length-prefixed KeyValues.
    """
    raw = dp.SerializeToString()
    i, n, start, end = 0, len(raw), -1, -1
    while i < n:
        t = raw[i]
        if t & 0x80:
            return _attributes_key_slow(dp)
        if t == tag and start < 0:
            start = i
        i += 1
        wire_type = t & 7
        if wire_type == 1:
            i += 8
        elif wire_type == 2:
            length, i = wire.varint(raw, i, n)
            i += length
        elif wire_type == 0:
            while raw[i] & 0x80:
                i += 1
            i += 1
        elif wire_type == 5:
            i += 4
        else:
            return _attributes_key_slow(dp)
        if t == tag:
            end = i
    return b"\x00" + raw[start:end] if start >= 0 else b"\x00"


def _attributes_key_slow(dp: Any) -> bytes:
    # Each KeyValue length-prefixed, since bare concatenations can coincide ([{a: v}] and
    # [{a}, {: v}] serialize to the same bytes); the 0x01 keeps these apart from fast keys.
    parts = [b"\x01"]
    for kv in dp.attributes:
        raw = kv.SerializeToString()
        parts.append(len(raw).to_bytes(4, "little"))
        parts.append(raw)
    return b"".join(parts)


def _histogram_problem(bounds: list[float], buckets: list[int]) -> str | None:
    if buckets and len(buckets) != len(bounds) + 1:
        return (f"histogram has {len(buckets)} bucket counts for {len(bounds)} bounds; "
                "expected one more count than bounds")
    return _bounds_problem(tuple(bounds))


@functools.lru_cache(maxsize=1024)
def _bounds_problem(bounds: tuple[float, ...]) -> str | None:
    """Checked once per distinct bound list: a fleet uses a handful."""
    if any(b >= a for a, b in zip(bounds[1:], bounds)) or any(b != b for b in bounds):
        return "histogram explicit_bounds must be strictly increasing and not NaN"
    return None


def _exemplars(exemplars: Any) -> list[dict[str, Any]]:
    out = []
    for ex in exemplars:
        is_int = ex.WhichOneof("value") == "as_int"
        out.append({
            "filtered_attributes": Attributes(ex.filtered_attributes).typed_json,
            "time_unix_nano": ex.time_unix_nano if ex.time_unix_nano <= MAX_INT64 else None,
            "value": None if is_int else ex.as_double,
            "value_int": ex.as_int if is_int else None,
            "span_id": ex.span_id.hex() if ex.span_id else None,
            "trace_id": ex.trace_id.hex() if ex.trace_id else None,
        })
    return out


_SCANNERS: dict[str, Any] = {
    "gauge": number_points.scan, "sum": number_points.scan, "histogram": histogram_points.scan}
_DEFAULT_SHAPE: dict[str, tuple[int | None, bool | None]] = {
    "gauge": (None, None), "sum": (2, True), "histogram": (2, None)}

_POINT_DECODERS = {
    "gauge": Decoder._number_points,
    "sum": Decoder._number_points,
    "histogram": Decoder._histogram_points,
    "exponential_histogram": Decoder._exp_histogram_points,
    "summary": Decoder._summary_points,
}

