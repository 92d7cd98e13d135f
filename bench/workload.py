"""The data the benchmarks send: one description, imported by every bench script.

Who reports (the services of the shop, their replicas), what (the instruments, their units,
scopes and attribute value sets, the histogram bounds), how they are named on the Prometheus
side (as the Collector's Prometheus exporters name them) and how far apart in time.  The
ingest benchmark sends ``INGEST_METRICS`` every ``INTERVAL_S``; the query benchmark
``QUERY_METRICS`` on the minute and the hour; the alerting and series-memory benchmarks build
their own few series of gauges with ``kv``.  Changing a value here changes what every
benchmark that uses it sends, so their figures stay comparable with each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

# -- time spacing -----------------------------------------------------------------------------

INTERVAL_S = 10  # ingest: one point per series every 10 s, as a periodic reader exports
MINUTE, HOUR, DAY = 60, 3600, 86400

# -- who reports --------------------------------------------------------------------------------

SERVICES = ("checkout", "cart", "payment", "catalog")
NAMESPACE = "shop"
REPLICAS = 2  # instances per service in the ingest benchmark

# -- attribute value sets -----------------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "DELETE")
ROUTES = (
    "/", "/api/v1/cart", "/api/v1/cart/{id}", "/api/v1/cart/{id}/items", "/api/v1/checkout",
    "/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/payments", "/api/v1/payments/{id}",
    "/api/v1/products", "/api/v1/products/{id}", "/api/v1/search", "/api/v1/users/{id}",
    "/api/v1/users/{id}/addresses", "/healthz", "/metrics",
)
CPU_MODES = ("user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice")
CPUS = tuple(range(8))
DB_POOLS = tuple(f"pool-{i}" for i in range(16))
DB_SERVERS = tuple(f"db-{i}.internal" for i in range(4))
TOPICS = tuple(f"orders.events.v{i}" for i in range(32))
PARTITIONS = tuple(map(str, range(8)))
CONSUMER_GROUPS = ("billing", "shipping")
HIST_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

HTTP_SCOPE = ("io.opentelemetry.instrumentation.http", "2.10.0")
DB_SCOPE = ("io.opentelemetry.instrumentation.jdbc", "2.10.0")
HOST_SCOPE = ("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/"
              "hostmetricsreceiver/internal/scraper/cpuscraper", "0.115.0")
KAFKA_SCOPE = ("io.opentelemetry.instrumentation.kafka-clients", "2.10.0")


# -- the instruments ----------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricSpec:
    """One instrument; every point carries exactly the attributes of ``dims``, one value of
    each."""

    name: str
    kind: str  # "sum", "gauge" or "histogram"
    unit: str
    dims: tuple[tuple[str, tuple[str | int, ...]], ...]
    description: str = ""
    scope: tuple[str, str] = HTTP_SCOPE
    monotonic: bool = False
    is_int: bool = False

    @property
    def combos(self) -> list[tuple[str | int, ...]]:
        """Every attribute combination: one series per combination and instance."""
        return list(product(*(values for _, values in self.dims)))

    @property
    def prom(self) -> str:
        """The name the Collector's Prometheus exporters give it (dots to underscores, the
        unit's suffix, ``_total`` for a monotonic sum)."""
        name = re.sub(r"[^a-zA-Z0-9_]", "_", self.name)
        name += {"s": "_seconds", "1": "_ratio"}.get(self.unit, "")
        return name + ("_total" if self.monotonic else "")


INGEST_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("http.server.request.count", "sum", "{request}",
               (("http.request.method", METHODS), ("http.route", ROUTES),
                ("http.response.status_code", (200, 201, 404, 500)),
                ("network.protocol.version", ("1.1", "2"))),
               "HTTP requests served.", HTTP_SCOPE, monotonic=True, is_int=True),
    MetricSpec("http.server.active_requests", "sum", "{request}",
               (("http.request.method", METHODS), ("http.route", ROUTES),
                ("url.scheme", ("http", "https")), ("server.port", (8080, 8443))),
               "In-flight HTTP requests.", HTTP_SCOPE, is_int=True),
    MetricSpec("http.server.request.duration", "histogram", "s",
               (("http.request.method", METHODS), ("http.route", ROUTES),
                ("http.response.status_code", (200, 404, 500)),
                ("network.protocol.version", ("1.1",))),
               "HTTP request duration.", HTTP_SCOPE),
    MetricSpec("db.client.connection.count", "gauge", "{connection}",
               (("db.client.connection.state", ("idle", "used")),
                ("db.client.connection.pool.name", DB_POOLS),
                ("db.system.name", ("postgresql", "redis")),
                ("server.address", DB_SERVERS)),
               "Connections in the pool by state.", DB_SCOPE, is_int=True),
    MetricSpec("system.cpu.utilization", "gauge", "1",
               (("cpu.mode", CPU_MODES), ("cpu.logical_number", CPUS),
                ("cpu.socket", (0, 1)), ("host.cpu.vendor.id", ("AuthenticAMD",))),
               "CPU time fraction by mode.", HOST_SCOPE),
    MetricSpec("messaging.kafka.consumer.lag", "gauge", "{message}",
               (("messaging.system", ("kafka",)), ("messaging.destination.name", TOPICS),
                ("messaging.destination.partition.id", PARTITIONS),
                ("messaging.consumer.group.name", CONSUMER_GROUPS)),
               "Consumer lag.", KAFKA_SCOPE, is_int=True),
)
"""The ingest benchmark's six instruments, four attributes on every point."""

QUERY_COUNTER = MetricSpec(
    "http.server.request.count", "sum", "{request}",
    (("http.route", ROUTES), ("http.request.method", METHODS),
     ("http.response.status_code", (200, 201, 404, 500))), monotonic=True, is_int=True)
QUERY_HISTOGRAM = MetricSpec(
    "http.server.request.duration", "histogram", "s",
    (("http.route", ROUTES), ("http.request.method", ("GET", "POST")),
     ("http.response.status_code", (200, 500))), is_int=True)
QUERY_GAUGES = (
    MetricSpec("system.cpu.utilization", "gauge", "1",
               (("cpu.mode", CPU_MODES), ("cpu.logical_number", CPUS))),
    MetricSpec("db.client.connection.count", "gauge", "{connection}",
               (("db.client.connection.state", ("idle", "used")),
                ("db.client.connection.pool.name", DB_POOLS), ("server.address", DB_SERVERS)),
               is_int=True),
    MetricSpec("messaging.kafka.consumer.lag", "gauge", "{message}",
               (("messaging.destination.name", TOPICS),
                ("messaging.destination.partition.id", PARTITIONS),
                ("messaging.consumer.group.name", CONSUMER_GROUPS)), is_int=True),
    MetricSpec("http.server.active_requests", "gauge", "{request}",
               (("http.route", ROUTES), ("http.request.method", METHODS),
                ("server.port", (8080, 8443, 9090, 9443))), is_int=True),
)
QUERY_METRICS = (QUERY_COUNTER, QUERY_HISTOGRAM, *QUERY_GAUGES)
"""The query benchmark's instruments: one counter and one histogram reported every minute
over the last day, four gauges every hour (bench/README.md, "The data")."""


def kv(key: str, value: str | int) -> KeyValue:
    """An OTLP attribute: ints as ``int_value``, everything else as a string."""
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))
