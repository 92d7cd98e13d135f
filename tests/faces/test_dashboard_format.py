"""The page's number and unit formatting (``static/format.js``), run by Node as the browser
would run it: seconds, bytes, percentages, annotations and rates read the way people say them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT

FORMAT_JS = (ROOT / "otel_hms" / "dashboard" / "static"
             / "format.js")

CASES = [
    (["withUnit", 0.25, "s"], "250 ms"),
    (["withUnit", 2.5, "s"], "2.5 s"),
    (["withUnit", 4, "s"], "4 s"),
    (["withUnit", 90, "s"], "1.5 min"),
    (["withUnit", 7200, "s"], "2 h"),
    (["withUnit", 0.000042, "s"], "42 µs"),
    (["withUnit", 1500, "ms"], "1.5 s"),
    (["withUnit", 4.2, "s", 2], "4.20 s"),
    (["withUnit", 1536, "By"], "1.5 KiB"),
    (["withUnit", 3 * 1024 ** 3, "By"], "3 GiB"),
    (["withUnit", 2048, "By/s"], "2 KiB/s"),
    (["withUnit", 512, "By"], "512 B"),
    (["withUnit", 99.5, "%"], "99.5 %"),
    (["withUnit", 90.04, "%", 1], "90.0 %"),
    (["withUnit", 12, "{request}"], "12"),
    (["withUnit", 12.5, "{request}/s"], "12.5/s"),
    (["withUnit", 0.5, "1"], "0.5"),
    (["withUnit", 21.5, "Cel"], "21.5 Cel"),
    (["withUnit", 1234567, ""], "1.23M"),
    (["withUnit", 12345, ""], "12,345"),
    (["withUnit", None, "s"], "–"),
    (["aggUnit", "By", "rate"], "By/s"),
    (["aggUnit", "s", "count"], ""),
    (["aggUnit", "s", "p99"], "s"),
    (["unitLabel", "{request}/s"], "request/s"),
    (["unitLabel", "1"], ""),
]


def test_units_read_the_way_people_say_them() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed (scripts/test installs the JS test dependencies with npm)")
    script = (f"import * as f from {json.dumps(FORMAT_JS.as_uri())};\n"
              f"const cases = {json.dumps([c for c, _ in CASES])};\n"
              "console.log(JSON.stringify(cases.map(([fn, ...args]) => f[fn](...args))));\n")
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                            text=True, timeout=60, check=True)
    assert dict(zip([repr(c) for c, _ in CASES], json.loads(result.stdout))) == {
        repr(c): expected for c, expected in CASES}
