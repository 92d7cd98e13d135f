"""A service that exposes Prometheus text on ``/metrics`` and knows nothing of OpenTelemetry.

It stands for the seeds' existing services: the Collector in ``collector.yaml`` scrapes it
and forwards to otel-hms.  Standard library only::

    python3 legacy_service.py --port 8000
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOUNDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class Permits:
    """Counters that grow while the process runs, like a real service's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.processed = {"ok": 0, "error": 0}
        self.buckets = [0] * (len(BOUNDS) + 1)
        self.latency_sum = 0.0
        self.queue = 0

    def handle(self, rng: random.Random) -> None:
        seconds = rng.lognormvariate(-1.0, 0.8)
        with self.lock:
            self.processed["error" if rng.random() < 0.02 else "ok"] += 1
            index = next((i for i, b in enumerate(BOUNDS) if seconds <= b), len(BOUNDS))
            self.buckets[index] += 1
            self.latency_sum += seconds
            self.queue = rng.randint(0, 12)

    def exposition(self) -> str:
        with self.lock:
            lines = ["# HELP requests_processed_total Permit requests processed.",
                     "# TYPE requests_processed_total counter"]
            lines += [f'requests_processed_total{{status="{s}"}} {n}'
                      for s, n in self.processed.items()]
            lines += ["# HELP permit_queue_length Applications waiting for a clerk.",
                      "# TYPE permit_queue_length gauge", f"permit_queue_length {self.queue}",
                      "# HELP request_latency_seconds Time to answer a request.",
                      "# TYPE request_latency_seconds histogram"]
            cumulative = 0
            for bound, count in zip((*map(str, BOUNDS), "+Inf"), self.buckets):
                cumulative += count
                lines.append(f'request_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines += [f"request_latency_seconds_sum {self.latency_sum}",
                      f"request_latency_seconds_count {cumulative}"]
        return "\n".join(lines) + "\n"


def serve(port: int) -> None:
    permits, rng = Permits(), random.Random(7)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = permits.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    def work() -> None:
        while True:
            permits.handle(rng)
            time.sleep(0.05)

    threading.Thread(target=work, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving Prometheus metrics on http://127.0.0.1:{server.server_port}/metrics",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    serve(parser.parse_args().port)
