"""Calls ``otel_hms.configure(**json)`` and adds to a counter, as a service would.

argv: a JSON object ``{"kwargs": {...}, "combo": NAME, "add": N, "wait": bool}``.  With
``wait`` the script blocks on stdin after recording (so a test can see a periodic export
arrive), otherwise it exits at once and the flush at exit delivers the point.
"""

import json
import sys

import otel_hms

spec = json.loads(sys.argv[1])
meter = otel_hms.configure(**spec["kwargs"])
again = otel_hms.configure(**spec["kwargs"])  # idempotent: the same provider
counter = meter.create_counter("configure_probe_total")
counter.add(spec["add"] - 1, {"combo": spec["combo"]})
again.create_counter("configure_probe_total").add(1, {"combo": spec["combo"]})
try:
    otel_hms.configure(service_name="someone-else")
except otel_hms.ConfigureError as exc:
    print(f"second configure refused: {exc}")
print("recorded", flush=True)
if spec.get("wait"):
    sys.stdin.read()
