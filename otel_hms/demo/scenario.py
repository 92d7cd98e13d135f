"""The demo's story, told through the OpenTelemetry metrics API only, in compressed time.

Two services of a city administration: ``permits`` takes parking-permit applications
(``requests_processed_total``, ``active_connections``, ``request_latency_seconds``) and
``case-management`` resolves cases against a 48 h SLA (``cases_resolved_total``,
``case_resolution_seconds``, ``satisfaction_score``, ``agent_conflicts_total``).  A cycle of
``CYCLE`` seconds repeats: from ``SPIKE`` the ``/apply`` route slows past 2 s (HighLatency
fires within a minute), from ``BACKLOG`` the appeals team closes most cases after 48 h (the
SLA rule fires), from ``SHORT_STAFFED`` inspections resolve far fewer cases (the resolved-rate
warning, then critical).  Case durations are simulated, not waited for.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from opentelemetry.metrics import Meter

CYCLE = 240.0
SPIKE = (10.0, 90.0)
BACKLOG = (30.0, 150.0)
SHORT_STAFFED = (30.0, 170.0)

LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
HOUR = 3600.0
RESOLUTION_BOUNDS = (HOUR, 4 * HOUR, 8 * HOUR, 24 * HOUR, 48 * HOUR, 72 * HOUR, 168 * HOUR)

# route -> (requests per second, median latency in seconds)
ROUTES = {"/apply": (6.0, 0.35), "/pay": (3.0, 0.5), "/status": (10.0, 0.12)}
# team -> cases resolved per second (normally)
TEAMS = {"permits-desk": 2.0, "appeals": 1.6, "inspections": 1.5}
CHANNELS = {"web": 4.3, "phone": 3.9, "counter": 4.1}


def in_phase(t: float, phase: tuple[float, float]) -> bool:
    """Whether ``t`` seconds since the start lies in ``phase`` of the current cycle."""
    return phase[0] <= t % CYCLE < phase[1]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method; the means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class PermitsService:
    """Parking-permit applications: requests, connections in flight, latency."""

    meter: Meter

    def __post_init__(self) -> None:
        m = self.meter
        self.processed = m.create_counter("requests_processed_total", unit="{request}",
                                          description="Permit requests processed")
        self.connections = m.create_up_down_counter("active_connections", unit="{connection}",
                                                    description="Connections being served")
        self.latency = m.create_histogram(
            "request_latency_seconds", unit="s", description="Time to answer a request",
            explicit_bucket_boundaries_advisory=list(LATENCY_BOUNDS))
        self.open = dict.fromkeys(ROUTES, 0)

    def latency_of(self, rng: random.Random, route: str, median: float, spike: bool) -> float:
        if spike and route == "/apply" and rng.random() < 0.4:
            return rng.uniform(2.3, 4.5)
        return min(median * rng.lognormvariate(0.0, 0.45), 1.9)

    def tick(self, rng: random.Random, t: float, dt: float) -> None:
        spike = in_phase(t, SPIKE)
        for route, (rate, median) in ROUTES.items():
            latencies = [self.latency_of(rng, route, median, spike)
                         for _ in range(poisson(rng, rate * dt))]
            error_rate = 0.08 if spike and route == "/apply" else 0.01
            for seconds in latencies:
                status = "error" if rng.random() < error_rate else "ok"
                self.processed.add(1, {"route": route, "status": status})
                self.latency.record(seconds, {"route": route})
            # Little's law: requests in flight = arrival rate x time in the system.
            mean = sum(latencies) / len(latencies) if latencies else median
            target = max(0, round(rate * mean + rng.uniform(-1, 1)))
            self.connections.add(target - self.open[route], {"route": route})
            self.open[route] = target


@dataclass
class CaseService:
    """Case resolution against a 48 h SLA, satisfaction, agent conflicts."""

    meter: Meter

    def __post_init__(self) -> None:
        m = self.meter
        self.resolved = m.create_counter("cases_resolved_total", unit="{case}",
                                         description="Cases resolved")
        self.resolution = m.create_histogram(
            "case_resolution_seconds", unit="s",
            description="Time from opening a case to resolving it (simulated)",
            explicit_bucket_boundaries_advisory=list(RESOLUTION_BOUNDS))
        self.satisfaction = m.create_gauge("satisfaction_score", unit="1",
                                           description="Citizen satisfaction, 1 to 5")
        self.conflicts = m.create_counter("agent_conflicts_total", unit="{conflict}",
                                          description="Two agents edited the same case")

    def duration_of(self, rng: random.Random, team: str, t: float) -> float:
        if team == "appeals" and in_phase(t, BACKLOG) and rng.random() < 0.8:
            return rng.uniform(50 * HOUR, 100 * HOUR)
        return min(18 * HOUR * rng.lognormvariate(0.0, 0.5), 47 * HOUR)

    def tick(self, rng: random.Random, t: float, dt: float) -> None:
        for team, rate in TEAMS.items():
            if team == "inspections" and in_phase(t, SHORT_STAFFED):
                rate = 0.2
            for _ in range(poisson(rng, rate * dt)):
                self.resolved.add(1, {"team": team})
                self.resolution.record(self.duration_of(rng, team, t))
        slow_web = in_phase(t, SPIKE)
        for channel, mean in CHANNELS.items():
            score = (2.6 if slow_web and channel == "web" else mean) + rng.uniform(-0.3, 0.3)
            self.satisfaction.set(round(min(5.0, max(1.0, score)), 2), {"channel": channel})
        self.conflicts.add(poisson(rng, 0.05 * dt))


@dataclass
class Story:
    """Both services; ``tick`` advances the story by ``dt`` seconds at time ``t``."""

    permits: PermitsService
    cases: CaseService
    rng: random.Random

    @classmethod
    def start(cls, permits_meter: Meter, cases_meter: Meter, seed: int = 48) -> Story:
        return cls(PermitsService(permits_meter), CaseService(cases_meter), random.Random(seed))

    def tick(self, t: float, dt: float) -> None:
        self.permits.tick(self.rng, t, dt)
        self.cases.tick(self.rng, t, dt)

    @staticmethod
    def events(t: float, dt: float) -> list[str]:
        """What changes in the story between ``t - dt`` and ``t`` (for the console)."""
        out = []
        for phase, start, end in (
                (SPIKE, "latency spike on /apply begins (p99 past 2 s)", "/apply is fast again"),
                (BACKLOG, "appeals backlog: most cases now take over 48 h",
                 "appeals backlog cleared"),
                (SHORT_STAFFED, "inspections short-staffed: few cases resolved",
                 "inspections fully staffed again")):
            was, now = in_phase(max(t - dt, 0), phase), in_phase(t, phase)
            if now and not was:
                out.append(start)
            elif was and not now:
                out.append(end)
        return out
